"""Model families as data: one row per family names where its parts live.

scitune trains the SciTune stages on any checkpoint of these families (transformers'
`AutoModelForImageTextToText` classes). A row names, by qualified-parameter-name fragments, the
family's vision tower, its connector (LLaVA's, LLaVA-NeXT's and InternVL's
`multi_modal_projector`, Idefics3's `connector`, Qwen's `visual.merger`, Gemma 3's `multi_modal_projector`), its language model and its lm_head;
`scitune.model.parts.part_of` (the one parameter classifier), the stage plans, LoRA targets and
the optimizer's parameter groups read it. A config of any other `model_type` is refused in one line
that lists the supported ones (`check_family`).

The connector is the part the stage plans call `projector` (align trains it alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from scitune.errors import ScituneError


@dataclass(frozen=True)
class Family:
    """Where one family's parts live (fragments of qualified parameter names, without dots)."""

    model_types: tuple[str, ...]
    vision_tower: tuple[str, ...]
    connector: tuple[str, ...]
    language_model: tuple[str, ...]
    # the connector's modules that a LoRA adapter saves in full (peft `modules_to_save`)
    connector_modules: tuple[str, ...]
    # connector parameters that are bare tensors (not inside a module peft can save): they are
    # trained without LoRA and stay frozen with it, so an adapter never silently drops them
    connector_tensors: tuple[str, ...] = ()
    # processor classes of the family (how scitune.prompting recognises a family's processor)
    processor_classes: tuple[str, ...] = ()
    # what a sample's `<image>` placeholder becomes in the chat-template text
    image_text: str = "<image>"
    # the token of that text the processor expands per image (into the feature tokens and markers)
    image_marker: str = "<image>"
    # the token the model replaces with image features
    feature_token: str = "<image>"
    # a per-token model input marking feature tokens with 1 (Qwen's M-RoPE, Gemma 3's image attention)
    token_type_input: str | None = None
    # per-image model inputs the image processor gives besides pixel_values
    image_inputs: tuple[str, ...] = ()
    # scitune's chat template in the family's own turn format (scitune.data.chat_templates), used
    # when a checkpoint's own template has no {% generation %} blocks and the recipe names none;
    # None: chosen by the vocabulary (LLaVA's LM can be any)
    chat_template: str | None = "chatml"


FAMILIES: dict[str, Family] = {
    "llava": Family(
        model_types=("llava",),
        vision_tower=("vision_tower",),
        connector=("multi_modal_projector",),
        language_model=("language_model",),
        connector_modules=("multi_modal_projector",),
        processor_classes=("LlavaProcessor",),
        chat_template=None,
    ),
    "llava_onevision": Family(
        model_types=("llava_onevision",),
        vision_tower=("vision_tower",),
        connector=("multi_modal_projector", "image_newline"),
        language_model=("language_model",),
        connector_modules=("multi_modal_projector",),
        connector_tensors=("image_newline",),
        processor_classes=("LlavaOnevisionProcessor",),
        image_inputs=("image_sizes",),
    ),
    "llava_next": Family(
        model_types=("llava_next",),
        vision_tower=("vision_tower",),
        connector=("multi_modal_projector", "image_newline"),
        language_model=("language_model",),
        connector_modules=("multi_modal_projector",),
        connector_tensors=("image_newline",),
        processor_classes=("LlavaNextProcessor",),
        image_inputs=("image_sizes",),
        chat_template=None,  # LLaVA-1.6's LM is Vicuna, Mistral, Llama 3 or Qwen: chosen by the vocabulary
    ),
    "internvl": Family(
        model_types=("internvl",),
        vision_tower=("vision_tower",),
        connector=("multi_modal_projector",),
        language_model=("language_model",),
        connector_modules=("multi_modal_projector",),
        processor_classes=("InternVLProcessor",),
        # the processor expands `<IMG_CONTEXT>` into `<img>`, the tiles' `<IMG_CONTEXT>` tokens, `</img>`
        image_text="<IMG_CONTEXT>",
        image_marker="<IMG_CONTEXT>",
        feature_token="<IMG_CONTEXT>",
    ),
    "idefics3": Family(
        model_types=("idefics3", "smolvlm"),
        vision_tower=("vision_model",),
        connector=("connector",),
        language_model=("text_model",),
        connector_modules=("connector",),
        processor_classes=("Idefics3Processor", "SmolVLMProcessor"),
        image_inputs=("pixel_attention_mask",),
        chat_template="idefics",
    ),
    "qwen_vl": Family(
        model_types=("qwen2_vl", "qwen2_5_vl", "qwen3_vl"),
        # the merger (and Qwen3-VL's deepstack mergers) sit inside `visual`: listed first, they win
        vision_tower=("visual",),
        connector=("merger", "deepstack_merger_list"),
        language_model=("language_model",),
        connector_modules=("merger", "deepstack_merger_list"),
        processor_classes=("Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor"),
        image_text="<|vision_start|><|image_pad|><|vision_end|>",
        image_marker="<|image_pad|>",
        feature_token="<|image_pad|>",
        token_type_input="mm_token_type_ids",
        image_inputs=("image_grid_thw",),
    ),
    "gemma3": Family(
        model_types=("gemma3",),
        vision_tower=("vision_tower",),
        connector=("multi_modal_projector",),
        language_model=("language_model",),
        connector_modules=("multi_modal_projector",),
        processor_classes=("Gemma3Processor",),
        image_text="<start_of_image>",
        image_marker="<start_of_image>",
        feature_token="<image_soft_token>",
        token_type_input="token_type_ids",
        chat_template="gemma",
    ),
}

BY_MODEL_TYPE: dict[str, Family] = {t: family for family in FAMILIES.values() for t in family.model_types}


def supported_model_types() -> tuple[str, ...]:
    """The model types scitune trains, those the installed transformers has (qwen3_vl is recent)."""
    from transformers import CONFIG_MAPPING

    return tuple(t for t in BY_MODEL_TYPE if t in CONFIG_MAPPING)


def check_family(model_type: str | None, where: str) -> Family:
    """The family of `model_type`; a ScituneError in one line (naming `where` and the supported
    types) for any other."""
    if model_type in supported_model_types():
        return BY_MODEL_TYPE[model_type]
    expected = ", ".join(repr(t) for t in supported_model_types())
    raise ScituneError(f"{where} has model_type {model_type!r}; expected {expected} (the model families scitune trains)")


def family_of(model) -> Family:
    """The family of a (possibly peft-wrapped) model, from its config."""
    config = model.config
    return check_family(getattr(config, "model_type", None), f"model {type(model).__name__}")


def family_of_processor(processor) -> Family | None:
    """The family whose processor class `processor` is (None for a bare tokenizer)."""
    name = type(processor).__name__
    return next((f for f in FAMILIES.values() if name in f.processor_classes), None)
