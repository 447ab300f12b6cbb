"""A paper's LaTeX source folder -> one text: the main file found, its files decoded, `\\input`,
`\\include`, `\\import`, `\\subimport` and local packages (`\\usepackage{macros}` with a
`macros.sty` in the folder) inlined, comments, `\\iffalse` blocks and `comment` environments
removed. File markers (private-use characters) record which file each part came from.

What is not taken is reported, never dropped in silence: other files with `\\documentclass`,
unbalanced braces (file and line). Text that cannot be decoded is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scitune.data.ingest import texparse as tp
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError

FILE_MARK = re.compile("\ue010([^\ue011]*)\ue011")
_INPUT = re.compile(
    r"\\(?P<cmd>input|include|subfile)(?![A-Za-z@])\s*(?:\{(?P<name>[^}]*)\}|(?P<bare>[^\s\\{}]+))"
    r"|\\(?P<imp>import|subimport|inputfrom|subinputfrom|includefrom|subincludefrom)\*?\s*\{(?P<dir>[^}]*)\}\s*\{(?P<file>[^}]*)\}"
    r"|\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{(?P<packages>[^}]*)\}"
)
_HEAD = re.compile(r"\\document(?:class|style)(?![A-Za-z])")
_BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")
_END_DOCUMENT = re.compile(r"\\end\s*\{document\}")
_COMMENT_ENV = re.compile(r"\\begin\s*\{comment\}.*?\\end\s*\{comment\}", re.S)
_INPUTENC = re.compile(rb"\\usepackage\s*\[([^\]]*)\]\s*\{inputenc\}")
# inputenc's option -> Python codec (the ones arXiv sources use)
INPUTENC_CODECS = {"utf8": "utf-8", "utf8x": "utf-8", "latin1": "latin-1", "latin9": "iso8859-15",
                   "latin2": "iso8859-2", "latin5": "iso8859-9", "ansinew": "cp1252", "cp1252": "cp1252",
                   "cp1250": "cp1250", "cp1251": "cp1251", "cp850": "cp850", "cp437": "cp437",
                   "applemac": "mac_roman", "koi8-r": "koi8-r", "decmulti": "latin-1"}
# charset_normalizer's guess is taken only for these (Western code pages: a Central European one
# reads French as well as cp1252 does, but turns "même" into "męme"), and only when it is this
# sure (chaos is its measure of how garbled the decoded text looks: 0 clean, 1 noise)
DETECTED_CODECS = ("cp1252", "latin_1")
MAX_CHAOS = 0.05
# C0 controls other than tab, newline, form feed and carriage return, and DEL: never text
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
MAX_CONTROL_SHARE = 0.05  # more control characters than this: binary data, not a .tex file (random bytes: ~12%)


@dataclass
class Source:
    """The inlined text of a paper and what reading it found."""

    main: Path
    text: str
    raw_texts: list[str] = field(default_factory=list)  # each file as decoded (the licence search reads them)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, reason) not taken
    files: set[Path] = field(default_factory=set)  # every file read (resolved)


def _declared_codec(data: bytes) -> str | None:
    match = _INPUTENC.search(data[:200_000])
    if not match:
        return None
    for option in match.group(1).decode("ascii", "replace").split(","):
        codec = INPUTENC_CODECS.get(option.strip().lower())
        if codec:
            return codec
    return None


def decode_tex(data: bytes, where: str, declared: str | None = None) -> tuple[str, str | None]:
    """The text of a .tex file and the encoding its `\\usepackage[...]{inputenc}` declares (for the
    files it inputs). UTF-8 first; else the declared encoding (its own, or the main file's);
    else a confident charset_normalizer guess among the Western/Central European code pages;
    else refused. Control characters (NUL etc.) are removed; a file with too many of them is
    not text (over 5% of them). No byte is ever replaced by U+FFFD."""
    own = _declared_codec(data)
    codec = own or declared
    text = None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if codec and codec != "utf-8":
            text = data.decode(codec, errors="strict") if codec != "latin-1" else data.decode("latin-1")
        else:
            text = _detect(data)
    if text is None:
        raise ScituneError(f"{where}: not UTF-8 and no \\usepackage[...]{{inputenc}} or confident guess says which "
                           "encoding (or not a text file); refused")
    sample = text[:65536]
    if sample and len(_CONTROLS.findall(sample)) > MAX_CONTROL_SHARE * len(sample):
        raise ScituneError(f"{where}: binary data, not a LaTeX text file; refused")
    return _CONTROLS.sub("", text), own or declared


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # the guess is optional: without it only declared encodings are read
        return None
    best = from_bytes(data[:1_000_000], cp_isolation=list(DETECTED_CODECS)).best()
    if best is None or best.chaos > MAX_CHAOS:
        return None
    try:
        return data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _head_text(path: Path) -> str:
    """The start of a file, comments stripped, for finding `\\documentclass` (ASCII commands
    read the same in every encoding LaTeX sources use, so latin-1 never fails here)."""
    with path.open("rb") as handle:
        return tp.strip_comments(handle.read(1_000_000).decode("latin-1"))


def find_main_files(root: Path) -> tuple[Path, list[Path]]:
    """The main .tex file of a source folder, and the other files that also have
    `\\documentclass` (the caller reports those it did not read). The main
    file is the one that no other file inputs; among several, main.tex / ms.tex / paper.tex, else
    the first by name. Without `\\begin{document}` anywhere, `\\documentclass` alone decides."""
    texs = sorted(p for p in root.rglob("*.tex") if p.is_file())
    if not texs:
        raise ScituneError(f"{root}: no .tex file")
    if len(texs) == 1:
        return texs[0], []
    heads, classes, inputs = [], [], set()
    for path in texs:
        text = _head_text(path)
        if _HEAD.search(text):
            classes.append(path)
            if _BEGIN_DOCUMENT.search(text):
                heads.append(path)
        for match in _INPUT.finditer(text):
            if match.group("packages") is not None:
                continue
            name = (match.group("name") or match.group("bare") or match.group("file") or "").strip()
            folder = (match.group("dir") or "").strip()
            for base in (path.parent, root):
                inputs.add((base / folder / name).resolve())
                inputs.add((base / folder / (name + ".tex")).resolve())
    heads = heads or classes  # \begin{document} may stand in an input file
    candidates = [p for p in heads if p.resolve() not in inputs] or heads
    if not candidates:
        raise ScituneError(f"{root}: no .tex file has \\documentclass")
    main = candidates[0]
    for preferred in ("main.tex", "ms.tex", "paper.tex"):  # arXiv's own tie-break is alphabetical
        match = next((p for p in candidates if p.name == preferred), None)
        if match is not None:
            main = match
            break
    return main, [p for p in classes if p != main]


def find_main(root: Path) -> Path:
    """The main .tex file of a source folder."""
    return find_main_files(root)[0]


def _within(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_source(main: Path, root: Path, limits: Limits = DEFAULT_LIMITS) -> Source:
    """The main file with every input inlined (see the module's doc). `\\input` names resolve
    against the folder of the main file (LaTeX's working folder), or the folder an `\\import`
    set; a missing input is skipped (LaTeX would stop; we read on); nothing outside `root`."""
    root = root.resolve()
    main = main.resolve()
    source = Source(main=main, text="")
    count, total = [0], [0]
    encoding: list[str | None] = [None]

    def read(path: Path, depth: int, base: Path) -> str:
        rel = path.relative_to(root).as_posix()
        if depth > limits.input_depth:
            raise ScituneError(f"{rel}: \\input nested more than {limits.input_depth} deep; refused")
        count[0] += 1
        if count[0] > limits.tex_inputs:
            raise ScituneError(f"{main.name}: more than {limits.tex_inputs} \\input files; refused")
        size = path.stat().st_size
        if size > limits.tex_bytes:
            raise ScituneError(f"{rel}: more than {limits.tex_bytes} bytes; refused")
        total[0] += size  # the inlined text is bounded like the expanded one
        if total[0] > limits.macro_text_bytes:
            raise ScituneError(f"{main.name}: its inputs add up to more than {limits.macro_text_bytes} bytes; refused")
        raw, declared = decode_tex(path.read_bytes(), rel, encoding[0])
        source.files.add(path)
        if depth == 0:
            encoding[0] = declared
        source.raw_texts.append(raw)
        text = tp.drop_false_branches(tp.strip_comments(raw))
        text = _COMMENT_ENV.sub("", text)
        if depth > 0:  # a `subfiles` / `standalone` document read from the main one: its body only
            begin = _BEGIN_DOCUMENT.search(text)
            if begin:
                end = _END_DOCUMENT.search(text, begin.end())
                text = text[begin.end() : end.start() if end else len(text)]
        # a package's own code plays with braces on purpose (\catcode, \iffalse{\fi): .tex files only
        problem = tp.unbalanced_brace(text) if path.suffix != ".sty" else None
        if problem:
            source.problems.append((f"{rel}:{problem[0]}", f"unbalanced braces: {problem[1]}"))

        def find(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path | None:
            for suffix in suffixes:
                candidate = folder / (name + suffix)
                if candidate.is_file():
                    if not _within(root, candidate):
                        raise ScituneError(f"{rel}: {name!r} leaves the source folder; refused")
                    return candidate.resolve()
            return None

        def inline(match: re.Match) -> str:
            if match.group("packages") is not None:  # a package of the folder's own: its macros
                found = [find(base, n.strip(), (".sty",)) for n in match.group("packages").split(",") if n.strip()]
                bodies = [_mark(p, read(p, depth + 1, base), rel, root) for p in found if p is not None]
                return match.group(0) + "".join(bodies)
            if match.group("imp"):
                folder = match.group("dir").strip()
                new_base = (base if match.group("imp").startswith("sub") else main.parent) / folder
                name = match.group("file").strip()
                found = find(new_base, name, (".tex", ""))
                return _mark(found, read(found, depth + 1, new_base), rel, root) if found else ""
            name = (match.group("name") or match.group("bare") or "").strip()
            for folder in (base, main.parent, path.parent, root):
                found = find(folder, name, (".tex", "")) if name else None  # LaTeX tries .tex first
                if found is not None:
                    return _mark(found, read(found, depth + 1, base), rel, root)
            return ""

        return _INPUT.sub(inline, text)

    source.text = f"\ue010{main.relative_to(root).as_posix()}\ue011" + read(main, 0, main.parent)
    head = source.raw_texts[0] if source.raw_texts else ""
    if not _HEAD.search(tp.strip_comments(head)):
        raise ScituneError(f"{main.relative_to(root).as_posix()}: no \\documentclass, not a LaTeX paper; refused")
    return source


def _mark(path: Path, body: str, parent: str, root: Path) -> str:
    """An inlined file's text between markers: its own name before, the parent's after."""
    return f"\ue010{path.relative_to(root).as_posix()}\ue011{body}\ue010{parent}\ue011"
