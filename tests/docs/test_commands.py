"""Every command the docs show is checked: README.md and docs/**/*.md.

- Every fenced block names its language; shell commands are in ```bash blocks (output and file
  layouts in ```text), so no command hides in an untagged block.
- Every ```bash block says on the line before it (an HTML comment, invisible on the site) whether
  a test runs it end to end, `<!-- run by: PATH ... -->` (PATH must exist), or why it is not run,
  `<!-- not run: REASON -->` (a GPU, a cluster, a download, a release you must fetch, another
  program, a long run).
- Every `scitune ...` line, in any ```bash block (run or not: checking it needs no GPU), is checked
  against `scitune <subcommand> --help`: each word naming a subcommand must be one, and every
  `--flag` must be in that subcommand's help. `python -m scitune ...` and `accelerate launch ...
  -m scitune ...` count as scitune lines. `python benchmarks/X.py` must name a script that exists,
  `make T` a Makefile target, and a path under `benchmarks/` or `recipes/` a file that exists.
- `scitune ...` in inline code in the prose is checked the same way, unless written with
  placeholders (`[--figures N]`, `COMMAND`, `...`).
- A `run by:` test or script must name the subcommand of each `scitune` line of its block.

What runs the cheap commands end to end (named in the blocks' markers, `run by:` or the reason
of a `not run:`):
tests/test_demo.py (`scitune demo --quick`, the Quickstart's path at reduced size), .ci/run
(`make venv`, `make test`), tests/data/corpus/test_build.py (`scitune corpus build`),
tests/model/test_build.py (`scitune model build`), tests/data/ingest/test_roundtrip.py (the
corpus as papers and back through ingest), tests/commands/test_eval.py (`scitune eval`),
tests/commands/test_serve.py (`scitune serve`), tests/config/test_reference.py (the committed recipe
reference equals what its generator writes),
tests/docs/test_build.py (`make docs`: mkdocs build --strict).
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL = {"bash", "sh", "shell", "console"}
MARKER = re.compile(r"^<!--\s*(run by|not run)\b[^:]*:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(\s*)```(.*)$")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: tuple[str, str] | None  # ("run by" | "not run", what follows the colon)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the marker comment on the line before each."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.group(1), opening.group(2).strip().split(" ")[0]
        j = i + 1
        while j < len(lines) and not lines[j].startswith(indent + "```"):
            j += 1
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        match = MARKER.match(lines[prev].strip()) if prev >= 0 else None
        marker = (match.group(1), match.group(2)) if match else None
        body = "\n".join(line[len(indent):] for line in lines[i + 1:j])
        found.append(Block(path, i + 1, lang, body, marker))
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks(path)]


def shell_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.lang in SHELL]


def command_lines(text: str) -> list[list[str]]:
    """Each simple command of a shell block as words: continuations joined, comments dropped,
    split at `;`, `&&`, `||` and `|`."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.split("\n"):
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words = list(lexer)
        except ValueError:  # an unclosed quote spanning lines (a curl body): not a scitune line
            continue
        current: list[str] = []
        for word in words:
            if word and set(word) <= set(";&|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
        if current:
            commands.append(current)
    return commands


def scitune_args(words: list[str]) -> list[str] | None:
    """The arguments after `scitune` (or `-m scitune`), or None for another program."""
    if words and words[0] == "scitune":
        return words[1:]
    for k in range(len(words) - 1):
        if words[k] == "-m" and words[k + 1] == "scitune":
            return words[k + 2:]
    return None


@functools.lru_cache(maxsize=None)
def help_text(path: tuple[str, ...]) -> str:
    """`scitune <path> --help`: its text, or a failure naming the command."""
    done = subprocess.run([sys.executable, "-m", "scitune", *path, "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, f"`scitune {' '.join(path)} --help` failed: {done.stderr.strip()}"
    return done.stdout


def subcommands(help: str) -> set[str]:
    """The subcommand names a --help lists under "positional arguments" ({a,b} or one a line)."""
    section = help.split("positional arguments:", 1)[1].split("\n\n", 1)[0] if "positional arguments:" in help else ""
    names = set()
    for choices in re.findall(r"\{([\w,-]+)\}", section):
        names.update(choices.split(","))
    names.update(re.findall(r"^    ([a-z][\w-]*)", section, re.M))
    return names


def flags(help: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-zA-Z][\w-]*)", help)) | {"-h"}


def check_scitune(args: list[str]) -> list[str]:
    """What is wrong with one `scitune ARGS` line, checked against the --help of each level."""
    problems, path, top = [], [], help_text(())
    rest = list(args)
    # options before the command name: the top level's own (--threads N, --debug, ...)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0).split("=")[0]
        if option not in flags(top):
            problems.append(f"{option} is not an option of `scitune`")
        if option == "--threads" and rest:
            rest.pop(0)
    while rest and not rest[0].startswith("-"):
        names = subcommands(help_text(tuple(path)))
        if not names:
            break
        if rest[0] not in names:
            problems.append(f"`scitune {' '.join(path + [rest[0]])}`: no such subcommand (has {sorted(names)})")
            return problems
        path.append(rest.pop(0))
    if not path:
        return [f"`scitune {' '.join(args)}` names no subcommand"]
    if subcommands(help_text(tuple(path))):
        return [f"`scitune {' '.join(path)}` needs a subcommand"]
    known = flags(help_text(tuple(path)))
    for word in rest:
        if word.startswith("--"):
            option = word.split("=")[0]
            if option not in known:
                problems.append(f"{option} is not in `scitune {' '.join(path)} --help`")
    return problems


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w.-]+):", text, re.M))


