"""The one learning-rate schedule (stages and pretraining) and the runner's state rule."""

import ast
import inspect

import pytest

from scitune.train import loop
from scitune.train.schedule import lr_at, warmup_steps


def test_warmup_then_decay_to_zero():
    total, warmup = 10, warmup_steps(0.2, 10)
    assert warmup == 2
    assert [lr_at(s, total, 1.0, warmup) for s in (0, 1)] == [0.5, 1.0]
    cosine = [lr_at(s, total, 1.0, warmup) for s in range(warmup, total)]
    assert cosine[0] == 1.0 and all(a > b for a, b in zip(cosine, cosine[1:])) and cosine[-1] > 0
    assert lr_at(total, total, 1.0, warmup) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(6, total, 2.0, warmup, "linear") == pytest.approx(2.0 * (1 - 4 / 8))
    assert lr_at(6, total, 2.0, warmup, "constant") == 2.0
    assert lr_at(0, total, 2.0, 0, "constant") == 2.0  # no warmup


def test_the_runner_names_all_its_state_in_init():
    """Every `self.x = ...` of StageRunner's methods assigns an attribute `__init__` named."""
    tree = ast.parse(inspect.getsource(loop.StageRunner))
    methods = {node.name: node for node in tree.body[0].body if isinstance(node, ast.FunctionDef)}

    def assigned(function) -> set[str]:
        names = set()
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == "self":
                        names.add(leaf.attr)
        return names

    named = assigned(methods.pop("__init__"))
    later = {name: assigned(method) - named for name, method in methods.items()}
    assert not any(later.values()), {k: v for k, v in later.items() if v}
    assert {"plan", "order", "batches", "module", "optimizer"} <= named
