"""The ablation grid: cells (preset x seed x stage-2 data fraction x with/without stage 1), each
an ordinary scitune run of the demo's recipe on the demo's data (or the user's own stage-1 and
stage-2 data, `scitune.experiment.sources`), evaluated as the demo does; or, with recipes in
place of presets, each recipe as written on its own data, scored on the user's stage-2 test.

Layout of the experiment folder (resumable: a cell is done when its `result.json` exists, which
is written last and atomically; a rerun skips done cells and starts unfinished ones over):

    plan.json                        what the folder is for (size, data seed, corpus or own data, recipes)
    corpus/                          the built-in corpus (not with --corpus, --stage1/--stage2 or --recipes)
    data/                            instruction files; instruct-<fraction>.json stage-2 subsets
    bases/<preset>/seed<k>/          the base model both arms of a seed start from (not for recipes)
    cells/<preset>/seed<k>/frac<f>/<arm>/run|eval|result.json

The fractions' subsets are nested (the 10% subset lies inside the 30% one) and the same for
every seed: the seed moves the base model, the initialisation and the data order, not the data.
A stage-2 item's group (a figure's questions together, a problem's option orders together) is
kept or dropped as one.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scitune.demo import DemoSize
from scitune.errors import ScituneError
from scitune.experiment.sources import UserData
from scitune.model.presets import FAMILY_PRESETS, PRESETS  # every model preset: tiny, smollm2-135m, the tiny families

log = logging.getLogger(__name__)  # progress; the CLI shows the `scitune` loggers on stdout

EXPERIMENT_KIND = "experiment"
ARMS = ("with-stage1", "without-stage1")

# quick: about 10 minutes on 2 cores; full: the demo's full size over 3 seeds and 3 fractions
MODES = {
    "quick": {"size": DemoSize(figures=300, image_size=128, lm_steps=100, vision_steps=150, align_epochs=2, instruct_epochs=3),
              "seeds": (0, 1), "fractions": (0.3, 1.0)},
    "full": {"size": DemoSize(figures=1000, image_size=128, lm_steps=250, vision_steps=400, align_epochs=3, instruct_epochs=4),
             "seeds": (0, 1, 2), "fractions": (0.1, 0.3, 1.0)},
}


@dataclass(frozen=True)
class Cell:
    preset: str
    seed: int
    fraction: float
    with_align: bool

    @property
    def arm(self) -> str:
        return ARMS[0] if self.with_align else ARMS[1]

    def folder(self, root: Path) -> Path:
        return root / "cells" / self.preset / f"seed{self.seed}" / f"frac{self.fraction:g}" / self.arm

    def label(self) -> str:
        return f"{self.preset} seed {self.seed} fraction {self.fraction:g} {self.arm}"


@dataclass(frozen=True)
class Plan:
    presets: tuple[str, ...]
    seeds: tuple[int, ...]
    fractions: tuple[float, ...]
    size: DemoSize
    data_seed: int = 0
    corpus: str | None = None  # an existing corpus folder (the built-in layout); None: build one
    user_data: UserData | None = None  # the user's own stage-1 and stage-2 data instead of a corpus
    recipes: tuple[str, ...] = ()  # recipes instead of presets (`presets` then holds their labels)

    def __post_init__(self) -> None:
        from scitune.experiment.sources import recipe_label

        if self.recipes and (self.presets != tuple(map(recipe_label, self.recipes)) or self.user_data is None):
            raise ScituneError("a grid of recipes names each by its file (presets) and takes its data from them (user_data)")
        for preset in () if self.recipes else self.presets:
            if preset not in PRESETS:
                raise ScituneError(f"--presets: {preset!r} is not a model preset; expected some of {', '.join(PRESETS)}")
        if self.corpus is not None and self.user_data is not None:
            raise ScituneError("--corpus and --stage1/--stage2 are two sources of data: give one")
        for fraction in self.fractions:
            if not 0 < fraction <= 1:
                raise ScituneError(f"--fractions: {fraction:g} is not in (0, 1]")
        if not (self.presets and self.seeds and self.fractions):
            raise ScituneError("the grid is empty: give at least one preset, seed and fraction")

    def cells(self) -> list[Cell]:
        """Seed by seed (a stopped grid has whole seeds done), both arms of a fraction together."""
        return [Cell(p, s, f, w) for p in self.presets for s in self.seeds for f in self.fractions for w in (True, False)]

    def identity(self) -> dict[str, Any]:
        """What must match for a folder to be resumed (the grid's axes may grow)."""
        found = {"size": asdict(self.size), "data_seed": self.data_seed, "corpus": self.corpus}
        if self.recipes:
            found["recipes"] = sorted(str(Path(r).resolve()) for r in self.recipes)
        return found if self.user_data is None else found | self.user_data.identity()

    def inputs(self) -> list[str | None]:
        """The folders and files the grid reads (its output may not land on or inside one)."""
        return [self.corpus, *self.recipes, *(self.user_data.inputs() if self.user_data else [])]


def parse_list(text: str, kind: Callable[[str], Any], flag: str) -> tuple:
    try:
        values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ScituneError(f"{flag}: expected a comma-separated list, got {text!r}") from None
    if not values:
        raise ScituneError(f"{flag}: empty list")
    return tuple(dict.fromkeys(values))


def claim_experiment(root: Path, plan: Plan) -> Path:
    """A new folder, or one this plan's earlier run left (resumed); anything else is refused."""
    from scitune.io.atomic import write_json
    from scitune.io.outputs import claim_output, write_marker

    claim_output(root, inputs=plan.inputs(), kind="dir", marker=EXPERIMENT_KIND, reuse=True)
    recorded = root / "plan.json"
    if recorded.is_file():
        earlier = json.loads(recorded.read_text(encoding="utf-8"))
        if earlier != plan.identity():
            changed = ", ".join(sorted(k for k in plan.identity().keys() | earlier.keys() if earlier.get(k) != plan.identity().get(k)))
            raise ScituneError(f"--out {root}: holds an experiment with another {changed}; resume it with the same "
                               "settings, or choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    write_marker(root, EXPERIMENT_KIND)
    write_json(recorded, plan.identity())
    return root


def group_key(sample: dict) -> str:
    """Samples that stand or fall together: one figure's questions, one problem's option orders."""
    return str(sample.get("image") or re.sub(r"-order\d+$", "", str(sample.get("id"))))


def subset(samples: list[dict], fraction: float, seed: int) -> list[dict]:
    """The first ceil(fraction x groups) groups of one seeded order: nested across fractions."""
    groups = sorted({group_key(s) for s in samples})
    random.Random(seed).shuffle(groups)
    kept = set(groups[: max(1, math.ceil(fraction * len(groups)))])
    return [s for s in samples if group_key(s) in kept]


def _done(folder: Path) -> bool:
    return (folder / "done.json").is_file()


def _mark_done(folder: Path, **info: Any) -> None:
    from scitune.io.atomic import write_json

    write_json(folder / "done.json", info)


def _fresh(folder: Path) -> Path:
    """An unfinished step's folder (inside the experiment folder) is cleared and done again."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


@dataclass(frozen=True)
class Prepared:
    """The grid's data: the instruction files by name (align, instruct, the tests) and the folder
    each stage's (and the test's) image paths are relative to."""

    files: dict[str, Path]
    images: dict[str, Path]  # align, instruct, test
    corpus: Path | None  # the built-in layout's folder (None: the user's own data)


def prepare_data(root: Path, plan: Plan) -> Prepared:
    """The corpus and the instruction files (built once), and one stage-2 file per fraction."""
    from scitune.data.corpus import build_corpus
    from scitune.data.sample import read_samples, write_samples
    from scitune.demo import build_instruction_files
    from scitune.experiment.sources import prepare_user_data

    size = plan.size
    corpus = None
    if plan.user_data is not None:
        plan.user_data.check()
    elif plan.corpus is None:
        corpus = root / "corpus"
        if not _done(root / "corpus-done"):
            log.info(f"== built-in corpus: {size.figures} figures at {size.image_size} px")
            build_corpus(corpus, figures=size.figures, seed=plan.data_seed, image_size=size.image_size, overwrite=True)
            _fresh(root / "corpus-done")
            _mark_done(root / "corpus-done")
    else:
        corpus = Path(plan.corpus)
    data = root / "data"
    if not _done(data):
        log.info("== instruction files")
        _fresh(data)
        if plan.user_data is not None:
            prepare_user_data(plan.user_data, data, plan.data_seed, size.choice_orders)
        else:
            build_instruction_files(corpus, data, plan.data_seed, size.choice_orders)
        _mark_done(data)
    files = {p.stem: p for p in data.glob("*.json") if p.stem != "done" and not p.stem.startswith("instruct-")}
    instruct = read_samples(files["instruct"])
    for fraction in plan.fractions:
        path = data / f"instruct-{fraction:g}.json"
        if not path.is_file():
            write_samples(subset(instruct, fraction, plan.data_seed), path)
    if plan.user_data is not None:
        images = plan.user_data.image_roots()
    else:
        images = dict.fromkeys(("align", "instruct", "test"), corpus)
    return Prepared(files, images, corpus)


def prepare_base(root: Path, plan: Plan, preset: str, seed: int, data: Prepared) -> Path:
    from scitune import demo
    from scitune.experiment import sources

    folder = root / "bases" / preset / f"seed{seed}"
    if not _done(folder):
        log.info(f"== base model: {preset}, seed {seed}")
        _fresh(folder)
        if data.corpus is not None:
            texts = demo.corpus_texts(data.corpus, plan.data_seed, plan.size.choice_orders)
            figures = demo.corpus_figures(data.corpus)
        else:
            texts, figures = sources.training_texts(data.files), sources.captioned_figures(data.files, data.images)
        demo.prepare_base(preset, texts, figures, folder / "model", plan.size, seed)
        _mark_done(folder)
    return folder / "model"


def cell_recipe(root: Path, plan: Plan, cell: Cell, base: Path | None, data: Prepared):
    """The cell's recipe: the demo's on the base model, or (`plan.recipes`) the user's recipe as
    written; either way the seed's, on the fraction's stage-2 subset, and without the align stage
    in the without-stage-1 arm (stage 2 then starts from the fresh base)."""
    from scitune import demo
    from scitune.config import load_recipe

    folder = cell.folder(root)
    subset = root / "data" / f"instruct-{cell.fraction:g}.json"
    if plan.recipes:
        path = plan.recipes[plan.presets.index(cell.preset)]
        recipe = load_recipe(path, [f"run.out={folder / 'run'}", f"run.seed={cell.seed}", f"model.seed={cell.seed}",
                                    "run.save_every=0", f"instruct.data.train={subset}"])
        if not cell.with_align:
            recipe.stages = [recipe.stages[1]]
            recipe.stages[0].init_from = None
        return recipe
    recipe = demo.stage_recipe(base, data.images["align"], {**data.files, "instruct": subset}, folder / "run", plan.size,
                               cell.seed, with_align=cell.with_align)
    for stage in recipe.stages:  # each stage's images (one corpus folder for the built-in data)
        stage.data.images = str(data.images[stage.stage.name])
        if cell.preset in FAMILY_PRESETS:  # padding swaps in a Llava image processor, which a family's model cannot use
            stage.data.pad_to_square = False
    return recipe


def run_cell(root: Path, plan: Plan, cell: Cell, base: Path | None, data: Prepared) -> dict[str, Any]:
    """Trains the cell's model and evaluates it as the demo does (on the user's own data: on
    their stage-2 test)."""
    from scitune import demo
    from scitune.experiment.sources import evaluate_user
    from scitune.train.run import run_recipe

    folder = _fresh(cell.folder(root))
    start = time.perf_counter()
    run_recipe(cell_recipe(root, plan, cell, base, data), overwrite=True)
    final = folder / "run" / "instruct" / "final"
    if data.corpus is not None:
        evaluated = demo.evaluate(final, data.corpus, data.files, folder / "eval", plan.size)
    else:
        evaluated = evaluate_user(final, plan.user_data, data.files, folder / "eval")
    return {"cell": asdict(cell), "metrics": evaluated["metrics"], "outcomes": evaluated["outcomes"],
            "seconds": round(time.perf_counter() - start, 1)}


def read_results(root: Path, cells: Iterable[Cell]) -> dict[Cell, dict[str, Any]]:
    """The done cells' results."""
    found = {}
    for cell in cells:
        path = cell.folder(root) / "result.json"
        if path.is_file():
            found[cell] = json.loads(path.read_text(encoding="utf-8"))
    return found


