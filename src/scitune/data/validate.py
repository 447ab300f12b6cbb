"""Checks a sample file before anything trains on it; every bad record is reported by id and reason.

Reasons (`REASONS`): the image is missing, unreadable, truncated, zero-sized, a decompression
bomb, longer than 20:1 or too large once padded to a square (`scitune.io.images`, the one opener
every path uses); its path escapes the image root (absolute, or `..` out of it); the `<image>`
placeholders do not match the image field; turns are empty, missing or wrongly ordered, or have unknown roles;
the sample is too long after tokenization; the id is missing or repeats an earlier one.

Training runs the same checks up front (`apply_policy`): `on_bad_record: fail` (default) stops
with the list, `skip` drops the bad records and counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scitune.config import ON_BAD_RECORD
from scitune.data.sample import IMAGE_TOKEN, ROLES, read_samples
from scitune.errors import ScituneError
from scitune.io.images import REASONS as IMAGE_REASONS

REASONS = {
    "bad_record": "record is not an object",
    "missing_id": "record has no id",
    "duplicate_id": "id repeats an earlier record's",
    "missing_turns": "no conversations list, or a turn without from/value",
    "unknown_role": "a turn's role is not human, gpt or system",
    "turn_order": "turns do not alternate human, gpt, ... ending with gpt",
    "empty_turn": "a turn's text is empty",
    "image_token_mismatch": f"the number of {IMAGE_TOKEN} placeholders does not match the image field",
    **IMAGE_REASONS,
    "too_long": "does not fit max_length after tokenization",
    "bad_label_mask": "supervised tokens do not decode to the assistant text",
}


@dataclass(frozen=True)
class Problem:
    id: str
    reason: str
    detail: str = ""


@dataclass
class ValidationReport:
    n_samples: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_ids(self) -> set[str]:
        return {p.id for p in self.problems}

    def counts(self) -> Counter[str]:
        return Counter(p.reason for p in self.problems)

    def summary_table(self) -> str:
        counts = self.counts()
        width = max([len(r) for r in counts] + [len("reason")])
        lines = [f"{'reason'.ljust(width)}  count  meaning", f"{'-' * width}  -----  -------"]
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{reason.ljust(width)}  {n:5d}  {REASONS.get(reason, '')}")
        bad = len(self.bad_ids)
        lines.append(f"{bad} of {self.n_samples} samples bad, {self.n_samples - bad} good")
        return "\n".join(lines)

    def listing(self, limit: int | None = None) -> str:
        shown = self.problems if limit is None else self.problems[:limit]
        lines = [f"{p.id}: {p.reason}" + (f" ({p.detail})" if p.detail else "") for p in shown]
        if limit is not None and len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def check_image(path_text: str, root: Path) -> tuple[str, str] | None:
    """(reason, detail) for a bad image, None for a good one: `scitune.io.images.open_under`'s
    checks (the path stays inside `root`; sizes, aspect ratio and padded size from the header
    before decoding; the image decodes whole), the same every other path applies."""
    from scitune.io.images import ImageProblem, open_under

    try:
        open_under(root, path_text, rgb=False).close()
    except ImageProblem as problem:
        return problem.reason, str(problem)
    return None


def _check_structure(sample: dict[str, Any]) -> list[tuple[str, str]]:
    turns = sample.get("conversations")
    if not isinstance(turns, list) or not turns:
        return [("missing_turns", "no conversations")]
    problems = []
    roles = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            return [("missing_turns", f"turn {index} lacks from/value")]
        role = turn["from"] if isinstance(turn["from"], str) else None
        if role not in ROLES:
            problems.append(("unknown_role", f"turn {index} from {str(turn['from'])[:80]!r}"))
        if not isinstance(turn["value"], str) or not turn["value"].strip():
            problems.append(("empty_turn", f"turn {index}"))
        roles.append(ROLES.get(role))
    if any(p[0] == "unknown_role" for p in problems):
        return problems
    body = roles[1:] if roles[0] == "system" else roles
    if "assistant" not in body or "user" not in body:
        problems.append(("missing_turns", "no " + ("gpt" if "assistant" not in body else "human") + " turn"))
        return problems
    expected = ["user", "assistant"] * (len(body) // 2 + 1)
    if body != expected[: len(body)] or body[-1] != "assistant":
        problems.append(("turn_order", " ".join(t["from"] for t in turns)))
    return problems


def _check_placeholders(sample: dict[str, Any]) -> tuple[str, str] | None:
    image = sample.get("image")
    if image is None:
        n_images = 0
    elif isinstance(image, str):
        n_images = 1
    elif isinstance(image, list) and all(isinstance(p, str) for p in image):
        n_images = len(image)
    else:
        return "image_token_mismatch", f"image field {image!r} is not a path or list of paths"
    turns = sample["conversations"]
    in_gpt = sum(t["value"].count(IMAGE_TOKEN) for t in turns if t["from"] != "human" and isinstance(t["value"], str))
    found = sum(t["value"].count(IMAGE_TOKEN) for t in turns if isinstance(t["value"], str))
    if found != n_images or in_gpt:
        where = f", {in_gpt} outside human turns" if in_gpt else ""
        return "image_token_mismatch", f"{found} {IMAGE_TOKEN} for {n_images} image(s){where}"
    return None


def validate_samples(samples: list[Any], image_root: str | Path | None, renderer=None) -> ValidationReport:
    """Checks every sample; with a renderer (`scitune.prompting.Renderer`, with its max_length),
    also that each renders for training as it would be trained on (fits, label spans match)."""
    report = ValidationReport(n_samples=len(samples))
    root = Path(image_root) if image_root is not None else None
    seen: set[str] = set()
    image_results: dict[str, tuple[str, str] | None] = {}
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            report.problems.append(Problem(f"#{index}", "bad_record"))
            continue
        if sample.get("id") in (None, ""):
            sample_id = f"#{index}"
            report.problems.append(Problem(sample_id, "missing_id"))
        else:
            sample_id = str(sample["id"])
            if sample_id in seen:
                report.problems.append(Problem(sample_id, "duplicate_id", f"record {index}"))
            seen.add(sample_id)
        structure = _check_structure(sample)
        report.problems += [Problem(sample_id, r, d) for r, d in structure]
        if any(r in ("missing_turns",) for r, _ in structure):
            continue
        mismatch = _check_placeholders(sample)
        if mismatch:
            report.problems.append(Problem(sample_id, *mismatch))
        image = sample.get("image")
        paths = [image] if isinstance(image, str) else image if isinstance(image, list) else []
        bad_image = False
        for path_text in paths:
            if not isinstance(path_text, str):
                continue
            if root is None:
                raise ScituneError("validating samples with images needs an image root (--images DIR)")
            if path_text not in image_results:
                image_results[path_text] = check_image(path_text, root)
            if image_results[path_text]:
                bad_image = True
                report.problems.append(Problem(sample_id, *image_results[path_text]))
        if renderer is not None and not structure and not mismatch and not bad_image:
            problem = renderer.problem(sample)
            if problem:
                report.problems.append(Problem(sample_id, *problem))
    return report


def validate_file(path: str | Path, image_root: str | Path | None, renderer=None) -> ValidationReport:
    return validate_samples(read_samples(path), image_root, renderer)




def checked_samples(
    samples: list[Any], image_root: str | Path | None, on_bad_record: str = "fail", renderer=None
) -> tuple[list[dict[str, Any]], ValidationReport]:
    """What training runs up front: validate, then `fail` (raise, listing the bad records) or
    `skip` (drop them); returns the samples to train on and the report (its counts say what was dropped).
    `renderer`: as validate_samples'."""
    check_policy(on_bad_record)
    report = validate_samples(samples, image_root, renderer)
    return apply_policy(samples, report, on_bad_record), report


