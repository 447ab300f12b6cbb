"""Tiny presets of the model families (`tiny-qwen2.5-vl`, `tiny-gemma3`, ...): each family's real
config and model class with random weights and small sizes, its own processor class, and the
tiny preset's byte-level BPE tokenizer with the family's special tokens added, all built offline.

They exist so the whole product can be tested per family on a CPU in seconds; nothing about
them is meant to learn. The chat template is the tiny preset's `plain` one with `<image>`
placeholders written as the family's image marker (`<|vision_start|><|image_pad|><|vision_end|>`
for Qwen, `<start_of_image>` for Gemma 3, `<IMG_CONTEXT>` for InternVL, `<image>` for LLaVA-OneVision,
LLaVA-NeXT and Idefics3).

In transformers 5 the processors of Qwen2/2.5/3-VL, SmolVLM, LLaVA-OneVision and InternVL hold a
video processor, which needs torchvision; without it they are built in their images-only form
(scitune.model.processors), which gives the same ids and pixels for images.
"""

from __future__ import annotations

from collections.abc import Iterable

from scitune.data.chat_templates import CHAT_TEMPLATES, TEMPLATE_TOKENS
from scitune.errors import ScituneError

# preset name -> model_type
FAMILY_PRESETS = {
    "tiny-llava-onevision": "llava_onevision",
    "tiny-llava-next": "llava_next",
    "tiny-internvl": "internvl",
    "tiny-idefics3": "idefics3",
    "tiny-smolvlm": "smolvlm",
    "tiny-qwen2-vl": "qwen2_vl",
    "tiny-qwen2.5-vl": "qwen2_5_vl",
    "tiny-qwen3-vl": "qwen3_vl",
    "tiny-gemma3": "gemma3",
}

# the text model of every tiny family: 2 layers, 64 wide
TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=1024,
)
# vision towers: 32 px tiles of 8 px patches (16 patches, 4 tokens after a 2x2 merge)
TINY_IMAGE, TINY_PATCH = 32, 8
_VIT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=TINY_IMAGE, patch_size=TINY_PATCH)

