"""The user's own data for the ablation: stage-1 and stage-2 data given separately
(`--stage1`, `--stage2`), instead of the built-in corpus or a folder in its layout (`--corpus`).

Stage 1 (alignment), `--stage1`:
  - a SciCap folder: `train.json` (challenge layout, as `scitune corpus build` writes under
    `scicap/`) and `images/`; its figures become the paper's "describe" instructions (caption +
    type + OCR + mentions), as the built-in corpus' do;
  - or a LLaVA conversation file (.json / .jsonl), what a recipe's `align.data.train` takes, its
    image paths relative to `--stage1-images` (default: the file's folder).
Stage 2 (instruction tuning), `--stage2`:
  - a ScienceQA release folder (`problems.json` + `pid_splits.json`, `images/<split>/`): its train
    split trains (in the mode's option orders), its test split is the test;
  - or a LLaVA conversation file, what `instruct.data.train` takes, its images under
    `--stage2-images` (default: the file's folder), with `--stage2-test`: an answer key as
    `scitune eval scienceqa --answer-key` reads it (multiple-choice prompts with lettered options,
    the answer's letter in the gpt turn), its images under `--stage2-test-images` (default: the
    stage-2 training images' folder).

Stage 2 trains on the stage-2 data alone, and the test is ScienceQA (overall and IMG); figure
type and captions are scored on the built-in corpus only (its stage 2 holds figure questions).
Everything is checked before any training: a bad record or a missing image is one line naming
the file and the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError

SAMPLE_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class UserData:
    stage1: str
    stage2: str
    stage2_test: str | None = None
    stage1_images: str | None = None
    stage2_images: str | None = None
    stage2_test_images: str | None = None

    @property
    def stage1_is_scicap(self) -> bool:
        return Path(self.stage1).is_dir()

    @property
    def stage2_is_scienceqa(self) -> bool:
        return Path(self.stage2).is_dir()

    def check(self) -> None:
        """The sources' shapes (files, folders, which flag goes with which); the records are
        checked by `prepare_user_data`."""
        for flag, path in (("--stage1", self.stage1), ("--stage2", self.stage2)):
            if not Path(path).exists():
                raise ScituneError(f"{flag} {path}: no such file or folder")
        if self.stage1_is_scicap:
            for needed in ("train.json", "images"):
                if not (Path(self.stage1) / needed).exists():
                    raise ScituneError(f"{self.stage1}: not a SciCap folder (no {needed}); give a folder with train.json and "
                                       "images/, or a LLaVA conversation file")
            if self.stage1_images:
                raise ScituneError("--stage1-images: only with a conversation file as --stage1 (a SciCap folder's images/ is used)")
        else:
            _sample_file("--stage1", self.stage1)
        if self.stage2_is_scienceqa:
            if not (Path(self.stage2) / "problems.json").is_file():
                raise ScituneError(f"{self.stage2}: not a ScienceQA folder (no problems.json); give the release folder, or a "
                                   "LLaVA conversation file with --stage2-test")
            if self.stage2_test or self.stage2_images or self.stage2_test_images:
                raise ScituneError("--stage2-test/--stage2-images/--stage2-test-images: only with a conversation file as "
                                   "--stage2 (a ScienceQA folder's test split and images/ are used)")
        else:
            _sample_file("--stage2", self.stage2)
            if not self.stage2_test:
                raise ScituneError(f"--stage2 {self.stage2}: a conversation file needs --stage2-test, an answer key to score "
                                   "(LLaVA conversations with lettered options)")
            if not Path(self.stage2_test).is_file():
                raise ScituneError(f"--stage2-test {self.stage2_test}: no such file")
            _sample_file("--stage2-test", self.stage2_test)
        for flag, folder in (("--stage1-images", self.stage1_images), ("--stage2-images", self.stage2_images),
                             ("--stage2-test-images", self.stage2_test_images)):
            if folder and not Path(folder).is_dir():
                raise ScituneError(f"{flag} {folder}: no such folder")

    def inputs(self) -> list[str]:
        """Every path read, image folders included (no output may land on or inside one)."""
        given = [p for p in (self.stage1, self.stage2, self.stage2_test) if p]
        return given + [str(root) for root in dict.fromkeys(self.image_roots().values())]

    def identity(self) -> dict[str, Any]:
        return {"user_data": {k: (str(Path(v).resolve()) if v else None) for k, v in asdict(self).items()}}

    def image_roots(self) -> dict[str, Path]:
        """The folder each prepared file's image paths are relative to: align, instruct, test."""
        if self.stage1_is_scicap:
            align = Path(self.stage1) / "images"
        else:
            align = Path(self.stage1_images) if self.stage1_images else Path(self.stage1).parent
        if self.stage2_is_scienceqa:
            instruct, test = Path(self.stage2) / "images" / "train", Path(self.stage2) / "images" / "test"
        else:
            instruct = Path(self.stage2_images) if self.stage2_images else Path(self.stage2).parent
            test = Path(self.stage2_test_images) if self.stage2_test_images else instruct
        return {"align": align, "instruct": instruct, "test": test}


