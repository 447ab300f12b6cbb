"""ScienceQA -> stage-2 instruction samples, in every LLaVA prompt format.

Two releases are read:
- the original: `problems.json` (pid -> problem), `pid_splits.json` (split -> ordered pids),
  images at `images/<split>/<pid>/image.png`, captions in `captions.json` (`{"captions": {pid: text}}`);
- the Hugging Face parquet release: `data/{train,validation,test}-*.parquet`, one row per problem
  with the image bytes inline. It has no problem ids: rows get the id `<split>-<row>`.

A problem record is the original problem dict (question, choices, answer, hint, image, task,
grade, subject, topic, category, skill, lecture, solution, split) plus `id`, and `image_bytes`
for the parquet release. The metadata stays, for scoring by category.

Formats (`FORMATS`):
- `CQM-A` is the layout of LLaVA's published `llava_test_CQM-A.json` (LLaVA-1.5 evaluation):
  `<image>\\n` first when there is an image, `Context: <hint>\\n` only when there is context,
  the question, one `A. choice` line per option; target: the answer letter.
- every other `<input>-<output>` format is LLaVA's `convert_sqa_to_llava.py` over
  `convert_sqa_to_llava_base_prompt.py` (the LLaVA-1 ScienceQA fine-tuning files): inputs
  CQM, QCM, QCML, QCME, QCMLE, QCLM, QCEM, QCLEM; outputs A, AL, AE, ALE, AEL, LA, EA, LEA, ELA,
  LEPA; `Context: N/A` when empty; options as `(A) x (B) y`; `\\n<image>` appended to the human
  turn. (LLaVA-1's own CQM-A variant is not offered: the name belongs to the published file.)
  L = lecture, E = explanation (the `solution` field).

Upstream bugs fixed here (LLaVA's scripts, not the data):
1. `input.replace('Question: ', '')` removes *every* "Question: " in the prompt (also inside a
   question or hint that quotes one), not only the leading prefix; we remove only the prefix
   (likewise for "Answer: " in the target and the trailing "BECAUSE:").
2. Output formats AL and AE are swapped upstream (AL emits the solution, AE the lecture); here
   AL = answer + lecture and AE = answer + explanation, as the letters say.
"""

from __future__ import annotations

import itertools
import re
import zlib
from pathlib import Path
from typing import Any

from scitune.data.sample import OPTION_LETTERS, make_sample
from scitune.errors import ScituneError
from scitune.io.images import write_image
from scitune.io.read import check_file, read_json

INPUT_FORMATS = ("CQM", "QCM", "QCML", "QCME", "QCMLE", "QCLM", "QCEM", "QCLEM")
OUTPUT_FORMATS = ("A", "AL", "AE", "ALE", "AEL", "LA", "EA", "LEA", "ELA", "LEPA")
LLAVA15_FORMAT = "CQM-A"
FORMATS = (LLAVA15_FORMAT,) + tuple(
    f"{i}-{o}" for i in INPUT_FORMATS for o in OUTPUT_FORMATS if f"{i}-{o}" != LLAVA15_FORMAT
)
MAX_OPTIONS = 5  # ScienceQA problems have 2 to 5 options

# Split names: the original release says "val", the parquet release "validation".
_ORIGINAL_SPLIT = {"validation": "val"}
_PARQUET_SPLIT = {"val": "validation"}

# Some hints in problems.json end with the text of the image's Punnett square glued to the last
# sentence ("...between two sheep.This Punnett square is ff\n\nff\n\nff\n\nff"). It spells out
# the image and so answers the question from text alone; LLaVA's published files carry none of it
# (0 of the 4241 test records), and it is removed here the same way.
_GLUED_TABLE_TEXT = re.compile(r"(?<=[.!?])This Punnett square is\b.*\Z", re.S)

REQUIRED_FIELDS = ("question", "choices", "answer", "hint")


# ----------------------------------------------------------------------------- reading