def test_every_block_names_a_language():
    untagged = [b.where for b in all_blocks() if not b.lang]
    assert not untagged, f"fenced blocks without a language (```bash for commands, ```text for output): {untagged}"


def test_every_shell_block_says_whether_a_test_runs_it():
    problems = []
    for b in shell_blocks():
        if b.marker is None:
            problems.append(f"{b.where}: no `<!-- run by: PATH -->` or `<!-- not run: REASON -->` before the block")
        elif b.marker[0] == "run by":
            target = b.marker[1].split(" ")[0].rstrip(",;")
            if not target or not (ROOT / target.split("::")[0]).exists():
                problems.append(f"{b.where}: `run by:` names {target!r}, which does not exist")
            else:
                # a block's scitune commands must be ones the named test or script invokes
                named = (ROOT / target.split("::")[0])
                source = "".join(f.read_text(encoding="utf-8") for f in ([named] if named.is_file() else named.rglob("*.py")))
                for words in command_lines(b.text):
                    args = scitune_args(words)
                    if args and not all(f'"{w}"' in source or f"'{w}'" in source or f" {w} " in source
                                        for w in args[:1]):
                        problems.append(f"{b.where}: {target} never names `scitune {args[0]}`")
        elif len(b.marker[1]) < 10:
            problems.append(f"{b.where}: `not run:` needs a reason")
    assert not problems, "\n".join(problems)


def test_tests_named_in_markers_exist():
    # a marker's reason names the tests that cover the block; a test moved or renamed is caught here
    stale = [f"{b.where}: {path}" for b in shell_blocks() if b.marker
             for path in re.findall(r"\b((?:tests|benchmarks)/[\w/.-]*\w)", b.marker[1])
             if not (ROOT / path).exists()]
    assert not stale, "markers name tests that do not exist:\n" + "\n".join(stale)


def test_shell_blocks_found():
    # the extraction itself: the README's Quickstart and the serving guide's lmms-eval line are seen
    lines = [" ".join(w) for b in shell_blocks() for w in command_lines(b.text)]
    assert "make demo" in lines
    assert any("lmms_eval" in line for line in lines)
    assert sum(1 for b in shell_blocks() for w in command_lines(b.text) if scitune_args(w) is not None) >= 30


def scitune_commands() -> list[tuple[str, list[str]]]:
    return [(b.where, args) for b in shell_blocks() for words in command_lines(b.text)
            if (args := scitune_args(words)) is not None]


