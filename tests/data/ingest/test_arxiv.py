"""arXiv bulk source tars read member by member, with the arXiv id in provenance; the metadata
snapshot gives licences and selects papers by category and licence; hostile members fail alone."""

from __future__ import annotations

import datetime
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from scitune.data.ingest import ingest
from scitune.data.ingest.arxiv import Selection, arxiv_id, read_metadata
from scitune.data.ingest.licence import licence_name
from scitune.data.ingest.limits import Limits
from scitune.errors import ScituneError
from tests.data.ingest.conftest import Page, draw_figure


def tex(caption: str) -> bytes:
    return ("\\documentclass{article}\\begin{document}\nAs Figure~\\ref{f} shows, it rises.\n\n"
            f"\\begin{{figure}}\\includegraphics{{f.png}}\\caption{{{caption}}}\\label{{f}}\\end{{figure}}\n"
            "\\end{document}\n").encode()


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pdf_paper(tmp: Path) -> bytes:
    page = Page().new_page()
    y = page.text(54, 60, 500, "A short paper. Figure 1 shows the energy of the device, which rises over the days.")
    page.drawing(150, y + 20, 250, 150)
    page.text(54, y + 190, 500, "Figure 1: Energy of the device over four days, drawn as vectors.")
    page.pdf.set_creation_date(datetime.datetime(2023, 1, 2, tzinfo=datetime.timezone.utc))  # the same bytes each time
    return page.save(tmp / "paper.pdf").read_bytes()


def write_bulk(path: Path, members: dict[str, bytes]) -> Path:
    """An arXiv bulk tar: an uncompressed tar of YYMM/ID.gz and YYMM/ID.pdf members."""
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("2301")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def bulk_members(tmp: Path) -> dict[str, bytes]:
    png = draw_figure("bar")
    return {
        "2301/2301.00001.gz": tar_bytes({"main.tex": tex("Energy from a multi-file source."), "f.png": png}),
        "2301/2301.00002.pdf": pdf_paper(tmp),
        "2301/2301.00003.gz": gzip.compress(b"\\documentclass{article}\\begin{document}Text only.\\end{document}"),
        "2301/2301.00004.gz": tar_bytes({"main.tex": tex("Escaping."), "../evil.tex": b"x"}),
        "2301/2301.00005.gz": b"\x1f\x8bnot really gzip",
        "0101/hep-th0101001.gz": tar_bytes({"main.tex": tex("An old-style paper's figure."), "f.png": png}),
    }


METADATA = [
    {"id": "2301.00001", "categories": "astro-ph.GA physics.optics", "license": "http://creativecommons.org/licenses/by/4.0/",
     "title": "One"},
    {"id": "2301.00002", "categories": "physics.optics", "license": "http://creativecommons.org/licenses/by-nc-sa/4.0/"},
    {"id": "2301.00003", "categories": "cs.LG", "license": "http://creativecommons.org/licenses/by/4.0/"},
    {"id": "2301.00004", "categories": "astro-ph.SR", "license": "http://creativecommons.org/licenses/by/4.0/"},
    {"id": "2301.00005", "categories": "astro-ph", "license": "http://creativecommons.org/licenses/by/4.0/"},
    {"id": "hep-th/0101001", "categories": "hep-th", "license": None},
    {"id": "2212.99999", "categories": "astro-ph.GA", "license": "http://creativecommons.org/licenses/by/4.0/"},
]


def write_metadata(path: Path, records=METADATA) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def bulk(tmp_path: Path) -> Path:
    return write_bulk(tmp_path / "arXiv_src_2301_001.tar", bulk_members(tmp_path))


def test_arxiv_ids_and_licence_names():
    assert arxiv_id("2301/2301.00001.gz") == "2301.00001"
    assert arxiv_id("2301/2301.00002.pdf") == "2301.00002"
    assert arxiv_id("0101/hep-th0101001.gz") == "hep-th/0101001"
    assert arxiv_id("9912/math.AG9912001.gz") == "math.AG/9912001"
    assert arxiv_id("2301/README") is None
    assert licence_name("http://creativecommons.org/licenses/by/4.0/") == "cc-by"
    assert licence_name("http://creativecommons.org/licenses/by-nc-sa/4.0/") == "cc-by-nc-sa"
    assert licence_name("http://creativecommons.org/publicdomain/zero/1.0/") == "cc0"
    assert licence_name("http://arxiv.org/licenses/nonexclusive-distrib/1.0/") == "arxiv-nonexclusive"
    assert licence_name(None) == "none"


def test_bulk_tar_member_by_member(bulk: Path, tmp_path: Path):
    out = tmp_path / "out"
    report = ingest([str(bulk)], out)
    papers = {p["arxiv_id"]: p for p in map(json.loads, (out / "papers.jsonl").read_text().splitlines())}
    assert sorted(papers) == ["2301.00001", "2301.00002", "2301.00003", "hep-th/0101001"]
    assert papers["2301.00001"]["kind"] == "latex" and papers["2301.00001"]["figures"] == 1
    assert papers["2301.00002"]["kind"] == "pdf" and papers["2301.00002"]["figures"] == 1
    assert papers["2301.00003"]["figures"] == 0
    assert papers["hep-th/0101001"]["name"] == "hep-th_0101001"
    provenance = {p["arxiv_id"]: p for p in json.loads((out / "provenance.json").read_text())}
    assert provenance["2301.00001"]["member"] == "2301/2301.00001.gz"
    assert provenance["2301.00001"]["archive"] == "arXiv_src_2301_001.tar"
    assert provenance["2301.00001"]["tex_file"] == "main.tex"
    assert (out / "images" / provenance["hep-th/0101001"]["file_name"]).is_file()
    # hostile and broken members fail alone, named in ingest.json
    failed = {f["member"]: f["reason"] for f in json.loads((out / "ingest.json").read_text())["failed"]}
    assert sorted(failed) == ["2301/2301.00004.gz", "2301/2301.00005.gz"]
    assert "refused" in failed["2301/2301.00004.gz"] and "2301.00004" in failed["2301/2301.00004.gz"]
    assert report["counts"]["papers"] == 4 and report["counts"]["figures"] == 3
    assert not (tmp_path / "evil.tex").exists() and not (out / "evil.tex").exists()


