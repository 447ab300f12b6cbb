"""`scitune train` with out-of-range values, ill-typed sections and hostile recipe files: exit 2,
one line naming the key's path (or the file), nothing written."""

from __future__ import annotations

import pytest

from tests.reliability.harness import check_failure, run_case

# (override, message pattern)
BAD_VALUES = [
    ("align.lr=-0.001", r"align\.lr: must be > 0, got -0\.001"),
    ("align.lr=0", r"align\.lr: must be > 0"),
    ("align.lr=.nan", r"align\.lr: must be a finite number"),
    ("align.lr=nan", r"align\.lr: must be a finite number"),
    ("align.lr=.inf", r"align\.lr: must be a finite number"),
    ("align.lr=fast", r"align\.lr: 'fast' is not a valid float"),
    ("align.lr=true", r"align\.lr: True is not a valid float"),
    ("align.epochs=0", r"align\.epochs: must be > 0"),
    ("align.epochs=-1", r"align\.epochs: must be > 0"),
    ("align.epochs=1e9", r"align\.epochs: must be <= "),
    ("align.max_steps=0", r"align\.max_steps: must be > 0"),
    ("align.max_steps=-5", r"align\.max_steps: must be > 0"),
    ("align.max_steps=2.5", r"align\.max_steps: 2\.5 is not a valid int"),
    ("align.warmup_ratio=1", r"align\.warmup_ratio: must be in \[0, 1\)"),
    ("align.warmup_ratio=-0.1", r"align\.warmup_ratio: must be in \[0, 1\)"),
    ("align.max_grad_norm=-1", r"align\.max_grad_norm: must be >= 0"),
    ("align.weight_decay=-0.1", r"align\.weight_decay: must be >= 0"),
    ("align.batch_size=0", r"align\.batch_size: must be >= 1"),
    ("align.batch_size=1e30", r"align\.batch_size: must be <= "),
    ("align.batch_size=inf", r"align\.batch_size: 'inf' is not a valid int"),
    ("align.grad_accum=0", r"align\.grad_accum: must be >= 1"),
    ("align.scheduler=wave", r"align\.scheduler: must be one of cosine, linear, constant, got 'wave'"),
    ("align.data.max_length=0", r"align\.data\.max_length: must be > 0"),
    ("align.data.max_length=100000000", r"align\.data\.max_length: must be <= "),
    ("align.data.on_bad_record=ignore", r"align\.data\.on_bad_record: must be one of fail, skip"),
    ("align.data.nonsense=1", r"align\.data: unknown key\(s\) nonsense"),
    ("align.lrate=1", r"align: unknown key\(s\) lrate"),
    ("align.stage.name=pretrain", r"align\.stage\.name: 'pretrain' is not the stage's key 'align'"),
    ("align.stage=align", r"align\.stage: expected a mapping, got str"),
    ("align.stage.lora=true", r"keeps the LLM frozen"),
    ("run.save_every=-1", r"run\.save_every: must be >= 0"),
    ("run.log_every=0", r"run\.log_every: must be >= 1"),
    ("run.log_every=-3", r"run\.log_every: must be >= 1"),
    ("run.keep_last=0", r"run\.keep_last: must be >= 1"),
    ("run.seed=-1", r"run\.seed: must be >= 0"),
    ("run.peak_flops=0", r"run\.peak_flops: must be > 0"),
    ("run.out=null", r"run\.out: must not be null"),
    ("run.out=' '", r"run\.out: must name a folder"),
    ("model.vocab_size=0", r"model\.vocab_size: must be > 0"),
    ("model.vocab_size=1e12", r"model\.vocab_size: must be <= "),
    ("model.seed=-2", r"model\.seed: must be >= 0"),
    ("model.dtype=int8", r"model\.dtype: must be one of auto"),
    ("model.projector=conv", r"model\.projector: must be one of linear, mlp2x_gelu, got 'conv'"),
    ("model.vision_feature_layer=100000", r"model\.vision_feature_layer: must be <= 1000"),
    ("model.preset=''", r"model\.preset: must not be empty"),
    ("model=5", r"^scitune: error: model: expected a mapping, got int"),
    ("model=[1, 2]", r"model: expected a mapping, got list"),
    ("run=hello", r"run: expected a mapping, got str"),
    ("stages=[null]", r"stages\[0\]: must not be null"),
    ("stages=5", r"stages: expected a mapping of stages by name \(or a list\), got int"),
    ("stages={}", r"recipe: no stages"),
    ("stages=[]", r"recipe: no stages"),
    ("stages=[5]", r"stages\[0\]: expected a mapping, got int"),
    ("align.lr=[1", r"override 'align\.lr=\[1': not valid YAML"),
    ("align.lr=!!python/object/apply:os.getcwd []", r"not valid YAML \(could not determine a constructor"),
    ("align.lr", r"override 'align\.lr': expected key=value"),
    ("align..lr=1", r"empty name"),
    ("align=1", r"names a stage, not a setting"),
]


