"""`python -m tests.train.slow_train SECONDS scitune-train-args...`: `scitune train` with a hook
that sleeps after every step, so a test can kill or interrupt the run at a chosen moment."""

import sys
import time

from scitune.cli import build_parser
from scitune.commands import train


def main() -> int:
    delay = float(sys.argv[1])
    args = build_parser().parse_args(["train", *sys.argv[2:]])
    return train.run(args, hooks=[lambda runner, step: time.sleep(delay)])


if __name__ == "__main__":
    raise SystemExit(main())