def run_grid(
    root: Path, plan: Plan,
    runner: Callable[[Cell], dict[str, Any]] | None = None,
) -> dict[Cell, dict[str, Any]]:
    """Runs every cell not yet done, in `Plan.cells` order, writing each one's `result.json` when
    it is done; returns all cells' results. `runner` replaces the real training and evaluation
    (tests)."""
    from scitune.io.atomic import write_json

    cells = plan.cells()
    results = read_results(root, cells)
    todo = [c for c in cells if c not in results]
    log.info(f"== {len(cells)} cells: {len(results)} done, {len(todo)} to run")
    if runner is None and todo:
        data = prepare_data(root, plan)
        bases: dict[tuple[str, int], Path] = {}

        def runner(cell: Cell) -> dict[str, Any]:
            key = (cell.preset, cell.seed)
            if plan.recipes:  # the recipe's own model section builds the model
                return run_cell(root, plan, cell, None, data)
            if key not in bases:
                bases[key] = prepare_base(root, plan, cell.preset, cell.seed, data)
            return run_cell(root, plan, cell, bases[key], data)

    for number, cell in enumerate(todo, start=1):
        log.info(f"== cell {number}/{len(todo)}: {cell.label()}")
        results[cell] = runner(cell)
        cell.folder(root).mkdir(parents=True, exist_ok=True)
        write_json(cell.folder(root) / "result.json", results[cell])  # last: the cell is done
        log.info(f"   done in {results[cell].get('seconds', 0):.0f} s")
    return results
