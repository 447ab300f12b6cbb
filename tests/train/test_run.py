"""`scitune.train.run`: running the selected stages of a recipe."""

import json

from scitune.cli import main
from scitune.config import load_recipe
from scitune.train.run import TOKENIZER_STAGES, tokenizer_stages, tokenizer_texts

from .data import write_dataset, write_recipe


def test_tokenizer_reads_only_the_selected_stages(tmp_path):
    train, images = write_dataset(tmp_path / "data", n=2, text_only=1)
    recipe = load_recipe(str(write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run")),
                         [f"instruct.data.train={tmp_path / 'not-yet.json'}"])
    texts = tokenizer_texts(recipe, ["align"])
    assert "Which number is larger, 0 or 3?" in texts and len(texts) == 6  # 3 samples x 2 turns


def test_stage_align_runs_without_the_instruct_file(tmp_path, capsys):
    """`scitune train ... --stage align` before stage 2's training file exists (it used to fail:
    the tiny tokenizer read every stage's data)."""
    train, images = write_dataset(tmp_path / "data", n=4)
    recipe = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", align={"max_steps": 1, "epochs": 1})
    missing = tmp_path / "instruct.json"
    code = main(["train", str(recipe), "--stage", "align", f"instruct.data.train={missing}"])
    assert code == 0, capsys.readouterr()
    run = tmp_path / "run"
    assert (run / "align" / "final").is_dir() and not (run / "instruct").exists()
    assert not missing.exists()
    # a resume builds each stage's tokenizer from the stages selected when that stage started
    assert json.loads((run / TOKENIZER_STAGES).read_text()) == {"align": ["align"]}
    assert tokenizer_stages(run, ["align", "instruct"], resume=True) == {"align": ["align"], "instruct": ["align", "instruct"]}
    assert tokenizer_stages(run, ["align", "instruct"], resume=False) == {"align": ["align", "instruct"], "instruct": ["align", "instruct"]}