def read_problems(
    root_or_problems_json: str | Path, split: str = "test", captions: str | Path | None = None
) -> list[dict[str, Any]]:
    """The problems of one split, in the release's order.

    `root_or_problems_json`: the original release's folder (problems.json + pid_splits.json),
    a problems JSON file (pid_splits.json beside it gives the order; without it, each problem's
    own `split` field selects), or the parquet release's folder (data/<split>-*.parquet).
    `captions`: a captions.json; default: captions.json in the folder, when present. Captions
    land in each problem's `caption` field ("" when absent), for the use-caption formats.
    """
    path = Path(root_or_problems_json)
    subset = path.is_file()  # a problems file of its own may hold a subset of pid_splits.json's ids
    if path.is_file():
        problems_file, root = path, path.parent
    elif (path / "problems.json").is_file():
        problems_file, root = path / "problems.json", path
    elif path.is_dir() and sorted((path / "data").glob("*.parquet")):
        records = _read_parquet_split(path, split)
        return _attach_captions(records, captions)
    elif path.is_dir():
        raise ScituneError(
            f"{path}: not a ScienceQA release: expected problems.json (+ pid_splits.json) or data/<split>-*.parquet"
        )
    else:
        raise ScituneError(f"{path}: no such file or folder")

    problems = read_json(problems_file)
    if not isinstance(problems, dict):
        raise ScituneError(f"{problems_file}: expected an object mapping problem id -> problem")
    name = _ORIGINAL_SPLIT.get(split, split)
    splits_file = root / "pid_splits.json"
    if splits_file.is_file():
        splits = read_json(splits_file)
        if not isinstance(splits, dict):
            raise ScituneError(f"{splits_file}: expected an object mapping split -> list of problem ids")
        if name not in splits:
            raise ScituneError(f"{splits_file}: no split {split!r}; it has {', '.join(sorted(map(str, splits)))}")
        listed = splits[name]
        if not isinstance(listed, list) or not all(isinstance(pid, (str, int)) and not isinstance(pid, bool) for pid in listed):
            raise ScituneError(f"{splits_file}: split {name!r} must be a list of problem ids, got {type(listed).__name__}")
        listed = [str(pid) for pid in listed]
        unknown = [pid for pid in listed if pid not in problems]
        if unknown and not subset:
            raise ScituneError(
                f"{splits_file}: split {name!r} names {len(unknown)} problem(s) not in {problems_file.name} "
                f"({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''})"
            )
        pids = [pid for pid in listed if pid in problems]
    else:
        pids = [pid for pid, problem in problems.items() if isinstance(problem, dict) and problem.get("split") == name]
    records = []
    for pid in pids:
        problem = problems[pid]
        _check_problem(pid, problem, problems_file)
        records.append({**problem, "id": str(pid), "split": problem.get("split", name)})
    if captions is None and (root / "captions.json").is_file():
        captions = root / "captions.json"
    return _attach_captions(records, captions)


def _check_problem(pid: str, problem: Any, where: Path | str) -> None:
    if not isinstance(problem, dict):
        raise ScituneError(f"{where}: problem {pid}: expected an object")
    missing = [f for f in REQUIRED_FIELDS if f not in problem]
    if missing:
        raise ScituneError(f"{where}: problem {pid}: missing field(s) {', '.join(missing)}")
    choices = problem["choices"]
    if not isinstance(choices, list) or not 2 <= len(choices) <= MAX_OPTIONS:
        raise ScituneError(f"{where}: problem {pid}: choices must be a list of 2 to {MAX_OPTIONS} options")
    if not isinstance(problem["answer"], int) or not 0 <= problem["answer"] < len(choices):
        raise ScituneError(f"{where}: problem {pid}: answer {problem['answer']!r} is not an index into its choices")


def _read_parquet_split(root: Path, split: str) -> list[dict[str, Any]]:
    name = _PARQUET_SPLIT.get(split, split)
    files = sorted((root / "data").glob(f"{name}-*.parquet"))
    if not files:
        raise ScituneError(f"{root / 'data'}: no {name}-*.parquet files (split {split!r})")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ScituneError("reading the ScienceQA parquet release needs pyarrow: pip install 'scitune[parquet]'") from None
    records = []
    for file in files:
        check_file(file, what="parquet file")
        try:
            rows = pq.read_table(file).to_pylist()
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            raise ScituneError(f"{file}: not a readable parquet file ({' '.join(str(err).split())[:200]})") from None
        for row in rows:
            pid = f"{name}-{len(records)}"
            _check_problem(pid, row, file)
            image = row.pop("image", None)
            data = image.get("bytes") if isinstance(image, dict) else None
            records.append(
                {**row, "id": pid, "split": name, "image": "image.png" if data else None, "image_bytes": data}
            )
    return records


