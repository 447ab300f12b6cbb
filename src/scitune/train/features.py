"""The training forward pass, with an optional vision feature cache.

`TrainingModule` wraps the Llava model so that one `forward(batch)` serves both paths (and DDP
wraps this module, so every trainable parameter is used inside its forward):
- pixels: the stock Llava forward;
- cached features: when the vision tower is frozen (align; instruct without tune_vision), its selected hidden states
  (layer `vision_feature_layer`, CLS dropped as the config says) are computed once per image and
  reused across epochs; the forward then projects them and scatters them into the token
  embeddings exactly as Llava does, and runs the LM on `inputs_embeds`.
The loss is the token-level cross-entropy summed over the batch and divided by
`num_items_in_batch` (the global batch's supervised-token count), so any split of a global batch
over processes and accumulation steps gives the same gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from scitune.model.parts import part_of
from scitune.prompting.collate import IMAGE_INPUTS, TOKEN_TYPE_INPUTS
from scitune.prompting.render import IGNORE_INDEX


class TrainingModule(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    @property
    def llava(self):
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def forward(self, batch: dict, num_items_in_batch: int) -> torch.Tensor:
        # A packed batch (scitune.prompting.packing) brings position ids and a 4-D mask, or one
        # flat row with its sample boundaries; no KV cache is built while training.
        labels = batch["labels"]
        # next-token targets: position t predicts labels[t + 1]; the lm_head and the softmax run
        # only where that target is supervised (transformers' `logits_to_keep` as a boolean mask),
        # not over every prompt and image token; the sum is the same cross-entropy
        targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
        keep = targets != IGNORE_INDEX
        common = dict(attention_mask=batch.get("attention_mask"), logits_to_keep=keep, use_cache=False)
        if "position_ids" in batch:
            common["position_ids"] = batch["position_ids"]
        if "cu_seq_lens" in batch:
            bounds = batch["cu_seq_lens"].to(labels.device)
            common.update(cu_seq_lens_q=bounds, cu_seq_lens_k=bounds, max_length_q=batch["max_seq_len"], max_length_k=batch["max_seq_len"])
        # a model family's own inputs: per-token types (Qwen's M-RoPE, Gemma 3's image attention)
        # and per-image ones (image_grid_thw, pixel_attention_mask, image_sizes)
        common.update({k: batch[k] for k in (*TOKEN_TYPE_INPUTS, *IMAGE_INPUTS) if k in batch})
        unused = []
        if "vision_features" not in batch:
            if "pixel_values" in batch:
                logits = self.model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"], **common).logits
            else:
                # A text-only batch leaves the projector (and a trainable vision tower) out of
                # the graph; a zero term keeps them in, so DDP sees every parameter in every step.
                logits = self.model(input_ids=batch["input_ids"], **common).logits
                unused = [
                    p for n, p in self.llava.named_parameters()
                    if p.requires_grad and part_of(n) in ("projector", "vision_tower")
                ]
        else:
            llava = self.llava
            input_ids = batch["input_ids"]
            embeds = llava.get_input_embeddings()(input_ids)
            image_embeds = llava.model.multi_modal_projector(batch["vision_features"]).to(embeds.dtype)
            mask = (input_ids == llava.config.image_token_id).unsqueeze(-1).expand_as(embeds)
            if int(mask.sum()) != image_embeds.numel():
                raise ValueError("image tokens and cached image features do not match")
            embeds = embeds.masked_scatter(mask, image_embeds)
            logits = self.model(inputs_embeds=embeds, **common).logits
        # as transformers' causal-LM loss: fp32 cross-entropy summed, over the global count
        loss = torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
        return loss + sum(p.sum() for p in unused) * 0.0 if unused else loss


@torch.no_grad()
def vision_features(llava, pixel_values: torch.Tensor) -> torch.Tensor:
    """The vision tower's selected features, as `LlavaModel.get_image_features` selects them."""
    config = llava.config
    layer = config.vision_feature_layer
    out = llava.model.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
    layers = [layer] if isinstance(layer, int) else list(layer)
    selected = [out.hidden_states[i] for i in layers]
    if config.vision_feature_select_strategy == "default":
        selected = [h[:, 1:] for h in selected]
    return torch.cat(selected, dim=-1)


class FeatureCache:
    """Per-image vision features, kept in memory (on the CPU) for the whole stage."""

    def __init__(self):
        self._store: dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def features(self, llava, paths: list[str], load_pixels) -> torch.Tensor:
        """Features for `paths`, computing (through `load_pixels(paths)`) only the missing ones."""
        missing = [p for p in dict.fromkeys(paths) if p not in self._store]
        self.misses += len(missing)
        self.hits += len(paths) - len(missing)
        if missing:
            device = next(llava.model.vision_tower.parameters()).device
            dtype = next(llava.model.vision_tower.parameters()).dtype
            computed = vision_features(llava, load_pixels(missing).to(device=device, dtype=dtype))
            for path, value in zip(missing, computed):
                self._store[path] = value.cpu()
        device = next(llava.parameters()).device
        return torch.stack([self._store[p] for p in paths]).to(device)
