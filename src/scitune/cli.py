"""The `scitune` command: one entry point, thin; each subcommand lives in scitune.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from scitune import __version__, console, threads
from scitune.errors import describe_failure

# One module per top-level subcommand, in the order `scitune --help` lists them.
COMMAND_MODULES = (
    "scitune.commands.corpus",
    "scitune.commands.model",
    "scitune.commands.data",
    "scitune.commands.train",
    "scitune.commands.demo",
    "scitune.commands.experiment",
    "scitune.commands.eval",
    "scitune.commands.predict",
    "scitune.commands.ingest",
    "scitune.commands.serve",
)


THREADS_HELP = ("CPU threads (default: the cores this process may use; OMP_NUM_THREADS if set; "
                "SCITUNE_THREADS=off for torch's defaults)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (our examples)."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument as one line (`scitune train: error: ...`), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="scitune",
        description="Align LLMs with science through multimodal instruction tuning (SciTune).",
        formatter_class=HelpFormatter,
        epilog="example:\n  scitune demo --out runs/demo\n  scitune model build --preset tiny --out runs/tiny",
    )
    parser.add_argument("--version", action="version", version=f"scitune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser.add_argument("--verbose", action="store_true", help="say what was chosen (threads, wait policy)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (they show only on a terminal anyway)")
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def add_command(subparsers, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """Adds a subcommand whose --help ends with an example (and takes --threads too)."""
    parser = subparsers.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}", formatter_class=HelpFormatter
    )
    # SUPPRESS: when not given here, a --threads before the command name stands
    parser.add_argument("--threads", type=int, metavar="N", default=argparse.SUPPRESS, help=THREADS_HELP)
    return parser


def bounded_int(low: int, high: int | None = None):
    """An argparse `type` for integers in [low, high]: anything else is a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


positive_int = bounded_int(1)
nonnegative_int = bounded_int(0)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parses `argv`; `key=value` overrides are accepted anywhere on the line for commands that
    take them (`scitune train R --stage instruct align.lr=1e-3`), as argparse alone cannot
    intermix a variable-length positional with options under subcommands."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        overrides = [e for e in extra if "=" in e and not e.startswith("-")]
        if hasattr(args, "overrides") and overrides == extra:
            args.overrides = list(args.overrides or []) + overrides
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def quiet_progress(quiet: bool) -> None:
    """--quiet: no progress bars (ours read SCITUNE_QUIET); off the terminal, none from the
    Hugging Face libraries either (they read HF_HUB_DISABLE_PROGRESS_BARS when first imported)."""
    if quiet:
        os.environ["SCITUNE_QUIET"] = "1"
    if quiet or not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        # before any command module imports torch: OpenMP reads these variables once, when torch loads
        plan = threads.configure(args.threads)
        quiet_progress(args.quiet)
        console.configure()  # the library's messages (logging, under `scitune`) on stdout, as printed
        if getattr(args, "verbose", False):
            print(f"scitune: {plan.describe()}", file=sys.stderr)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("scitune: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line and an exit code for every failure; --debug: the traceback
        if getattr(args, "debug", False):
            raise
        message, code = describe_failure(err)
        print(f"scitune: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
