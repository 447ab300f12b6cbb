"""Training state under any parallelism, through torch's distributed-checkpoint API.

One code path saves and loads the trainable weights and the optimizer whether the model runs in
one process, under DDP, under FSDP (accelerate's v1 plugin or torch's `fully_shard`, FSDP2) or
(through DeepSpeed's own engine) under ZeRO-2/3:

- `torch.distributed.checkpoint.state_dict.get_model_state_dict / get_optimizer_state_dict`
  give the state keyed by parameter name (wrapper prefixes removed), as local shards (DTensors
  under FSDP) or, with `full=True`, gathered onto the main process on the CPU;
- sharded checkpoints are written by every process at once with `dcp.save` and
  `HuggingFaceStorageWriter`: one safetensors file per process holding its shards, their offsets
  in the file's metadata. Nothing is gathered, so a 13B optimizer never sits on one process;
- loading reads them with `HuggingFaceStorageReader` into this run's own layout, whatever the
  number of processes that wrote them (DCP reshards), then `set_model_state_dict` /
  `set_optimizer_state_dict`. The reader builds its metadata from the safetensors headers:
  nothing is unpickled;
- the optimizer's non-tensor values (param groups: betas, eps, ...) go to JSON.

Only the trainable parameters are saved (the frozen rest is rebuilt from the recipe).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from scitune.errors import ScituneError

# Wrapper names that parameter names carry under DDP, FSDP1 and activation checkpointing.
_WRAPPERS = re.compile(r"(^|\.)(module|_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod)(?=\.)")


def clean_name(name: str) -> str:
    """A parameter name without DDP/FSDP1/checkpoint-wrapper components."""
    return _WRAPPERS.sub("", name).lstrip(".")


def plain_optimizer(optimizer):
    """The torch optimizer inside accelerate's AcceleratedOptimizer."""
    return getattr(optimizer, "optimizer", optimizer)


def trainable_names(module) -> set[str]:
    """Names (as the state-dict API gives them) of the parameters that train."""
    return {clean_name(n) for n, p in module.named_parameters() if p.requires_grad}


def _options(full: bool, flatten: bool = False) -> StateDictOptions:
    return StateDictOptions(
        full_state_dict=full, cpu_offload=full, ignore_frozen_params=True, flatten_optimizer_state_dict=flatten
    )


def model_state(module, full: bool = False) -> dict[str, torch.Tensor]:
    """The trainable weights: local shards (DTensors under FSDP), or with `full` the whole
    tensors on the CPU of the main process (the others get an empty dict). Collective."""
    names = trainable_names(module)
    state = get_model_state_dict(module, options=_options(full))
    # a frozen weight tied to another (lm_head to the embeddings) is not ours to save
    return {k: v for k, v in state.items() if k in names}