def test_bulk_tar_is_never_unpacked_whole(bulk: Path, tmp_path: Path, monkeypatch):
    import scitune.data.ingest.archive as archive_module

    unpacked = []
    real = archive_module.extract_archive

    def spy(archive, dest, limits=Limits()):
        unpacked.append(Path(archive).name)
        return real(archive, dest, limits)

    monkeypatch.setattr(archive_module, "extract_archive", spy)
    ingest([str(bulk)], tmp_path / "out")
    # one paper's source at a time, from its own member; never the bulk tar
    assert sorted(unpacked) == ["2301.00001.gz", "2301.00003.gz", "2301.00004.gz", "hep-th0101001.gz"]


def test_member_over_the_size_limit_fails_alone(bulk: Path, tmp_path: Path):
    limit = len(bulk_members(tmp_path)["2301/2301.00001.gz"]) + 10
    report = ingest([str(bulk)], tmp_path / "out", limits=Limits(member_bytes=limit))
    reasons = {f["member"]: f["reason"] for f in report["failed"]}
    assert "more than the limit" in reasons["2301/2301.00002.pdf"]  # the PDF is the large one
    assert report["counts"]["papers"] == 3


def test_metadata_selects_and_gives_licences(bulk: Path, tmp_path: Path):
    meta = write_metadata(tmp_path / "arxiv-metadata-oai-snapshot.json")
    report = ingest([str(bulk)], tmp_path / "out", metadata=str(meta), categories=("astro-ph", "physics.optics"),
                    licences=("cc-by",))
    papers = [json.loads(line) for line in (tmp_path / "out" / "papers.jsonl").read_text().splitlines()]
    # 2301.00002 is cc-by-nc-sa, 2301.00003 is cs.LG, hep-th/0101001 has no licence; 00004/00005 are selected but fail
    assert [p["arxiv_id"] for p in papers] == ["2301.00001"]
    assert papers[0]["licence"] == "CC-BY-4.0" and papers[0]["licence_url"].endswith("/by/4.0/")
    assert papers[0]["categories"] == ["astro-ph.GA", "physics.optics"]
    assert report["counts"]["filtered"] == 3 and report["counts"]["failed_papers"] == 2
    # without a filter, the metadata still gives each paper its licence
    ingest([str(bulk)], tmp_path / "all", metadata=str(meta))
    licences = {p["arxiv_id"]: p["licence"] for p in map(json.loads, (tmp_path / "all" / "papers.jsonl").read_text().splitlines())}
    assert licences["2301.00002"] == "CC-BY-NC-SA-4.0" and licences["hep-th/0101001"] is None


def test_metadata_is_streamed_with_bounded_lines(tmp_path: Path):
    meta = write_metadata(tmp_path / "m.json")
    found = read_metadata(str(meta), {"2301.00002", "hep-th/0101001", "9999.99999"})
    assert sorted(found) == ["2301.00002", "hep-th/0101001"] and found["2301.00002"].licence == "cc-by-nc-sa"
    long = write_metadata(tmp_path / "long.json", METADATA[:2] + [{"id": "x", "abstract": "y" * 500}])
    with pytest.raises(ScituneError, match="line 3 is longer than 200 bytes"):
        read_metadata(str(long), {"x"}, Limits(metadata_line_bytes=200))
    (tmp_path / "bad.json").write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(ScituneError, match="line 2 is not JSON"):
        read_metadata(str(tmp_path / "bad.json"), {"a"})
    assert Selection(("astro-ph",)).reason_to_skip(found["2301.00002"]).startswith("categories")
    with pytest.raises(ScituneError, match="unknown licence name"):
        Selection(licences=("cc-by-4",))


def test_cli_bulk_with_metadata_then_data_scicap(bulk: Path, tmp_path: Path, capsys):
    from scitune.cli import main

    meta = write_metadata(tmp_path / "meta.json")
    out = tmp_path / "astro"
    assert main(["ingest", str(bulk), "--metadata", str(meta), "--categories", "astro-ph,physics.optics",
                 "--licence", "cc-by,cc-by-nc-sa", "--out", str(out), "--split", "100,0,0", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 figures from 2 papers" in printed and "2 papers failed" in printed
    assert main(["data", "scicap", "--input", str(out / "train.json"), "--images", str(out / "images"),
                 "--out", str(tmp_path / "align.json")]) == 0
    samples = json.loads((tmp_path / "align.json").read_text())
    assert sorted(s["image"] for s in samples) == ["2301.00001-fig1.png", "2301.00002-fig1.png"]
    assert main(["ingest", str(bulk), "--categories", "astro-ph", "--out", str(tmp_path / "x")]) == 2
    assert "--metadata" in capsys.readouterr().err


def test_bulk_tar_through_an_fsspec_url(bulk: Path, tmp_path: Path):
    pytest.importorskip("fsspec")
    report = ingest([f"file://{bulk.parent}/arXiv_src_*.tar"], tmp_path / "out")
    assert report["counts"]["papers"] == 4
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert all(p["source"].startswith("file://") for p in provenance)
