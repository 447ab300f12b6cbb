"""The streamed data path, per-module learning rates, the sharded checkpoint checks, gpu_check --smoke."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from scitune.config import load_recipe
from scitune.train.dataset import modality_grouped_order, record_offsets
from scitune.train.log import read_metrics
from scitune.train.run import run_recipe
from scitune.train.state import checkpoint_problem, latest_good_checkpoint, list_checkpoints

from .data import write_dataset, write_recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("SCITUNE_CACHE", str(tmp_path / "cache"))
    return write_dataset(tmp_path / "data", n=16, text_only=4)


def test_offsets_of_json_and_jsonl_are_the_records(tmp_path, dataset):
    train, _ = dataset
    samples = json.loads(train.read_text())
    spans = record_offsets(train)
    raw = train.read_bytes()
    assert [json.loads(raw[a:b]) for a, b in spans] == samples
    lines = tmp_path / "t.jsonl"
    lines.write_text("\n".join(json.dumps(s, ensure_ascii=False) for s in samples) + "\n\n")
    assert [json.loads(lines.read_bytes()[a:b]) for a, b in record_offsets(lines)] == samples


def test_workers_and_cache_give_the_same_run(tmp_path, dataset):
    """Rendering in 2 DataLoader workers (and the index from the cache) trains exactly as in-process."""
    a = write_recipe(tmp_path / "a.yaml", *dataset, tmp_path / "a", with_instruct=False)
    b = write_recipe(tmp_path / "b.yaml", *dataset, tmp_path / "b", with_instruct=False,
                     align={"data": {"train": str(dataset[0]), "images": str(dataset[1]), "max_length": 64, "num_workers": 2}})
    run_recipe(load_recipe(str(a)))
    cached = list((tmp_path / "cache" / "data-index").glob("*.safetensors"))
    assert len(cached) == 1
    run_recipe(load_recipe(str(b)))
    assert list((tmp_path / "cache" / "data-index").glob("*.safetensors")) == cached  # not rebuilt
    la = [r["loss"] for r in read_metrics(tmp_path / "a" / "align" / "metrics.jsonl")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "b" / "align" / "metrics.jsonl")]
    assert la == lb


def test_modality_grouping_keeps_kinds_apart():
    lengths = np.arange(40) % 7 + 5
    has_image = np.arange(40) % 4 != 0  # 30 with images, 10 text-only
    order = modality_grouped_order(lengths, has_image, group=5, seed=0, epoch=0)
    assert sorted(order.tolist()) == list(range(40))
    batches = order.reshape(-1, 5)
    assert all(len(set(has_image[b].tolist())) == 1 for b in batches)
    assert not np.array_equal(order, modality_grouped_order(lengths, has_image, group=5, seed=0, epoch=1))


def test_projector_lr_moves_only_the_projector_group(tmp_path, dataset):
    """instruct with projector_lr: the projector follows its own rate (here 0: frozen in effect)."""
    recipe = write_recipe(tmp_path / "r.yaml", *dataset, tmp_path / "run", instruct={"projector_lr": 1e-12, "lr": 1e-3})
    run_recipe(load_recipe(str(recipe)))
    align = load_file(str(tmp_path / "run" / "align" / "projector.safetensors"))
    instruct = load_file(str(tmp_path / "run" / "instruct" / "projector.safetensors"))
    assert all((align[k] - instruct[k]).abs().max() < 1e-8 for k in align)  # lr 1e-12: practically unchanged
    final = load_file(str(tmp_path / "run" / "instruct" / "final" / "model.safetensors"))
    state = json.loads(next((tmp_path / "run" / "instruct" / "checkpoints").glob("step-*/optimizer.json")).read_text())
    lrs = {k.rsplit(".", 1)[0]: v for k, v in state.items() if k.endswith(".lr")}
    assert any("multi_modal_projector" in k for k in lrs) and final


def test_damaged_sharded_checkpoint_is_skipped(tmp_path, dataset, caplog):
    recipe = write_recipe(tmp_path / "r.yaml", *dataset, tmp_path / "run", with_instruct=False)
    run_recipe(load_recipe(str(recipe)))
    folder = tmp_path / "run" / "align" / "checkpoints"
    older, newest = list_checkpoints(folder)
    assert checkpoint_problem(newest) is None
    shard = next((newest / "optimizer").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:100])
    assert "changed size" in checkpoint_problem(newest)
    caplog.clear()
    assert latest_good_checkpoint(folder) == older
    assert [r.name for r in caplog.records] == ["scitune.train.state"] and "skipping checkpoint" in caplog.records[0].getMessage()
    (older / "model" / next((older / "model").iterdir()).name).unlink()
    assert "incomplete" in checkpoint_problem(older)


def test_gpu_check_smoke(tmp_path):
    """benchmarks/gpu_check.sh --smoke: tiny shapes, one CPU process, both stages, stop/resume/export/reload."""
    out = tmp_path / "gpu.json"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (result,) = json.loads(out.read_text())
    assert result["stopped_rc"] == 130 and result["resumed_message"] and result["reload"]["finite"]
    assert result["instruct"]["steps"] == [1, 2, 3, 4] and result["align"]["tokens_per_s"] > 0