def _attach_captions(records: list[dict[str, Any]], captions: str | Path | None) -> list[dict[str, Any]]:
    table: dict[str, str] = {}
    if captions is not None:
        captions = Path(captions)
        data = read_json(captions)
        if not isinstance(data, dict) or not isinstance(data.get("captions"), dict):
            raise ScituneError(f'{captions}: expected {{"captions": {{pid: text}}}}')
        table = data["captions"]
    for record in records:
        record.setdefault("caption", table.get(record["id"], ""))
        if record["id"] in table:
            record["caption"] = table[record["id"]]
    return records


def image_path(problem: dict[str, Any]) -> str | None:
    """The problem's image, relative to the split's image folder (`images/<split>`), as LLaVA writes it."""
    return f"{problem['id']}/{problem['image']}" if problem.get("image") else None


def export_images(problems: list[dict[str, Any]], image_root: str | Path) -> int:
    """Writes the parquet release's inline images to `<image_root>/<id>/image.png`; returns how many."""
    image_root = Path(image_root)
    written = 0
    for problem in problems:
        data = problem.get("image_bytes")
        if not data:
            continue
        write_image(bytes(data), image_root, image_path(problem), f"ScienceQA problem {problem['id']}", format="PNG")
        written += 1
    return written


# ----------------------------------------------------------------------------- prompt pieces


def context_text(problem: dict[str, Any], use_caption: bool = False) -> str:
    """Hint (+ image caption), as LLaVA joins them; "" when there is none."""
    hint = _GLUED_TABLE_TEXT.sub("", problem.get("hint") or "")
    caption = (problem.get("caption") or "") if use_caption else ""
    return " ".join([hint, caption]).strip()


def answer_letter(problem: dict[str, Any]) -> str:
    return OPTION_LETTERS[problem["answer"]]


def _collapse(text: str) -> str:
    # LLaVA applies one pass of replace("  ", " ") to each prompt and target; kept as is, since
    # the published files are made that way (a run of three spaces becomes two).
    return text.replace("  ", " ").strip()


def _llava15_cqm_a(problem: dict[str, Any], use_caption: bool) -> tuple[str, str]:
    context = context_text(problem, use_caption)
    lines = []
    if context:
        lines.append(f"Context: {context}")
    lines.append(problem["question"])
    lines += [f"{OPTION_LETTERS[i]}. {choice}" for i, choice in enumerate(problem["choices"])]
    human = _collapse("\n".join(lines))
    if problem.get("image"):
        human = "<image>\n" + human
    return human, answer_letter(problem)


def _llava1_input(fmt: str, question: str, context: str, options: str, lecture: str, solution: str) -> str:
    head = f"Question: {question}\nContext: {context}\n"
    return {
        "CQM": f"Context: {context}\nQuestion: {question}\nOptions: {options}\n",
        "QCM": f"{head}Options: {options}\n",
        "QCML": f"{head}Options: {options}\nBECAUSE: {lecture}\n",
        "QCME": f"{head}Options: {options}\nBECAUSE: {solution}\n",
        "QCMLE": f"{head}Options: {options}\nBECAUSE: {lecture} {solution}\n",
        "QCLM": f"{head}BECAUSE: {lecture}\nOptions: {options}\n",
        "QCEM": f"{head}BECAUSE: {solution}\nOptions: {options}\n",
        "QCLEM": f"{head}BECAUSE: {lecture} {solution}\nOptions: {options}\n",
    }[fmt]