def optimizer_state(module, optimizer, full: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, other values) of the optimizer's flattened state dict (`state.<param>.<key>`,
    `param_groups.<param>.<key>`). Collective."""
    state = get_optimizer_state_dict(module, plain_optimizer(optimizer), options=_options(full, flatten=True))
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
    other = {k: (list(v) if isinstance(v, tuple) else v) for k, v in state.items() if not torch.is_tensor(v)}
    return tensors, other


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def save_tensors(folder: Path, tensors: dict[str, torch.Tensor], full: bool, is_main: bool) -> None:
    """Sharded: every process writes its shards (`dcp.save`, one safetensors file each).
    Full, or a single process: the main process writes its (whole) tensors as one safetensors
    file. (Through DCP's writer, the final checkpoint of a one-process SmolLM2-135M run raised
    its peak RSS from 4.2 to 5.9 GiB; written as a plain file it adds nothing. The loader reads
    either layout.)"""
    from torch.distributed.checkpoint import HuggingFaceStorageWriter, save

    if full or not is_distributed():
        if is_main:
            from safetensors.torch import save_file

            folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "full.safetensors"))
        return
    writer = HuggingFaceStorageWriter(str(folder), save_distributed=True)
    save({k: v.detach() for k, v in tensors.items()}, storage_writer=writer, no_dist=not is_distributed())


def saved_keys(folder: Path) -> set[str]:
    """The tensor names in a folder of safetensors files (headers only)."""
    from safetensors import safe_open

    keys: set[str] = set()
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as handle:
            keys.update(handle.keys())
    return keys


def load_tensors(folder: Path, template: dict[str, torch.Tensor], what: str) -> None:
    """Fills `template` (this run's layout: shards or whole tensors) in place from `folder`."""
    from torch.distributed.checkpoint import HuggingFaceStorageReader, load

    found = saved_keys(folder)
    if found != set(template):
        missing, unexpected = sorted(set(template) - found), sorted(found - set(template))
        raise ScituneError(
            f"checkpoint {folder.parent}: its {what} does not match this stage's trainable parameters "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    load(template, storage_reader=HuggingFaceStorageReader(str(folder)), no_dist=not is_distributed())


def save_training_state(checkpoint: Path, module, optimizer, full: bool, is_main: bool) -> None:
    """Writes `model/`, `optimizer/` and `optimizer.json` into `checkpoint` (all processes)."""
    save_tensors(checkpoint / "model", model_state(module, full), full, is_main)
    tensors, other = optimizer_state(module, optimizer, full)
    save_tensors(checkpoint / "optimizer", tensors, full, is_main)
    if is_main:
        (checkpoint / "optimizer.json").write_text(json.dumps(other))


def load_training_state(checkpoint: Path, module, optimizer) -> None:
    """Restores the trainable weights and the optimizer from `checkpoint` (all processes), in
    this run's sharding, whatever the sharding (or format) that wrote it."""
    weights = model_state(module)
    load_tensors(checkpoint / "model", weights, "weights")
    set_model_state_dict(module, weights, options=StateDictOptions(strict=False))
    optimizer = plain_optimizer(optimizer)
    # a fresh optimizer has no state yet: the state-dict API creates it (a step at lr 0), then
    # every value is replaced by the checkpoint's
    state = get_optimizer_state_dict(module, optimizer, options=_options(False, flatten=True))
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
    load_tensors(checkpoint / "optimizer", tensors, "optimizer state")
    other = json.loads((checkpoint / "optimizer.json").read_text())
    if set(other) != {k for k in state if not torch.is_tensor(state[k])}:
        raise ScituneError(f"checkpoint {checkpoint}: optimizer.json does not match this stage's optimizer")
    state.update(tensors)
    state.update(other)
    set_optimizer_state_dict(module, optimizer, state, options=_options(False, flatten=True))


def full_trainable_state(module) -> dict[str, torch.Tensor]:
    """The trained weights, whole, on the main process's CPU (empty elsewhere). Collective."""
    return model_state(module, full=True)


# ---------------------------------------------------------------- FSDP2 applied by scitune


def language_model_layers(model) -> list[torch.nn.Module]:
    """The decoder layers of the model's language model, found where its family's table row
    says the language model lives (`language_model`, Idefics3's `text_model`): the FSDP2 units."""
    from scitune.model.families import FAMILIES

    fragments = {f for family in FAMILIES.values() for f in family.language_model}
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, torch.nn.ModuleList) and len(parts) >= 2 and parts[-1] == "layers" and parts[-2] in fragments:
            return list(module)
    return []


def apply_fsdp2(model, layer_classes: tuple[str, ...] | None = None, mixed_precision: str = "no") -> None:
    """Shards `model` with torch's `fully_shard`: each decoder layer of the language model
    (`layer_classes`, or by default the layers the families table locates), then the whole model
    (which holds the vision tower, connector and embeddings, so that every process gathers them
    on every forward, with or without images in its batch). The vision blocks are not units of
    their own, with `tune_vision` either: a process whose micro-batch has no image does not run
    them, and a unit's all-gather must run on every process. Needs an initialised process group."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy()
    if mixed_precision == "bf16":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    elif mixed_precision == "fp16":
        policy = MixedPrecisionPolicy(param_dtype=torch.float16, reduce_dtype=torch.float32)
    if layer_classes is None:
        layers = language_model_layers(model)
        if not layers:
            raise ScituneError("sharding: found no decoder layers of a language model to shard")
    else:
        layers = [m for m in model.modules() if type(m).__name__ in layer_classes]
        if not layers:
            raise ScituneError(f"sharding: the model has no {', '.join(layer_classes)} layers to shard")
    for layer in layers:
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def grad_norm_value(norm) -> float:
    """A gradient norm as a float (a DTensor's under FSDP2)."""
    if norm is None:
        return float("nan")
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def shards_parameters(accelerator) -> bool:
    """Whether accelerate's launch shards the parameters (FSDP, or DeepSpeed ZeRO-3)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False
