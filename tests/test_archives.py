"""rps.archives: unsafe zips are refused before anything is written."""

from __future__ import annotations

import stat
import zipfile

import pytest

from rps.archives import extract_zip
from rps.errors import ArchiveError


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if isinstance(data, zipfile.ZipInfo):
                archive.writestr(data, name)
            else:
                archive.writestr(name, data)
    return path


def symlink_member(name: str, target: str) -> tuple[str, zipfile.ZipInfo]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return target, info


def test_extracts_a_normal_zip(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", [("a/b.txt", b"hello")])
    target = extract_zip(archive, tmp_path / "out")
    assert (target / "a" / "b.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    "members, message",
    [
        ([("../evil.txt", b"x")], "outside"),
        ([("/etc/evil.txt", b"x")], "outside"),
        ([("a/../../evil.txt", b"x")], "outside"),
        ([symlink_member("link", "/etc/passwd")], "symlink"),
        ([("bomb.bin", b"\0" * 50_000_000)], "zip bomb"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "bomb"],
)
def test_unsafe_archives_are_refused_and_leave_nothing(tmp_path, members, message):
    archive = make_zip(tmp_path / "bad.zip", members)
    with pytest.raises(ArchiveError, match=message):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]


def test_total_size_limit(tmp_path):
    archive = make_zip(tmp_path / "big.zip", [(f"f{i}", bytes(range(256)) * 40) for i in range(5)])
    with pytest.raises(ArchiveError, match="expands to"):
        extract_zip(archive, tmp_path / "out", max_bytes=10_000)


def test_not_a_zip(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_text("not a zip")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        extract_zip(path, tmp_path / "out")


def test_refuses_to_unpack_over_existing_folder(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", [("a.txt", b"x")])
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError, match="already exists"):
        extract_zip(archive, tmp_path / "out")