@pytest.mark.parametrize("override, pattern", BAD_VALUES, ids=[v[0][:40] for v in BAD_VALUES])
def test_bad_value_is_one_line_naming_the_key(ws, override, pattern):
    outcome = run_case(ws, ["train", ws / "recipe.yaml", override])
    check_failure(outcome, 2, pattern)
    assert not (ws / "run").exists()


LORA = {"model": {"preset": "tiny"}, "stages": [{"stage": {"name": "instruct", "lora": True}, "data": {"train": "x.json"}}]}
BAD_LORA = [
    ("instruct.stage.lora_config.r=0", r"instruct\.stage\.lora_config\.r: must be > 0"),
    ("instruct.stage.lora_config.r=-4", r"lora_config\.r: must be > 0"),
    ("instruct.stage.lora_config.dropout=1", r"lora_config\.dropout: must be in \[0, 1\)"),
    ("instruct.stage.lora_config.alpha=0", r"lora_config\.alpha: must be > 0"),
    ("instruct.stage.lora_config.target_modules=q_proj", r"target_modules: expected a list, got str"),
    ("instruct.stage.lora_config.target_modules=[]", r"target_modules: expected a non-empty list"),
    ("instruct.stage.lora_config.target_modules=['.*']", r"target_modules: expected a non-empty list of module names"),
]


@pytest.mark.parametrize("override, pattern", BAD_LORA, ids=[v[0] for v in BAD_LORA])
def test_bad_lora_settings(tmp_path, override, pattern):
    import yaml

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(LORA))
    check_failure(run_case(tmp_path, ["train", tmp_path / "r.yaml", override]), 2, pattern)


def _alias_bomb() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


HOSTILE_FILES = [
    ("latin1", "model:\n  preset: tiny\n# caf\xe9\n".encode("latin-1"), r"recipe\.yaml: not UTF-8 text \(byte 0xe9"),
    ("binary", b"\x00\xff\xfe\x01" * 50, r"not UTF-8 text"),
    ("python-tag", b"!!python/object/apply:os.system ['echo pwned']\n", r"not valid YAML \(could not determine a constructor"),
    ("python-name", b"model: !!python/name:os.system\n", r"not valid YAML"),
    ("alias-bomb", _alias_bomb().encode(), r"aliases expand to more than"),
    ("many-aliases", ("a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n").encode(), r"more than 100 aliases"),
    ("deep-nesting", b"a: " + b"[" * 200 + b"]" * 200 + b"\n", r"nested more than 64 levels deep"),
    ("top-level-list", b"- 1\n- 2\n", r"expected a mapping at the top"),
    ("top-level-text", b"hello\n", r"expected a mapping at the top"),
    ("empty", b"", r"recipe: no stages"),
    ("bad-syntax", b"model: [\n", r"not valid YAML"),
    ("tab-indent", b"model:\n\tpreset: tiny\n", r"not valid YAML"),
    ("model-5", b"model: 5\nstages: []\n", r"model: expected a mapping, got int"),
    ("stages-null", b"stages: [null]\n", r"stages\[0\]: must not be null"),
    ("stages-string", b"stages: align\n", r"stages: expected a mapping of stages by name \(or a list\), got str"),
    ("numeric-keys", b"1: 2\n", r"keys must be names"),
    ("duplicate-anchor", b"a: &x 1\nb: &x 2\nc: *x\n", r"not valid YAML"),
]


@pytest.mark.parametrize("name, data, pattern", HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
def test_hostile_recipe_file(tmp_path, name, data, pattern):
    (tmp_path / "recipe.yaml").write_bytes(data)
    check_failure(run_case(tmp_path, ["train", tmp_path / "recipe.yaml"]), 2, pattern)


def test_recipe_over_the_size_limit(tmp_path, monkeypatch):
    import scitune.io.read as read

    monkeypatch.setattr(read, "MAX_CONFIG_BYTES", 100)
    (tmp_path / "recipe.yaml").write_text("model:\n  preset: tiny\n" + "# padding\n" * 20)
    check_failure(run_case(tmp_path, ["train", tmp_path / "recipe.yaml"]), 2, r"recipe is 222 bytes, over the limit of 100 bytes")


def test_recipe_that_is_a_folder_or_missing(tmp_path):
    check_failure(run_case(tmp_path, ["train", tmp_path]), 2, r"file not found")
    check_failure(run_case(tmp_path, ["train", tmp_path / "none.yaml"]), 2, r"file not found")
