"""Model building, what each stage trains, and checkpoints."""

from scitune.model.build import build_model, image_tokens_per_image
from scitune.model.checkpoint import load_model, save_model
from scitune.model.stages import apply_stage, parameter_table

__all__ = ["apply_stage", "build_model", "image_tokens_per_image", "load_model", "parameter_table", "save_model"]
