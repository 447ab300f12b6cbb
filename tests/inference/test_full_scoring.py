"""Option scoring for the families whose positions or masks depend on the whole sequence (Qwen-VL's
3-D M-RoPE, Gemma 3's image attention): every "prompt + option" runs in full, and `choose` (what
`scitune eval --mode likelihood` runs) keeps to its batch size in sequences per forward pass
whatever the number of options, with the same scores at every batch size."""

from __future__ import annotations

import pytest
import torch

from scitune.inference import Engine, EvalItem
from tests.model.helpers import figure

OPTIONS = ("Bar Chart", "Table", "Graph Plot")


@pytest.fixture(scope="module", params=["tiny-qwen2.5-vl", "tiny-gemma3"])
def engine(request, tmp_path_factory):
    from scitune.config import ModelConfig
    from scitune.model import build_model

    torch.manual_seed(0)
    model, processor = build_model(ModelConfig(preset=request.param, vocab_size=300))
    root = tmp_path_factory.mktemp("images")
    figure(3, (60, 40)).save(root / "wide.png")
    figure(4, (30, 90)).save(root / "tall.png")
    engine = Engine(model.eval(), processor, image_root=root)
    assert not engine._shared_prefix()  # these families score in full
    return engine


def _items():
    return [
        EvalItem("a", "<image>\nWhat type of figure is this?", ("wide.png",), OPTIONS),
        EvalItem("b", "<image>\nWhat type of figure is this one?", ("tall.png",), OPTIONS),
        EvalItem("c", "Which figure type shows rows and columns?", (), OPTIONS[:2]),
    ]


def test_full_scoring_runs_at_most_the_batch_size_per_forward_with_the_same_scores(engine, one_torch_thread):
    rows = []
    hook = engine.model.register_forward_pre_hook(lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]),
                                                  with_kwargs=True)
    try:
        alone = [engine.score_options(item) for item in _items()]
        rows.clear()
        by_two = engine.choose(_items(), batch_size=2)
        assert rows and max(rows) <= 2 and sum(rows) == 3 + 3 + 2  # every option once, two at a time
        rows.clear()
        together = engine.choose(_items(), batch_size=8)
        assert max(rows) == 8  # one forward for all (the grouping kept them in one batch)
    finally:
        hook.remove()
    for (choice, scores), (choice_8, scores_8), expected in zip(by_two, together, alone):
        assert scores == pytest.approx(expected, abs=1e-4) and scores_8 == pytest.approx(expected, abs=1e-4)
        assert choice == choice_8 == max(range(len(expected)), key=expected.__getitem__)
