"""A render process for `build_corpus(workers=N)`: `python -m scitune.data.corpus.render_worker
JOBS.json OUT_DIR` renders each `[index, spec]` of JOBS.json to OUT_DIR/<index>.png.

A plain subprocess (not multiprocessing) so that the calling program's main module is never
re-imported, and nothing is forked from a process that may hold threads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scitune.data.corpus.drawing import render_png


def main(argv: list[str]) -> int:
    jobs_path, out_dir = Path(argv[0]), Path(argv[1])
    jobs = json.loads(jobs_path.read_text(encoding="utf-8"))
    for index, spec in jobs["figures"]:
        target = out_dir / f"{index}.png"
        partial = target.with_suffix(".part")
        partial.write_bytes(render_png(spec, jobs["image_size"]))
        partial.rename(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
