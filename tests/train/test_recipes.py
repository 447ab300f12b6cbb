"""Every shipped recipe parses against the config schema; accelerate configs are valid YAML."""


import pytest
import yaml

from scitune.config import load_recipe
from scitune.errors import ScituneError
from scitune.settings import PROJECT_ROOT

RECIPES = sorted((PROJECT_ROOT / "recipes").glob("*.yaml"))


def test_the_shipped_recipes_are_there():
    assert {p.name for p in RECIPES} >= {"tiny-cpu.yaml", "smollm2-cpu.yaml", "scitune-llama2-13b.yaml", "llava15-7b-lora.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_parses(path):
    recipe = load_recipe(str(path))
    assert recipe.stages[0].stage.name == "align"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")][:8]
    assert any(line.startswith("# launch:") for line in header), "the launch command belongs at the top"


def test_paper_recipe_matches_the_paper():
    recipe = load_recipe(str(PROJECT_ROOT / "recipes" / "scitune-llama2-13b.yaml"))
    align, instruct = recipe.stages
    assert recipe.model.projector == "linear" and recipe.model.vision_feature_layer == -2
    assert (align.lr, align.epochs, align.scheduler, align.warmup_ratio) == (2e-3, 1, "cosine", 0.03)
    assert align.batch_size * align.grad_accum * 8 == 16
    assert (instruct.lr, instruct.epochs, instruct.data.max_length) == (2e-5, 12, 2048)
    assert instruct.batch_size * instruct.grad_accum * 8 == 64 and instruct.gradient_checkpointing
    assert instruct.init_from == "projector"


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "recipes" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs(path):
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    if config["distributed_type"] == "DEEPSPEED":
        assert config["deepspeed_config"]["gradient_clipping"] == 1.0


def test_overrides_and_errors(tmp_path):
    path = PROJECT_ROOT / "recipes" / "tiny-cpu.yaml"
    recipe = load_recipe(str(path), ["align.lr=1e-3", "instruct.data.max_length=99", "run.seed=7", "model.projector=mlp2x_gelu"])
    assert recipe.stages[0].lr == 1e-3 and recipe.stages[1].data.max_length == 99
    assert recipe.run.seed == 7 and recipe.model.projector == "mlp2x_gelu"
    with pytest.raises(ScituneError, match=r"unknown key\(s\) lrate"):
        load_recipe(str(path), ["align.lrate=1"])
    with pytest.raises(ScituneError, match="'fast' is not a valid float"):
        load_recipe(str(path), ["align.lr=fast"])
    with pytest.raises(ScituneError, match=r"model\.projector: must be one of linear, mlp2x_gelu, got 'conv'"):
        load_recipe(str(path), ["model.projector=conv"])
    with pytest.raises(ScituneError, match="file not found"):
        load_recipe(str(tmp_path / "none.yaml"))
