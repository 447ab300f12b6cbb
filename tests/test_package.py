"""The package works without a checkout beside it: the demo recipe and the report template are
package data. Builds a wheel from a copy of the project (offline, no build isolation), checks
what it holds, installs it into a bare folder and reads both files from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scitune.settings import PROJECT_ROOT

PACKAGE_DATA = ("scitune/recipes/tiny-cpu.yaml", "scitune/eval/templates/report.html.jinja")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of pyproject.toml, README.md and src/ (the checkout is left as is)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(root / "dist"), str(source)],
        check=True, capture_output=True, timeout=120,
    )
    (path,) = (root / "dist").glob("scitune-*.whl")
    return path


def test_the_checkout_recipe_is_the_package_copy():
    link = PROJECT_ROOT / "recipes" / "tiny-cpu.yaml"
    assert link.is_symlink(), "recipes/tiny-cpu.yaml should link to the package copy, not duplicate it"
    assert link.resolve() == (PROJECT_ROOT / "src" / "scitune" / "recipes" / "tiny-cpu.yaml").resolve()


def test_wheel_holds_the_package_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in PACKAGE_DATA:
            assert name in names, f"{name} is missing from {wheel.name}"
            assert archive.read(name) == (PROJECT_ROOT / "src" / name).read_bytes()


def test_installed_package_finds_recipe_and_template(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import scitune\n"
        "from scitune.demo import SIZES, stage_recipe\n"
        "from scitune.eval.report import TEMPLATE, _environment\n"
        "assert Path(scitune.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), scitune.__file__\n"
        "p = Path('x')\n"
        "recipe = stage_recipe(p, p, {'align': p, 'instruct': p}, p, SIZES['quick'], 0, with_align=True)\n"
        "_environment().get_template(TEMPLATE)\n"
        "print(*[s.stage.name for s in recipe.stages], recipe.stages[1].data.max_length)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))  # ahead of the checkout's editable install
    run = subprocess.run([sys.executable, "-c", script, str(target)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["align", "instruct", "384"]  # the values in tiny-cpu.yaml
