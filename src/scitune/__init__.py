"""scitune: align large language models with science through multimodal instruction tuning."""

__version__ = "0.1.0"
