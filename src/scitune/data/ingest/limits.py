"""Bounds on everything `scitune ingest` reads from outside: archives, PDFs, images, text.

One frozen dataclass, passed down to every reader, so a caller (or a test) can tighten any of
them; the defaults fit real arXiv sources and papers with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    archive_members: int = 5_000  # files in one source archive
    archive_bytes: int = 1 << 30  # total uncompressed bytes of one archive (1 GiB)
    member_bytes: int = 512 << 20  # one uncompressed archive member (512 MiB)
    tex_bytes: int = 16 << 20  # one .tex file (16 MiB)
    tex_inputs: int = 500  # \input / \include files followed in one paper
    input_depth: int = 20  # nesting of \input
    macro_expansions: int = 100_000  # macro substitutions in one paper (stops recursive macros)
    macro_depth: int = 32  # macros that use macros: levels expanded before a source is refused
    macro_text_bytes: int = 64 << 20  # the source's text after macro expansion (stops macro bombs)
    ghostscript_seconds: int = 60  # one EPS figure through Ghostscript
    pdf_bytes: int = 256 << 20  # one PDF file (256 MiB)
    pdf_pages: int = 300  # pages of one PDF paper
    figure_pdf_pages: int = 1  # pages rendered of a figure given as a PDF file (the first)
    page_objects: int = 100_000  # drawing objects on one PDF page
    page_points: float = 14_400.0  # page width or height in PDF points (200 inches, the PDF maximum)
    render_pixels: int = 40_000_000  # pixels of one rendered page region or figure
    image_pixels: int = 90_000_000  # pixels of one raster figure file (PNG/JPEG)
    image_bytes: int = 256 << 20  # one figure file
    ocr_lines: int = 1_000  # text lines kept of one figure's text layer (SciCap's OCR field)
    bulk_members: int = 200_000  # files in one arXiv bulk tar (they hold a few thousand papers)
    metadata_line_bytes: int = 1 << 20  # one line of arXiv's metadata snapshot (1 MiB)

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {value}")


DEFAULT_LIMITS = Limits()
