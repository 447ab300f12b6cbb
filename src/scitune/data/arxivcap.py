"""ArxivCap -> figure captioning samples.

A paper record is `{src | arxiv_id, title, abstract, caption_images: [{caption, cil_pairs:
[{sub_caption, image_file, image?, image_ocr?}]}]}` (the release's parquet files; JSON and JSONL
exports of the same records are read too). Each caption-image pair becomes one sample whose
target is its `sub_caption` when it has one (a panel of a multi-panel figure) and otherwise the
whole caption; `use_sub_caption=False` always uses the whole caption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scitune.data import instructions
from scitune.data.sample import make_sample
from scitune.errors import ScituneError
from scitune.io import read
from scitune.io.images import contained_path, write_image


def read_arxivcap(path: str | Path) -> list[dict[str, Any]]:
    """Figure records `{id, paper, title, caption, sub_caption, image, image_bytes}` from a paper file."""
    path = Path(path)
    if not path.is_file():
        raise ScituneError(f"{path}: no such file")
    papers = _read_papers(path)
    figures = []
    for index, paper in enumerate(papers):
        if not isinstance(paper, dict) or not isinstance(paper.get("caption_images"), list):
            raise ScituneError(f"{path}: paper record {index} has no caption_images list")
        name = str(paper.get("arxiv_id") or paper.get("src") or index)
        for i, item in enumerate(paper["caption_images"]):
            where = f"{path}: paper {name!r} caption_images[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("cil_pairs"), list):
                raise ScituneError(f"{where}: expected caption and cil_pairs")
            for j, pair in enumerate(item["cil_pairs"]):
                if not isinstance(pair, dict) or not isinstance(pair.get("image_file"), str):
                    raise ScituneError(f"{where}.cil_pairs[{j}]: no image_file")
                for key, value in (("caption", item.get("caption")), ("sub_caption", pair.get("sub_caption"))):
                    if value is not None and not isinstance(value, str):
                        raise ScituneError(f"{where}.cil_pairs[{j}]: {key} must be text, got {type(value).__name__}")
                image = pair.get("image")
                figures.append(
                    {
                        "id": f"{name}-{i}-{j}",
                        "paper": name,
                        "title": paper.get("title"),
                        "caption": item.get("caption") or "",
                        "sub_caption": pair.get("sub_caption") or "",
                        "image": pair["image_file"],
                        "image_bytes": image.get("bytes") if isinstance(image, dict) else None,
                    }
                )
    return figures


def _read_papers(path: Path) -> list[Any]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ScituneError("reading ArxivCap parquet files needs pyarrow: pip install 'scitune[parquet]'") from None
        read.check_file(path, what="parquet file")
        try:
            return pq.read_table(path).to_pylist()
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            raise ScituneError(f"{path}: not a readable parquet file ({' '.join(str(err).split())[:200]})") from None
    if path.suffix == ".jsonl":
        return [row for _, row in read.iter_jsonl(path)]
    data = read.read_json(path)
    return data if isinstance(data, list) else [data]


def export_images(figures: list[dict[str, Any]], image_root: str | Path) -> int:
    """Writes inline images (parquet) to `<image_root>/<image_file>`; returns how many. Paths that
    lead out of `image_root` (absolute, `..`, or through a symlink) are refused, images are
    decoded within limits, and each file is written atomically."""
    image_root = Path(image_root)
    if image_root.exists() and not image_root.is_dir():
        raise ScituneError(f"--images {image_root}: exists and is not a folder")
    pending = [f for f in figures if f.get("image_bytes")]
    for figure in pending:  # every path is checked before the first image is written
        contained_path(image_root, figure["image"], f"ArxivCap figure {figure['id']!r}")
    for figure in pending:
        write_image(bytes(figure["image_bytes"]), image_root, figure["image"], f"ArxivCap figure {figure['id']!r}")
    return len(pending)


def build_arxivcap_samples(figures: list[dict[str, Any]], use_sub_caption: bool = True, seed: int = 0) -> list[dict[str, Any]]:
    samples = []
    for figure in figures:
        target = (figure["sub_caption"] if use_sub_caption and figure["sub_caption"].strip() else figure["caption"]).strip()
        if not target:
            raise ScituneError(f"ArxivCap figure {figure['id']!r}: no caption")
        question = instructions.choose(instructions.CAPTION, seed, figure["id"])
        samples.append(make_sample(figure["id"], f"<image>\n{question}", target, figure["image"]))
    return samples