def _sample_file(flag: str, path: str) -> None:
    if Path(path).suffix not in SAMPLE_SUFFIXES:
        raise ScituneError(f"{flag} {path}: expected a folder or a LLaVA conversation file (.json or .jsonl)")


def _checked(samples: list[dict], where: str, root: Path) -> list[dict]:
    """The samples, or one line naming the file and its bad records (as training would refuse them)."""
    from scitune.data.validate import enforce_policy, validate_samples

    report = validate_samples(samples, root)
    enforce_policy("fail", len(report.bad_ids), report.n_samples, [(p.id, p.reason) for p in report.problems], where=f"{where}: ")
    if not samples:
        raise ScituneError(f"{where}: no records")
    return samples


def stage2_test_task(data: UserData):
    """The ScienceQA task the cells are scored on."""
    from scitune.data.scienceqa import read_problems
    from scitune.eval.tasks.scienceqa.task import ScienceQATask

    if data.stage2_is_scienceqa:
        problems = read_problems(data.stage2, split="test")
        if not problems:
            raise ScituneError(f"{data.stage2}: the test split holds no problems")
        return ScienceQATask.from_problems(problems)
    return ScienceQATask.from_answer_key(data.stage2_test)


def read_user_data(data: UserData, seed: int, choice_orders: int) -> dict[str, list[dict]]:
    """The stage-1, stage-2 and test samples (align, instruct, test_scienceqa; image paths
    relative to `data.image_roots()`), each checked as training would check them: a bad record or
    a missing image is one line naming the file and the records."""
    from scitune.data.sample import read_samples
    from scitune.data.scicap import build_instructions, read_scicap
    from scitune.data.scienceqa import build_scienceqa_samples, read_problems

    roots = data.image_roots()
    if data.stage1_is_scicap:
        align = build_instructions(read_scicap(Path(data.stage1) / "train.json"), task="describe", seed=seed)
        where1 = f"{data.stage1}/train.json"
    else:
        align, where1 = read_samples(data.stage1), data.stage1
    if data.stage2_is_scienceqa:
        instruct = build_scienceqa_samples(read_problems(data.stage2, split="train"), orders=choice_orders, seed=seed)
        where2 = f"{data.stage2} (train split)"
    else:
        instruct, where2 = read_samples(data.stage2), data.stage2
    if not any(sample.get("image") for sample in align):
        raise ScituneError(f"{where1}: no sample has an image; stage 1 aligns images with text")
    task = stage2_test_task(data)
    where3 = f"{data.stage2} (test split)" if data.stage2_is_scienceqa else str(data.stage2_test)
    return {"align": _checked(align, where1, roots["align"]), "instruct": _checked(instruct, where2, roots["instruct"]),
            "test_scienceqa": _checked(task.samples, where3, roots["test"])}


def prepare_user_data(data: UserData, out: Path, seed: int, choice_orders: int) -> dict[str, Path]:
    """Writes `read_user_data`'s samples into `out` as align.json, instruct.json and
    test_scienceqa.json; returns them by name."""
    from scitune.data.sample import write_samples

    out.mkdir(parents=True, exist_ok=True)
    return {name: write_samples(samples, out / f"{name}.json") for name, samples in read_user_data(data, seed, choice_orders).items()}


def training_texts(files: dict[str, Path]) -> list[str]:
    """What a tiny base model's vocabulary and LM learn from: every turn of the training samples."""
    from scitune.data.sample import read_samples

    texts = []
    for name in ("align", "instruct"):
        for sample in read_samples(files[name]):
            texts += [turn["value"].replace("<image>", "").strip() for turn in sample["conversations"]]
    return [t for t in texts if t]