def check_policy(on_bad_record: str) -> None:
    if on_bad_record not in ON_BAD_RECORD:
        raise ScituneError(f"on_bad_record: expected fail or skip, got {on_bad_record!r}")


def enforce_policy(on_bad_record: str, bad: int, records: int, problems: list[tuple[str, str]],
                   n_problems: int | None = None, where: str = "") -> None:
    """The bad-record policy, in one place for a sample list (`apply_policy`) and training's index
    (scitune.train.dataset): with problems, `fail` raises one line naming up to 20 of them (of
    `n_problems`, default all given); `skip` returns, and the caller drops every record of a bad id."""
    check_policy(on_bad_record)
    if not problems or on_bad_record == "skip":
        return
    more = (len(problems) if n_problems is None else n_problems) > 20
    raise ScituneError(
        f"{where}{bad} bad record(s) of {records} (set on_bad_record: skip to drop them): "
        + "; ".join(f"{sample_id}: {reason}" for sample_id, reason in problems[:20]) + (" ..." if more else "")
    )


def apply_policy(samples: list[Any], report: ValidationReport, on_bad_record: str = "fail") -> list[dict[str, Any]]:
    """`fail`: raise listing the bad records; `skip`: the good samples (each id kept once)."""
    enforce_policy(on_bad_record, len(report.bad_ids), report.n_samples, [(p.id, p.reason) for p in report.problems])
    if report.ok:
        return list(samples)
    bad = report.bad_ids
    kept, seen = [], set()
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict) or sample.get("id") in (None, ""):
            continue
        sample_id = str(sample["id"])
        if sample_id in bad or sample_id in seen:
            continue
        seen.add(sample_id)
        kept.append(sample)
    return kept
