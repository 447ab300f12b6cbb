"""`mkdocs build --strict` (what `make docs` runs) passes: every page in the nav, every link and
anchor resolves, every API page renders from the docstrings. Built into a temporary folder, with
no network (the theme's fonts are off and no plugin fetches)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    # the pages are there, the API pages hold rendered docstrings
    assert (site / "guarantees" / "index.html").is_file()
    api = (site / "reference" / "api" / "config" / "index.html").read_text(encoding="utf-8")
    assert "load_recipe" in api
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")
