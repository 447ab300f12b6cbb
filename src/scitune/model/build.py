"""Building a LLaVA-architecture model: a vision tower, a projector and a causal LM composed into
transformers' stock `LlavaForConditionalGeneration`, with its `LlavaProcessor`.

Projectors. `mlp2x_gelu` (LLaVA-1.5) is the stock projector. `linear` (SciTune, LLaVA-1) is
expressed in the stock class too, so checkpoints load with plain transformers: the projector's
activation is the identity ("linear") and `linear_2` is fixed to the identity matrix and never
trained (scitune.model.stages freezes it). The projector then computes exactly W x + b.

Features come from `vision_feature_layer` (default -2); CLIP towers drop the CLS token
("default" strategy), SigLIP towers have none ("full").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

import torch

import scitune.model.presets as presets
from scitune.config import ModelConfig
from scitune.data.chat_templates import CHAT_TEMPLATES, TEMPLATE_TOKENS, marks_assistant_turns
from scitune.errors import ScituneError
from scitune.model.checkpoint import load_model
from scitune.model.files import check_config_sizes, require_safetensors, resolve_dtype
from scitune.model.tokenizer import IMAGE_TOKEN, ensure_special_tokens, train_bpe_tokenizer

logger = logging.getLogger(__name__)

# model_type -> (kind, has a CLS token)
VISION_TOWER_TYPES = {
    "clip": ("clip", True),
    "clip_vision_model": ("clip", True),
    "siglip": ("siglip", False),
    "siglip_vision_model": ("siglip", False),
}


__all__ = ["build_model", "compose", "image_tokens_per_image", "load_causal_lm", "load_vision_tower", "resolve_dtype"]


def build_model(cfg: ModelConfig, texts: Iterable[str] | None = None):
    """Returns `(model, processor)` for a preset or for any vision tower + causal LM.

    `texts` are what the tiny preset's BPE tokenizer is trained on (ignored otherwise).
    """
    if cfg.checkpoint is not None:
        model, processor = load_model(cfg.checkpoint, dtype=cfg.dtype)
        template = cfg.chat_template or _template_for_checkpoint(processor, model.config.model_type, cfg.checkpoint)
        if template is not None:
            set_chat_template(processor, template, model.config.model_type)
        set_image_processor(processor, cfg.image_processor, model.config.model_type)
        return model, processor
    if cfg.preset is not None:
        presets.check_preset(cfg.preset)
    if cfg.preset in presets.FAMILY_PRESETS:
        from scitune.model.family_presets import build_family_preset

        with _seeded(cfg.seed):
            model, processor = build_family_preset(
                cfg.preset, texts, vocab_size=cfg.vocab_size, chat_template=cfg.chat_template or "plain"
            )
        set_image_processor(processor, cfg.image_processor, model.config.model_type)
        return model.to(resolve_dtype(cfg.dtype)), processor
    set_image_processor(None, cfg.image_processor, "llava")  # refused: a LLaVA composition's size is its tower's
    with _seeded(cfg.seed):
        if cfg.preset == "tiny":
            from transformers import CLIPVisionModel, LlamaForCausalLM

            tokenizer = train_bpe_tokenizer(texts, vocab_size=cfg.vocab_size)
            vision = CLIPVisionModel(presets.tiny_vision_config())
            lm = LlamaForCausalLM(
                presets.tiny_text_config(
                    len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
                )
            )
            image_processor = _default_image_processor("clip", presets.TINY_VISION["image_size"])
            template = cfg.chat_template or "plain"
            kind = "clip"
        else:
            if cfg.preset == "smollm2-135m":
                from transformers import CLIPVisionModel

                gguf = presets.smollm2_gguf_path()
                vision = CLIPVisionModel(presets.tiny_vision_config())
                image_processor = _default_image_processor("clip", presets.TINY_VISION["image_size"])
                kind = "clip"
                lm, tokenizer = load_causal_lm(str(gguf.parent), gguf.name)
            else:
                vision, kind, image_processor = load_vision_tower(cfg.vision_tower)
                lm, tokenizer = load_causal_lm(cfg.language_model, cfg.gguf_file)
            template = cfg.chat_template or _default_template(tokenizer)
        model, processor = compose(vision, kind, lm, tokenizer, image_processor, cfg, template)
    return model.to(resolve_dtype(cfg.dtype)), processor


def set_chat_template(processor, name: str, model_type: str = "llava") -> None:
    """Gives a loaded checkpoint's processor one of scitune's chat templates (they mark assistant
    turns with `{% generation %}`, which the label masks need; a family's own template, such as
    Qwen2.5-VL's, usually does not), with images written as the family's image marker."""
    from scitune.model.family_presets import FAMILY_TOKENS, family_template

    if name not in CHAT_TEMPLATES:
        raise ScituneError(f"chat_template {name!r}: expected one of {', '.join(CHAT_TEMPLATES)}")
    check_template_tokens(processor.tokenizer, name)
    template = family_template(model_type, name) if model_type in FAMILY_TOKENS else CHAT_TEMPLATES[name]
    processor.tokenizer.chat_template = template
    if hasattr(processor, "chat_template"):
        processor.chat_template = template


def _template_for_checkpoint(processor, model_type: str, checkpoint: str) -> str | None:
    """None to keep a checkpoint's own chat template when it marks assistant turns with
    {% generation %} (the exact label masks need them); otherwise scitune's template in the
    family's turn format (Qwen's and OneVision's ChatML, Gemma's, Idefics3's), said in the log."""
    from scitune.model.families import check_family

    own = getattr(processor.tokenizer, "chat_template", None) or getattr(processor, "chat_template", None)
    if marks_assistant_turns(own):
        return None
    name = check_family(model_type, f"checkpoint {checkpoint!r}").chat_template or _default_template(processor.tokenizer)
    logger.info(
        f"checkpoint {checkpoint}: its chat template has no {{% generation %}} blocks (exact label masks need them); "
        f"using scitune's {name!r} template (set model.chat_template to choose another)"
    )
    return name


# image processor arguments that say how to call it, not how it sees an image
_CALL_ONLY = {"return_tensors", "device", "data_format", "input_data_format", "disable_grouping"}


def set_image_processor(processor, settings: dict, model_type: str) -> None:
    """Rebuilds the processor's image processor with `settings` (model.image_processor) through its
    class's own constructor, which maps older keys (Qwen's `max_pixels`) onto its size; the
    processor saves them, so prediction and serving see images as training did."""
    if not settings:
        return
    if model_type == "llava":
        raise ScituneError("model.image_processor: a LLaVA model's image size is fixed by its vision tower; these settings are for model families")
    current = processor.image_processor
    kind = type(current)
    accepted = set(getattr(getattr(kind, "valid_kwargs", None), "__annotations__", {})) - _CALL_ONLY
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ScituneError(
            f"model.image_processor: {kind.__name__} takes no {', '.join(unknown)} (it takes {', '.join(sorted(accepted))})"
        )
    from scitune.model.processors import fixed_image_settings

    fixed = fixed_image_settings(processor)
    overridden = sorted(k for k in settings if k in fixed and settings[k] != fixed[k])
    if overridden:  # the processor would pass its own value anyway, and its ids would not match the pixels
        raise ScituneError(
            f"model.image_processor: {type(processor).__name__} always calls its image processor with "
            f"{', '.join(f'{k}={fixed[k]!r}' for k in overridden)}; that cannot be set otherwise"
        )
    try:
        processor.image_processor = kind.from_dict({**current.to_dict(), **settings})
    except (TypeError, ValueError, KeyError) as err:
        raise ScituneError(f"model.image_processor: {kind.__name__} refused {settings} ({_first_line(err)})") from None


def check_template_tokens(tokenizer, name: str) -> None:
    """A template's turn markers must be single tokens of the vocabulary: the end of an assistant
    turn is what generation stops on, and its pieces would never stop it."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in TEMPLATE_TOKENS.get(name, ()) if t not in vocab]
    if missing:
        raise ScituneError(
            f"chat_template {name!r}: the tokenizer has no {', '.join(missing)} token; choose the template of this "
            f"model's vocabulary (one of {', '.join(CHAT_TEMPLATES)})"
        )


@contextlib.contextmanager
def _seeded(seed: int):
    """Seeds weight initialisation without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _default_template(tokenizer) -> str:
    return "chatml" if "<|im_start|>" in tokenizer.get_vocab() else "vicuna_v1"


def _check_local(name: str | None, what: str) -> None:
    """A name that is a path (or looks like one) must exist; otherwise it is a hub id."""
    if not name:
        raise ScituneError(f"{what}: no model given")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        raise ScituneError(f"{what} {name!r}: model folder not found")


def load_vision_tower(name: str):
    """Loads a CLIP or SigLIP vision tower (a full CLIP/SigLIP checkpoint or its vision part)."""
    from transformers import AutoConfig, AutoImageProcessor

    _check_local(name, "vision tower")
    require_safetensors(Path(name).expanduser(), "vision tower")
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ScituneError(f"vision tower {name!r}: cannot read its config ({_first_line(err)})") from None
    check_config_sizes(config, f"vision tower {name!r}")
    model_type = getattr(config, "model_type", None)
    if model_type not in VISION_TOWER_TYPES:
        raise ScituneError(
            f"vision tower {name!r}: model_type {model_type!r} is not a vision tower; "
            f"expected one of {', '.join(VISION_TOWER_TYPES)}"
        )
    kind, _ = VISION_TOWER_TYPES[model_type]
    vision_config = getattr(config, "vision_config", config)
    _check_geometry(name, vision_config)
    if kind == "clip":
        from transformers import CLIPVisionModel as VisionModel
    else:
        from transformers import SiglipVisionModel as VisionModel
    try:
        vision = VisionModel.from_pretrained(name, config=vision_config, use_safetensors=True)
    except OSError as err:
        raise ScituneError(f"vision tower {name!r}: cannot load weights ({_first_line(err)})") from None
    try:
        image_processor = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        image_processor = _default_image_processor(kind, vision_config.image_size)
    return vision, kind, image_processor


def _check_geometry(name: str, vision_config) -> None:
    size, patch = vision_config.image_size, vision_config.patch_size
    if size % patch:
        raise ScituneError(
            f"vision tower {name!r}: image_size {size} is not a multiple of patch_size {patch}; "
            "expected image_size = k * patch_size"
        )


def _default_image_processor(kind: str, size: int):
    if kind == "clip":
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    from transformers import SiglipImageProcessorPil

    return SiglipImageProcessorPil(size={"height": size, "width": size})


def load_causal_lm(name: str, gguf_file: str | None = None):
    """Loads any HF causal LM (Llama, Mistral, Qwen2, ...) and its tokenizer; `gguf_file` names a
    GGUF file inside the `name` folder (transformers dequantises it)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _check_local(name, "language model")
    if gguf_file and not (Path(name) / gguf_file).is_file():
        raise ScituneError(f"language model {name!r}: GGUF file {gguf_file!r} not found in that folder")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    if not gguf_file:
        require_safetensors(Path(name).expanduser(), "language model")
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
        check_config_sizes(config, f"language model {name!r}")
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        weights = kwargs if gguf_file else {"use_safetensors": True}
        lm = AutoModelForCausalLM.from_pretrained(name, config=config, dtype=torch.float32, **weights)
    except (OSError, ValueError) as err:
        raise ScituneError(f"language model {name!r}: cannot load it as a causal LM ({_first_line(err)})") from None
    if gguf_file:
        forget_gguf_quantization(lm)
    return lm, tokenizer


def forget_gguf_quantization(lm) -> None:
    """transformers dequantises GGUF weights into ordinary fp32 tensors on load but keeps a GGUF
    `quantization_config` on the model; saved with it, the checkpoint reads as quantized and
    plain `transformers` trainers (TRL's `SFTTrainer`, the HF `Trainer`) refuse to fine-tune it.
    The weights are plain tensors, so the marks go."""
    for holder, names in ((lm.config, ("quantization_config", "_is_quantized")), (lm, ("hf_quantizer", "quantization_method"))):
        for attr in names:
            if attr in vars(holder):
                delattr(holder, attr)
    if "is_quantized" in vars(lm):
        lm.is_quantized = False


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def compose(vision, kind: str, lm, tokenizer, image_processor, cfg: ModelConfig, template: str):
    """Composes the parts into a stock `LlavaForConditionalGeneration` and its processor."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    if template not in CHAT_TEMPLATES:
        raise ScituneError(f"chat_template {template!r}: expected one of {', '.join(CHAT_TEMPLATES)}")
    vision_config = vision.config
    _check_geometry("(vision tower)", vision_config)
    crop = _processor_size(image_processor)
    if crop != vision_config.image_size:
        raise ScituneError(
            f"image processor output size {crop} does not match the vision tower's image_size "
            f"{vision_config.image_size}"
        )
    _, has_cls = VISION_TOWER_TYPES[vision_config.model_type]
    ensure_special_tokens(tokenizer)
    check_template_tokens(tokenizer, template)
    tokenizer.chat_template = CHAT_TEMPLATES[template]
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    patches = (vision_config.image_size // vision_config.patch_size) ** 2

    text_config = lm.config
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_token_id,
        image_seq_length=patches,
        projector_hidden_act="linear" if cfg.projector == "linear" else "gelu",
        vision_feature_layer=cfg.vision_feature_layer,
        vision_feature_select_strategy="default" if has_cls else "full",
        multimodal_projector_bias=True,
        tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)),
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    # Reuse the loaded parts as they are (weights, buffers and ties included).
    model.model.vision_tower = vision
    model.model.language_model = lm.get_decoder()
    model.lm_head = lm.get_output_embeddings()
    model.model.multi_modal_projector = LlavaMultiModalProjector(config)
    init_projector(model)
    if len(tokenizer) != model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.text_config.vocab_size = len(tokenizer)
    model.config.text_config.pad_token_id = tokenizer.pad_token_id
    for gen in (model.generation_config,):
        gen.pad_token_id = tokenizer.pad_token_id
        gen.bos_token_id = tokenizer.bos_token_id
        gen.eos_token_id = tokenizer.eos_token_id
        gen.do_sample = False
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1 if has_cls else 0,
        chat_template=CHAT_TEMPLATES[template],
    )
    return model, processor


def _processor_size(image_processor) -> int:
    crop = getattr(image_processor, "crop_size", None)
    if getattr(image_processor, "do_center_crop", False) and crop:
        return crop["height"]
    size = image_processor.size
    return size.get("height") or size.get("shortest_edge")


def is_linear_projector(config) -> bool:
    return config.projector_hidden_act == "linear"


def init_projector(model) -> None:
    """Fresh projector weights; for the linear projector, linear_2 is the fixed identity."""
    projector = model.model.multi_modal_projector
    for layer in (projector.linear_1, projector.linear_2):
        layer.reset_parameters()
    if is_linear_projector(model.config):
        with torch.no_grad():
            projector.linear_2.weight.copy_(torch.eye(projector.linear_2.weight.shape[0]))
            projector.linear_2.bias.zero_()


def image_tokens_per_image(config) -> int:
    """How many `<image>` tokens one image becomes in the LM input."""
    return config.image_seq_length
