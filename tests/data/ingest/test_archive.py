"""Source archives: arXiv-style .tar.gz read like a folder; malformed and escaping archives refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from scitune.data.ingest.archive import extract_archive
from scitune.data.ingest.limits import Limits
from scitune.errors import ScituneError
from tests.data.ingest.conftest import draw_figure

TEX = ("\\documentclass{article}\\begin{document}\nSee Figure~\\ref{f}.\n\n\\begin{figure}\\includegraphics{f.png}"
       "\\caption{From an archive.}\\label{f}\\end{figure}\n\\end{document}\n")


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def test_archive_is_read_like_a_folder(tmp_path: Path):
    from scitune.data.ingest import ingest

    make_tar(tmp_path / "2401.00001.tar.gz", [regular("main.tex", TEX.encode()), regular("f.png", draw_figure())])
    report = ingest([str(tmp_path / "2401.00001.tar.gz")], tmp_path / "out")
    assert report["counts"]["figures"] == 1
    assert (tmp_path / "out" / "images" / "2401.00001-fig1.png").is_file()


@pytest.mark.parametrize("name", ["../evil.tex", "/etc/evil.tex", "a/../../evil.tex"])
def test_escaping_paths_are_refused(tmp_path: Path, name: str):
    archive = make_tar(tmp_path / "bad.tar.gz", [regular("main.tex", TEX.encode()), regular(name, b"x")])
    with pytest.raises(ScituneError, match="refused"):
        extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.tex").exists()


@pytest.mark.parametrize("kind,target", [(tarfile.SYMTYPE, "../../outside"), (tarfile.SYMTYPE, "/etc/passwd"),
                                         (tarfile.LNKTYPE, "../outside")])
def test_links_leaving_the_folder_are_refused(tmp_path: Path, kind, target: str):
    link = tarfile.TarInfo("sub/link")
    link.type, link.linkname = kind, target
    archive = make_tar(tmp_path / "link.tar.gz", [(link, None)])
    with pytest.raises(ScituneError, match="points outside"):
        extract_archive(archive, tmp_path / "dest")


def test_device_files_and_limits(tmp_path: Path):
    dev = tarfile.TarInfo("null")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(ScituneError, match="device"):
        extract_archive(make_tar(tmp_path / "dev.tar.gz", [(dev, None)]), tmp_path / "d1")
    many = make_tar(tmp_path / "many.tar.gz", [regular(f"f{i}.tex", b"x") for i in range(5)])
    with pytest.raises(ScituneError, match="more than 3 members"):
        extract_archive(many, tmp_path / "d2", Limits(archive_members=3))
    big = make_tar(tmp_path / "big.tar.gz", [regular("big.tex", b"x" * 5000)])
    with pytest.raises(ScituneError, match="more than the limit of 1000"):
        extract_archive(big, tmp_path / "d3", Limits(member_bytes=1000))


def test_malformed_archive_fails_that_paper_only(tmp_path: Path):
    from scitune.data.ingest import ingest

    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not gzip")
    make_tar(papers / "good.tar.gz", [regular("main.tex", TEX.encode()), regular("f.png", draw_figure())])
    report = ingest([str(papers)], tmp_path / "out")
    assert report["counts"]["figures"] == 1
    assert [f["source"] for f in report["failed"]] == [str(papers / "broken.tar.gz")]
    assert "broken.tar.gz" in report["failed"][0]["reason"]


def test_single_gzipped_tex(tmp_path: Path):
    import gzip

    (tmp_path / "2401.00002.gz").write_bytes(gzip.compress(b"\\documentclass{article}\\begin{document}Hi\\end{document}"))
    dest = extract_archive(tmp_path / "2401.00002.gz", tmp_path / "dest")
    assert [p.name for p in dest.iterdir()] == ["2401.00002.tex"]


def test_a_run_where_every_paper_fails_exits_non_zero_and_one_bad_paper_does_not(tmp_path: Path, capsys):
    from scitune.cli import main

    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not gzip")
    assert main(["ingest", str(papers), "--out", str(tmp_path / "none")]) == 1
    assert "no paper could be read: 1 failed" in capsys.readouterr().out
    make_tar(papers / "good.tar.gz", [regular("main.tex", TEX.encode()), regular("f.png", draw_figure())])
    assert main(["ingest", str(papers), "--out", str(tmp_path / "some")]) == 0
    assert "1 papers failed" in capsys.readouterr().out