@pytest.mark.parametrize("where,args", scitune_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_scitune_command_matches_its_help(where, args):
    problems = check_scitune(args)
    assert not problems, f"{where}: scitune {' '.join(args)}\n" + "\n".join(problems)


def inline_commands() -> list[tuple[str, str]]:
    """`scitune ...` and `python benchmarks/...` in inline code in the prose (outside fenced blocks),
    except those written with placeholders (`[--figures N]`, `<dir>`, `COMMAND`, `...`)."""
    found = []
    for path in doc_files():
        text = re.sub(r"^(\s*)```.*?^\1```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
        for span in re.findall(r"`((?:scitune |python benchmarks/)[^`]*)`", text):
            if any(mark in span for mark in ("[", "<", "|", "...")) or re.search(r"\b[A-Z]{3,}\b", span):
                continue
            found.append((path.relative_to(ROOT).as_posix(), span))
    return found


def test_inline_commands_match_their_help():
    problems, checked = [], 0
    for where, span in inline_commands():
        words = shlex.split(span)
        if words[0] == "python":
            if not (ROOT / words[1]).is_file():
                problems.append(f"{where}: `{span}`: {words[1]} does not exist")
            continue
        checked += 1
        # prose may name a command group (`scitune eval`) without its subcommand
        found = [p for p in check_scitune(words[1:]) if not p.endswith("needs a subcommand")]
        problems += [f"{where}: `{span}`: {p}" for p in found]
    assert checked >= 20
    assert not problems, "\n".join(problems)


def test_other_commands_name_what_exists():
    problems, targets = [], makefile_targets()
    for b in shell_blocks():
        for words in command_lines(b.text):
            if words[0] == "make":
                missing = [t for t in words[1:] if not t.startswith("-") and "=" not in t and t not in targets]
                problems += [f"{b.where}: make target {t!r} is not in the Makefile" for t in missing]
            # files the repository ships (benchmark scripts, recipes) must exist under the names shown
            for word in words:
                for path in re.findall(r"(?:^|=)((?:benchmarks|recipes)/[\w./-]+)", word):
                    if not (ROOT / path).is_file():
                        problems.append(f"{b.where}: {path} does not exist")
    assert not problems, "\n".join(problems)


def test_lmms_eval_command_has_the_0_7_form():
    # lmms-eval 0.7.x passes batch_size itself: inside --model_args it is given twice
    # ("got multiple values for keyword argument 'batch_size'"); concurrency is num_concurrent.
    lines = [w for b in shell_blocks() for w in command_lines(b.text) if "lmms_eval" in w]
    assert lines
    for words in lines:
        model_args = words[words.index("--model_args") + 1]
        assert "batch_size" not in model_args, model_args
        assert "num_concurrent=" in model_args, model_args


def test_checker_catches_a_wrong_flag_and_subcommand():
    # the check can fail: an option and a subcommand that do not exist are named
    assert check_scitune(["train", "recipes/tiny-cpu.yaml", "--bogus"]) == ["--bogus is not in `scitune train --help`"]
    assert "no such subcommand" in check_scitune(["eval", "sciencqa", "--out", "x"])[0]
    assert check_scitune(["eval"]) == ["`scitune eval` needs a subcommand"]
    assert check_scitune(["--threads", "2", "eval", "captions", "--pairs", "p.json", "--bleu", "scicap"]) == []


def test_marker_and_block_parsing(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- not run: needs a GPU -->\n```bash\nscitune demo \\\n  --quick  # fast\n```\n\n"
                    "```\nuntagged\n```\n")
    found = blocks(page)
    assert [(b.lang, b.marker) for b in found] == [("bash", ("not run", "needs a GPU")), ("", None)]
    assert command_lines(found[0].text) == [["scitune", "demo", "--quick"]]
    assert command_lines("A=1 python -m scitune train r.yaml; make test && echo ok | cat") == [
        ["A=1", "python", "-m", "scitune", "train", "r.yaml"], ["make", "test"], ["echo", "ok"], ["cat"]]


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 150, f"README.md has {lines} lines; the docs site holds the rest (at most 150)"
