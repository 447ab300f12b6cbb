"""`EvalItem`: one prompt for the engine to run (a LLaVA user turn, its images, its options).
No torch here, so tasks can build items without loading the model stack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scitune.data.sample import image_paths
from scitune.errors import ScituneError


@dataclass(frozen=True)
class EvalItem:
    """One prompt to run: the user turn (with `<image>` placeholders) and its image files
    (relative to the engine's image root, or as given when it has none)."""

    question_id: str
    prompt: str
    images: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # answers to score in likelihood mode (e.g. "A", "B", ...)
    extra: dict = field(default_factory=dict, compare=False)  # copied into the prediction row

    def sample(self) -> dict:
        """The item as a LLaVA record whose last turn is the question."""
        record = {"id": self.question_id, "conversations": [{"from": "human", "value": self.prompt}]}
        if self.images:
            record["image"] = list(self.images)
        return record

    @classmethod
    def from_sample(cls, sample: dict, options: Sequence[str] = (), extra: dict | None = None) -> EvalItem:
        """The first human turn of a LLaVA record, with its images."""
        turns = sample.get("conversations")
        human = next((t.get("value") for t in turns or [] if isinstance(t, dict) and t.get("from") == "human"), None)
        if not isinstance(human, str):
            raise ScituneError(f"sample {sample.get('id')!r}: needs a human turn with text")
        return cls(str(sample.get("id")), human, tuple(image_paths(sample)), tuple(options), extra or {})
