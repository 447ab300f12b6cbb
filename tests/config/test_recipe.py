"""The recipe schema (scitune.config): both stage forms, overrides, value types, and errors as
one line naming the key's path."""

import dataclasses

import pytest
import yaml

from scitune.config import DataConfig, LoraConfig, ModelConfig, Recipe, RunConfig, StageConfig, StageRun, load_recipe
from scitune.errors import ScituneError

DATA = {"train": "t.json", "images": "img"}
MAPPING = {
    "model": {"preset": "tiny"},
    "stages": {"align": {"data": DATA, "lr": 1e-3}, "instruct": {"init_from": "projector", "data": DATA, "lr": 2e-5}},
    "run": {"out": "runs/x"},
}
LISTED = {
    "model": {"preset": "tiny"},
    "stages": [{"stage": {"name": "align"}, "data": DATA, "lr": 1e-3},
               {"stage": {"name": "instruct"}, "init_from": "projector", "data": DATA, "lr": 2e-5}],
    "run": {"out": "runs/x"},
}


def _write(tmp_path, recipe, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return str(path)


def test_mapping_and_list_forms_read_the_same(tmp_path):
    by_name, listed = load_recipe(_write(tmp_path, MAPPING)), load_recipe(_write(tmp_path, LISTED, "l.yaml"))
    assert by_name == listed
    assert [s.stage.name for s in by_name.stages] == ["align", "instruct"]
    assert by_name.stages[1].init_from == "projector" and by_name.stages[1].lr == 2e-5


def test_mapping_order_is_the_run_order(tmp_path):
    recipe = {**MAPPING, "stages": {"instruct": {"data": DATA}, "align": {"data": DATA}}}
    assert [s.stage.name for s in load_recipe(_write(tmp_path, recipe)).stages] == ["instruct", "align"]


@pytest.mark.parametrize("form", [MAPPING, LISTED], ids=["mapping", "list"])
def test_overrides_by_stage_name_in_either_form(tmp_path, form):
    recipe = load_recipe(_write(tmp_path, form), [
        "align.lr=1e-4", "stages.instruct.data.max_length=99", "instruct.stage.lora=true", "run.seed=7", "model.vocab_size=512",
    ])
    align, instruct = recipe.stages
    assert align.lr == 1e-4 and instruct.data.max_length == 99 and instruct.stage.lora
    assert recipe.run.seed == 7 and recipe.model.vocab_size == 512
    assert align.data.max_length == 512  # the other stage keeps its value


def test_an_override_changes_only_its_stage_when_yaml_aliases_share_a_section(tmp_path):
    (tmp_path / "r.yaml").write_text("stages:\n  align: {data: &d {train: t.json}}\n  instruct: {data: *d}\n")
    align, instruct = load_recipe(str(tmp_path / "r.yaml"), ["instruct.data.max_length=99"]).stages
    assert (align.data.max_length, instruct.data.max_length) == (512, 99)


def test_a_saved_recipe_reads_back_equal(tmp_path):
    """`config.yaml` in a run folder is `dataclasses.asdict(recipe)` (the list form)."""
    recipe = load_recipe(_write(tmp_path, MAPPING), ["instruct.stage.lora=true", "run.trackers=[tensorboard]"])
    assert recipe.to_dict() == dataclasses.asdict(recipe)
    assert load_recipe(_write(tmp_path, recipe.to_dict(), "saved.yaml")) == recipe


# (override on MAPPING, message)
BAD = [
    ("align.lr=-0.001", "align.lr: must be > 0, got -0.001"),
    ("stages.align.warmup_ratio=1", "align.warmup_ratio: must be in [0, 1), got 1.0"),
    ("align.batch_size=true", "align.batch_size: True is not a valid int"),
    ("align.epochs=.inf", "align.epochs: must be a finite number, got inf"),
    ("align.scheduler=wave", "align.scheduler: must be one of cosine, linear, constant, got 'wave'"),
    ("align.data.extra=1", "align.data: unknown key(s) extra; expected some of "),
    ("stages.align.stage.name=instruct", "align.stage.name: 'instruct' is not the stage's key 'align'"),
    ("stages.pretrain.lr=1", "override 'stages.pretrain.lr=1': the recipe has no stage 'pretrain'"),
    ("stages.align=1", "override 'stages.align=1': names a stage, not a setting"),
    ("align.init_from=model", "align.init_from: the first stage has no earlier stage to start from"),
    ("align.feature_cache=true", None),
    ("run.trackers=[neptune]", "run.trackers[0]: must be one of tensorboard, wandb, mlflow, got 'neptune'"),
    ("run.checkpoint_format=zip", "run.checkpoint_format: must be one of sharded, full, got 'zip'"),
    ("model.checkpoint=''", "model.checkpoint: must not be empty (leave it out or set null)"),
    ("model.preset=null", "model: give a preset, a checkpoint, or both vision_tower and language_model"),
]


@pytest.mark.parametrize("override, message", BAD, ids=[b[0] for b in BAD])
def test_one_line_naming_the_key(tmp_path, override, message):
    path = _write(tmp_path, MAPPING)
    if message is None:  # a valid value: no error
        assert load_recipe(path, [override]).stages[0].feature_cache
        return
    with pytest.raises(ScituneError) as caught:
        load_recipe(path, [override])
    text = str(caught.value)
    assert "\n" not in text and text.startswith(message), text


def test_a_mapping_stage_key_that_is_no_stage(tmp_path):
    recipe = {**MAPPING, "stages": {"pretrain": {"data": DATA}}}
    with pytest.raises(ScituneError, match=r"^stages\.pretrain\.stage\.name: must be one of align, instruct, got 'pretrain'$"):
        load_recipe(_write(tmp_path, recipe))


def test_yaml_strings_are_read_as_numbers_and_numbers_as_text(tmp_path):
    recipe = load_recipe(_write(tmp_path, MAPPING), ["align.lr='1e-3'", "align.batch_size='1e1'", "run.out=2024"])
    assert recipe.stages[0].lr == 1e-3 and recipe.stages[0].batch_size == 10 and recipe.run.out == "2024"
    assert isinstance(recipe.stages[0].batch_size, int)


def test_building_a_section_directly_checks_it_too():
    with pytest.raises(ScituneError, match=r"^stage\.lora: stage 'align' keeps the LLM frozen"):
        StageConfig(name="align", lora=True)
    with pytest.raises(ScituneError, match=r"^model\.vocab_size: must be > 0, got 0$"):
        ModelConfig(vocab_size=0)
    with pytest.raises(ScituneError, match=r"^lora_config\.target_modules: expected a non-empty list"):
        LoraConfig(target_modules=[])
    stage = StageRun(stage=StageConfig(name="instruct"), data=DataConfig(train="t.json"), lr=1e-4)
    recipe = Recipe(stages=[stage], run=RunConfig(out="runs/y"))
    assert recipe.stages[0].stage.trainable.language_model and recipe.model.preset == "tiny"
    assert dataclasses.replace(stage, lr=2e-4).lr == 2e-4
    with pytest.raises(ScituneError, match=r"^instruct\.init_from: the first stage"):
        Recipe(stages=[dataclasses.replace(stage, init_from="model")])


def test_the_schema_forbids_unknown_keys_and_non_finite_numbers():
    from pydantic import TypeAdapter

    for cls in (ModelConfig, StageConfig, LoraConfig, DataConfig, StageRun, RunConfig, Recipe):
        assert cls.__pydantic_config__["extra"] == "forbid" and cls.__pydantic_config__["allow_inf_nan"] is False
    schema = TypeAdapter(Recipe).json_schema()
    run = schema["$defs"]["StageRun"]["properties"]
    assert run["lr"]["exclusiveMinimum"] == 0 and run["warmup_ratio"]["exclusiveMaximum"] == 1
    assert schema["$defs"]["StageRun"]["additionalProperties"] is False