def captioned_figures(files: dict[str, Path], roots: dict[str, Path]):
    """What a tiny CLIP tower learns from: each stage-1 image with its sample's first answer."""
    from scitune.data.sample import image_paths, read_samples

    pairs = []
    for sample in read_samples(files["align"]):
        images = image_paths(sample)
        answer = next((t["value"] for t in sample["conversations"] if t.get("from") == "gpt"), "").strip()
        if len(images) == 1 and answer:
            pairs.append((images[0], answer))
    if not pairs:
        raise ScituneError(f"{files['align']}: no stage-1 sample with one image and an answer to pretrain the vision tower on")
    return roots["align"], pairs


def evaluate_user(checkpoint: Path, data: UserData, files: dict[str, Path], out: Path) -> dict[str, Any]:
    """Scores one trained model on the stage-2 test as `scitune eval scienceqa` does (`run_task`:
    predictions, metrics.json under `out/scienceqa/generate/`); returns the metrics and each test
    item's outcome (`scitune.experiment.outcomes`)."""
    from scitune.data.sample import read_samples
    from scitune.eval.runner import run_task
    from scitune.eval.tasks.scienceqa.task import ScienceQATask
    from scitune.experiment.outcomes import scienceqa_outcomes
    from scitune.inference import Engine
    from scitune.io.atomic import write_json
    from scitune.model import load_model

    out.mkdir(parents=True, exist_ok=True)
    model, processor = load_model(checkpoint)
    engine = Engine(model, processor, image_root=data.image_roots()["test"])
    task = stage2_test_task(data)
    task = ScienceQATask(read_samples(files["test_scienceqa"]), task.key, task.problems, task.format, task.source)
    (result,) = run_task(task, engine, ["generate"], out / task.name, batch_size=16, max_new_tokens=8, progress=True)
    outcomes = {"scienceqa": scienceqa_outcomes(result.result.rows, task.key), "figure_type": {}, "captions": {}}
    metrics = {"scienceqa": result.result.metrics()}
    write_json(out / "metrics.json", metrics)
    write_json(out / "outcomes.json", outcomes)
    return {"metrics": metrics, "outcomes": outcomes}


def recipe_label(path: str) -> str:
    """How a recipe is named in the grid (cells/<label>/...) and the table: its file name's stem."""
    return Path(path).stem


def recipes_data(paths: tuple[str, ...], stage2_test: str | None, stage2_test_images: str | None = None) -> UserData:
    """The data of `--recipes`: each recipe's align stage gives the stage-1 data, its instruct stage
    (which must start from stage 1: `init_from`) the stage-2 data; every recipe must name the same
    data, since the grid compares them on one test (`stage2_test`, an answer key whose images lie
    under `stage2_test_images`, default the instruct stage's image folder)."""
    from scitune.config import load_recipe

    found = {}
    for path in paths:
        recipe = load_recipe(path)
        stages = {s.stage.name: s for s in recipe.stages}
        if set(stages) != {"align", "instruct"} or recipe.stages[0].stage.name != "align":
            raise ScituneError(f"recipe {path}: the ablation needs an align stage then an instruct stage, "
                               f"it has {', '.join(stages)}")
        if stages["instruct"].init_from is None:
            raise ScituneError(f"recipe {path}: its instruct stage does not start from stage 1 (set instruct.init_from: "
                               "projector or model), so there is nothing to ablate")
        for name, stage in stages.items():
            if not stage.data.train:
                raise ScituneError(f"recipe {path}: {name}.data.train names no file")
        found[path] = (stages["align"].data.train, stages["align"].data.images or None,
                       stages["instruct"].data.train, stages["instruct"].data.images or None)
    if len({recipe_label(p) for p in paths}) != len(paths):
        raise ScituneError(f"--recipes: two recipes share a file name ({', '.join(paths)}); the grid names cells by it")
    first, *others = paths
    for other in others:
        if found[other] != found[first]:
            raise ScituneError(f"--recipes: {other} trains on other data than {first}; the ablation compares recipes on one "
                               "set of stage-1 and stage-2 data")
    if not stage2_test:
        raise ScituneError("--recipes: give --stage2-test, the answer key the cells are scored on")
    align, align_images, instruct, instruct_images = found[first]
    return UserData(align, instruct, stage2_test, align_images, instruct_images, stage2_test_images)