_IDEFICS_TOKENS = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)
]
# model_type -> (special tokens to add, named extra special tokens, how the template writes an image)
FAMILY_TOKENS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "llava_onevision": (["<image>", "<video>"], {"image_token": "<image>", "video_token": "<video>"}, "<image>"),
    "llava_next": (["<image>"], {"image_token": "<image>"}, "<image>"),
    "internvl": (
        ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
        {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
        "<IMG_CONTEXT>",
    ),
    "idefics3": (_IDEFICS_TOKENS, {"image_token": "<image>"}, "<image>"),
    "smolvlm": (_IDEFICS_TOKENS, {"image_token": "<image>"}, "<image>"),
    "gemma3": (
        ["<start_of_image>", "<image_soft_token>", "<end_of_image>"],
        {"boi_token": "<start_of_image>", "image_token": "<image_soft_token>", "eoi_token": "<end_of_image>"},
        "<start_of_image>",
    ),
}
_QWEN = (
    ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"],
    {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"},
    "<|vision_start|><|image_pad|><|vision_end|>",
)
for _qwen in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
    FAMILY_TOKENS[_qwen] = _QWEN

def family_template(model_type: str, base: str = "plain") -> str:
    """The `base` chat template with `<image>` placeholders written as the family's image marker."""
    marker = FAMILY_TOKENS[model_type][2]
    template = CHAT_TEMPLATES[base]
    if marker == "<image>":
        return template
    # the shared render macro writes `<image>` for an image part and leaves strings as they are
    template = template.replace("{{ '<image>\\n' }}", "{{ '" + marker + "\\n' }}")
    return template.replace("{%- if content is string -%}{{ content }}", "{%- if content is string -%}{{ content | replace('<image>', '" + marker + "') }}")


def tiny_family_tokenizer(
    model_type: str, texts: Iterable[str] | None = None, vocab_size: int = 1024, chat_template: str = "plain"
):
    """The tiny BPE tokenizer with the family's special tokens and chat template (a name in
    scitune.data.chat_templates; its turn markers are added as special tokens)."""
    from transformers import PreTrainedTokenizerFast

    from scitune.model.tokenizer import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, train_bpe_tokenizer

    added, named, _ = FAMILY_TOKENS[model_type]
    base = train_bpe_tokenizer(texts, vocab_size=vocab_size)
    backend = base.backend_tokenizer
    added = [*added, *TEMPLATE_TOKENS.get(chat_template, ())]  # the template's turn markers, as real vocabularies have them
    backend.add_special_tokens([t for t in added if t not in base.get_vocab()])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=named,
        model_max_length=TINY_TEXT["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    if chat_template not in CHAT_TEMPLATES:
        raise ScituneError(f"chat_template {chat_template!r}: expected one of {', '.join(CHAT_TEMPLATES)}")
    tokenizer.chat_template = family_template(model_type, chat_template)
    return tokenizer


def tiny_family_config(model_type: str, tokenizer):
    """The family's real config class, tiny, with the tokenizer's special token ids."""
    import transformers as tf

    ids = tokenizer.convert_tokens_to_ids
    text = dict(
        TINY_TEXT,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if model_type == "llava_onevision":
        return tf.LlavaOnevisionConfig(
            text_config=dict(model_type="qwen2", **text),
            vision_config=dict(model_type="siglip_vision_model", **_VIT),
            image_token_index=ids("<image>"),
            video_token_index=ids("<video>"),
            image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
            vision_feature_layer=-1,
            vision_feature_select_strategy="full",
            tie_word_embeddings=False,
        )
    if model_type == "llava_next":  # a CLIP tower with its class token, as LLaVA-1.6's
        return tf.LlavaNextConfig(
            text_config=dict(model_type="llama", **text),
            vision_config=dict(model_type="clip_vision_model", **_VIT),
            image_token_index=ids("<image>"),
            image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
            tie_word_embeddings=False,
        )
    if model_type == "internvl":  # 32 px tiles of 8 px patches, pixel-shuffled by 0.5: 4 tokens a tile
        return tf.InternVLConfig(
            text_config=dict(model_type="qwen2", **text),
            vision_config=_VIT,
            image_token_id=ids("<IMG_CONTEXT>"),
            image_seq_length=4,
            downsample_ratio=0.5,
            tie_word_embeddings=False,
        )
    if model_type in ("idefics3", "smolvlm"):
        config_class = tf.Idefics3Config if model_type == "idefics3" else tf.SmolVLMConfig
        vision = {k: v for k, v in _VIT.items()}
        return config_class(text_config=dict(model_type="llama", **text), vision_config=vision, image_token_id=ids("<image>"), scale_factor=2)
    if model_type in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        tokens = dict(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"))
        if model_type == "qwen2_vl":
            vision = dict(depth=2, embed_dim=32, hidden_size=TINY_TEXT["hidden_size"], num_heads=2, patch_size=TINY_PATCH, spatial_merge_size=2, temporal_patch_size=2, mlp_ratio=2)
            return tf.Qwen2VLConfig(text_config=dict(**text, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}), vision_config=vision, **tokens)
        vision = dict(depth=2, hidden_size=32, out_hidden_size=TINY_TEXT["hidden_size"], intermediate_size=64, num_heads=2, patch_size=TINY_PATCH, spatial_merge_size=2, temporal_patch_size=2)
        if model_type == "qwen2_5_vl":
            vision.update(fullatt_block_indexes=[1], window_size=32)
            return tf.Qwen2_5_VLConfig(text_config=dict(**text, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}), vision_config=vision, **tokens)
        vision.update(deepstack_visual_indexes=[1], num_position_embeddings=64)
        rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True}
        return tf.Qwen3VLConfig(text_config=dict(**text, rope_scaling=rope), vision_config=vision, **tokens)
    if model_type == "gemma3":
        return tf.Gemma3Config(
            text_config=dict(**text, sliding_window=64),
            vision_config=_VIT,
            mm_tokens_per_image=4,
            image_token_index=ids("<image_soft_token>"),
            boi_token_index=ids("<start_of_image>"),
            eoi_token_index=ids("<end_of_image>"),
        )
    raise ScituneError(f"no tiny preset for model_type {model_type!r}")


def tiny_family_model(model_type: str, tokenizer):
    """The family's model class (AutoModelForImageTextToText), random weights, generation greedy."""
    from transformers import AutoModelForImageTextToText

    import torch

    model = AutoModelForImageTextToText.from_config(tiny_family_config(model_type, tokenizer))
    if model_type == "gemma3":
        # transformers starts Gemma 3's projection at zero (images invisible to the LM, and its
        # norm gets no gradient); a tiny random model should see its images from the first step
        with torch.no_grad():
            model.model.multi_modal_projector.mm_input_projection_weight.normal_(std=0.02)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.do_sample = False
    return model


def tiny_family_image_processor(model_type: str):
    """The family's own image processor class (the PIL backend: no torchvision), small sizes."""
    import transformers as tf

    if model_type == "llava_onevision":
        size = {"height": TINY_IMAGE, "width": TINY_IMAGE}
        return tf.LlavaOnevisionImageProcessorPil(size=size, crop_size=size, image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]])
    if model_type == "llava_next":
        return tf.LlavaNextImageProcessorPil(
            size={"shortest_edge": TINY_IMAGE}, crop_size={"height": TINY_IMAGE, "width": TINY_IMAGE},
            image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]], do_pad=True,
        )
    if model_type == "internvl":  # crop_to_patches as InternVLProcessor always asks it
        return tf.GotOcr2ImageProcessorPil(size={"height": TINY_IMAGE, "width": TINY_IMAGE}, crop_to_patches=True, min_patches=1, max_patches=4)
    if model_type in ("idefics3", "smolvlm"):
        cls = tf.Idefics3ImageProcessorPil if model_type == "idefics3" else tf.SmolVLMImageProcessorPil
        return cls(size={"longest_edge": 2 * TINY_IMAGE}, max_image_size={"longest_edge": TINY_IMAGE})
    if model_type in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        return tf.Qwen2VLImageProcessorPil(
            patch_size=TINY_PATCH, merge_size=2, temporal_patch_size=2, min_pixels=TINY_IMAGE**2, max_pixels=(2 * TINY_IMAGE) ** 2
        )
    if model_type == "gemma3":
        return tf.Gemma3ImageProcessorPil(size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    raise ScituneError(f"no tiny preset for model_type {model_type!r}")


def tiny_family_processor(model_type: str, tokenizer):
    """The family's own processor class around the tiny tokenizer and image processor (without
    torchvision, the images-only form of a class that holds a video processor:
    scitune.model.processors)."""
    import transformers as tf

    from scitune.model.processors import build_processor, has_torchvision

    images = tiny_family_image_processor(model_type)
    template = tokenizer.chat_template
    if model_type == "idefics3":
        return tf.Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4, chat_template=template)
    if model_type == "gemma3":
        return tf.Gemma3Processor(image_processor=images, tokenizer=tokenizer, image_seq_length=4, chat_template=template)
    if model_type == "llava_next":  # CLIP's class token: one more feature per tile, dropped by the "default" strategy
        return tf.LlavaNextProcessor(
            image_processor=images, tokenizer=tokenizer, patch_size=TINY_PATCH, vision_feature_select_strategy="default",
            num_additional_image_tokens=1, chat_template=template,
        )
    # the processors below hold a video processor, built only where torchvision is installed
    video = None
    if model_type == "smolvlm":
        if has_torchvision():
            video = tf.SmolVLMVideoProcessor()
        return build_processor(tf.SmolVLMProcessor, image_processor=images, tokenizer=tokenizer, video_processor=video, image_seq_len=4, chat_template=template)
    if model_type == "internvl":
        if has_torchvision():
            video = tf.InternVLVideoProcessor(size={"height": TINY_IMAGE, "width": TINY_IMAGE})
        return build_processor(tf.InternVLProcessor, image_processor=images, tokenizer=tokenizer, video_processor=video, image_seq_length=4, chat_template=template)
    if model_type == "llava_onevision":
        if has_torchvision():
            video = tf.LlavaOnevisionVideoProcessor()
        return build_processor(
            tf.LlavaOnevisionProcessor, image_processor=images, tokenizer=tokenizer, video_processor=video,
            num_image_tokens=(TINY_IMAGE // TINY_PATCH) ** 2, vision_feature_select_strategy="full", chat_template=template,
        )
    if has_torchvision():
        video = tf.Qwen2VLVideoProcessor(patch_size=TINY_PATCH, merge_size=2, temporal_patch_size=2)
    cls = {"qwen2_vl": tf.Qwen2VLProcessor, "qwen2_5_vl": tf.Qwen2_5_VLProcessor, "qwen3_vl": tf.Qwen3VLProcessor}[model_type]
    return build_processor(cls, image_processor=images, tokenizer=tokenizer, video_processor=video, chat_template=template)


def build_family_preset(preset: str, texts: Iterable[str] | None = None, vocab_size: int = 1024, chat_template: str = "plain"):
    """(model, processor) of a tiny family preset."""
    if preset not in FAMILY_PRESETS:
        raise ScituneError(f"unknown preset {preset!r}; expected one of {', '.join(FAMILY_PRESETS)}")
    model_type = FAMILY_PRESETS[preset]
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise ScituneError(f"preset {preset!r}: the installed transformers has no {model_type} model")
    tokenizer = tiny_family_tokenizer(model_type, texts, vocab_size, chat_template)
    processor = tiny_family_processor(model_type, tokenizer)
    return tiny_family_model(model_type, tokenizer), processor