def _llava1_output(fmt: str, answer: str, lecture: str, solution: str) -> str:
    if fmt == "LEPA":
        out = ""
        if lecture.strip():
            out += f"LECTURE: {lecture}\n"
        if solution.strip():
            out += f"SOLUTION: {solution}\n"
        return out + f"###\nANSWER: {answer}."
    return {
        "A": f"Answer: The answer is {answer}.",
        "AL": f"Answer: The answer is {answer}. BECAUSE: {lecture}",  # upstream emits the solution here
        "AE": f"Answer: The answer is {answer}. BECAUSE: {solution}",  # upstream emits the lecture here
        "ALE": f"Answer: The answer is {answer}. BECAUSE: {lecture} {solution}",
        "AEL": f"Answer: The answer is {answer}. BECAUSE: {solution} {lecture}",
        "LA": f"Answer: {lecture} The answer is {answer}.",
        "EA": f"Answer: {solution} The answer is {answer}.",
        "LEA": f"Answer: {lecture} {solution} The answer is {answer}.",
        "ELA": f"Answer: {solution} {lecture} The answer is {answer}.",
    }[fmt]


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if text.startswith(prefix) else text


def _strip_suffix(text: str, suffix: str) -> str:
    return text[: -len(suffix)].strip() if text.endswith(suffix) else text


def _llava1(problem: dict[str, Any], fmt: str, use_caption: bool) -> tuple[str, str]:
    input_format, output_format = fmt.split("-")
    context = context_text(problem, use_caption) or "N/A"
    options = " ".join(f"({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(problem["choices"]))
    lecture, solution = problem.get("lecture") or "", problem.get("solution") or ""
    human = _collapse(_llava1_input(input_format, problem["question"], context, options, lecture, solution))
    gpt = _collapse(_llava1_output(output_format, answer_letter(problem), lecture, solution))
    human = _strip_suffix(human, "BECAUSE:")
    gpt = _strip_suffix(gpt, "BECAUSE:")
    human = _strip_prefix(human, "Question: ")
    gpt = _strip_prefix(gpt, "Answer: ")
    if problem.get("image"):
        human = f"{human}\n<image>"
    return human, gpt


def build_prompt(problem: dict[str, Any], format: str = LLAVA15_FORMAT, use_caption: bool = False) -> tuple[str, str]:
    """(human value, gpt value) of one problem in `format`."""
    if format not in FORMATS:
        raise ScituneError(f"unknown ScienceQA format {format!r}; expected one of {', '.join(FORMATS)}")
    if format == LLAVA15_FORMAT:
        return _llava15_cqm_a(problem, use_caption)
    return _llava1(problem, format, use_caption)


def choice_orders(problem: dict[str, Any], copies: int, seed: int = 0) -> list[dict[str, Any]]:
    """The problem in up to `copies` distinct option orders: first as given, then shuffled orders
    (seeded by `seed` and the problem id), with `answer` following its choice. A problem with n
    options has at most n! orders, so it yields min(copies, n!) records."""

    import numpy as np

    if copies < 1:
        raise ScituneError(f"choice orders: copies must be at least 1, got {copies}")
    n = len(problem["choices"])
    identity = tuple(range(n))
    wanted = min(copies, len(list(itertools.islice(itertools.permutations(identity), copies))))
    rng = np.random.default_rng([seed, zlib.crc32(str(problem["id"]).encode())])
    orders = [identity]
    while len(orders) < wanted:
        order = tuple(int(i) for i in rng.permutation(n))
        if order not in orders:
            orders.append(order)
    return [
        {**problem, "choices": [problem["choices"][i] for i in order], "answer": order.index(problem["answer"])}
        for order in orders
    ]


def build_scienceqa_samples(
    problems: list[dict[str, Any]],
    format: str = LLAVA15_FORMAT,
    use_caption: bool = False,
    captions: dict[str, str] | None = None,
    orders: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """LLaVA conversation samples, one per problem; `image` is relative to `images/<split>`.

    `captions` (pid -> text) overrides the captions read with the problems (use_caption only).
    `orders` > 1 adds copies of each problem with its options shuffled (`choice_orders`; ids
    `<pid>-order<k>`), so that a model learns to read the options rather than to remember a
    letter per problem: a training augmentation, never for evaluation files.
    """
    samples = []
    for problem in problems:
        if captions is not None:
            problem = {**problem, "caption": captions.get(problem["id"], "")}
        for k, variant in enumerate(choice_orders(problem, orders, seed) if orders > 1 else [problem]):
            human, gpt = build_prompt(variant, format, use_caption)
            sample_id = problem["id"] if k == 0 else f"{problem['id']}-order{k}"
            samples.append(make_sample(sample_id, human, gpt, image_path(problem)))
    return samples
