"""`scitune serve` on the command line: arguments, one-line failures, and the serve command that
`scitune demo` prints at its end."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest

from scitune.cli import build_parser, main


def test_demo_prints_a_serve_command_that_parses(monkeypatch, capsys, tmp_path):
    import scitune.demo
    from scitune.commands import demo as demo_command

    out = tmp_path / "my demo"
    monkeypatch.setattr(scitune.demo, "run_demo", lambda *a, **k: {"stub": True})
    monkeypatch.setattr(scitune.demo, "summary_table", lambda summary: "(table)")
    args = argparse.Namespace(out=str(out), preset="tiny", quick=True, seed=0, overwrite=False)
    assert demo_command.run(args) == 0
    printed = capsys.readouterr().out
    line = next(line.strip() for line in printed.splitlines() if line.strip().startswith("scitune serve"))
    parsed = build_parser().parse_args(shlex.split(line)[1:])
    assert parsed.command == "serve"
    assert parsed.model == [f"scitune={out / 'scitune' / 'instruct' / 'final'}", f"no-align={out / 'no-align' / 'instruct' / 'final'}"]


def run_cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(capsys, tmp_path, checkpoints):
    with pytest.raises(SystemExit) as parse_error:
        main(["serve", "--model", str(checkpoints["tiny"]), "--port", "70000"])
    assert parse_error.value.code == 2 and "--port" in capsys.readouterr().err
    code, err = run_cli(["serve", "--model", str(tmp_path / "missing"), "--port", "0"], capsys)
    assert code == 2 and "no config.json" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(["serve", "--model", str(checkpoints["tiny"]), "--image-root", str(tmp_path / "nope")], capsys)
    assert code == 2 and "--image-root" in err
    code, err = run_cli(["serve", "--model", f"a={checkpoints['tiny']}", "--model", f"a={checkpoints['tiny']}"], capsys)
    assert code == 2 and "given twice" in err


def test_an_adapter_whose_base_is_gone_names_the_fix(capsys, tmp_path, checkpoints):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (adapter / name).write_bytes((Path(checkpoints["lora"]) / name).read_bytes())
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "base-moved-away")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    code, err = run_cli(["serve", "--model", str(adapter), "--port", "0"], capsys)
    assert code == 2 and "scitune model merge" in err
