"""Runs one benchmark configuration in a fresh process (`SCRIPT --worker SPEC.json`), so each
measures its own peak memory and start-up. Shared by vs_trl.py and train_throughput.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_worker(script: str, spec: dict, workdir: Path, name: str) -> dict:
    """Writes `spec` (with its `result` path set) to `workdir/NAME.spec.json`, runs `script` on it
    with its output in `workdir/NAME.log`, and returns the result JSON the worker wrote. A failed
    run prints the end of its log and stops the benchmark."""
    spec["result"] = str(workdir / f"{name}.result.json")
    spec_path = workdir / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as out:
        code = subprocess.call([sys.executable, str(Path(script).resolve()), "--worker", str(spec_path)],
                               stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))
    if code != 0:
        print(log_path.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"{name}: the run failed (exit {code}); log above")
    return json.loads(Path(spec["result"]).read_text())
