"""Safe zip extraction: zip-slip, links, bombs (declared and lying headers), interruption."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest

from dpsrgan.storage import ExtractLimits, UnsafeArchiveError, extract_zip
from dpsrgan.storage.extract import MARKER, is_extracted

LIMITS = ExtractLimits(max_bytes=10 * 1024 * 1024, max_files=100)


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extracts_with_marker_and_skips_when_done(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"top/": b"", "top/x.txt": b"x", "top/sub/y.txt": b"yy"})
    dest = extract_zip(archive, tmp_path / "out", LIMITS)
    assert (dest / "top/x.txt").read_bytes() == b"x" and (dest / "top/sub/y.txt").read_bytes() == b"yy"
    assert is_extracted(dest)
    (dest / "top/x.txt").write_bytes(b"changed")  # a second call trusts the marker: no re-extraction
    extract_zip(archive, tmp_path / "out", LIMITS)
    assert (dest / "top/x.txt").read_bytes() == b"changed"


def test_unfinished_extraction_is_redone(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"x.txt": b"x"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "leftover.txt").write_text("from an interrupted run")  # no marker: not complete
    (tmp_path / ".out.partial").mkdir()
    extract_zip(archive, dest, LIMITS)
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "x.txt"]
    assert not (tmp_path / ".out.partial").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/etc/evil.txt", "C:/evil.txt", "a\\..\\evil.txt"])
def test_zip_slip_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "slip.zip", {"fine.txt": b"ok", name: b"pwned"})
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract_zip(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("images/passwd")
        link.create_system = 3  # Unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_zip(archive, tmp_path / "out", LIMITS)


def test_declared_size_bomb_is_refused_before_writing(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (20 * 1024 * 1024)})
    assert archive.stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError, match="max_extract_bytes"):
        extract_zip(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_too_many_members_is_refused(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(101)})
    with pytest.raises(UnsafeArchiveError, match="max_extract_files=100"):
        extract_zip(archive, tmp_path / "out", LIMITS)


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Patch the local and central headers of ``member`` to declare ``declared`` bytes."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, declared)  # local header: uncompressed size
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)  # central directory: uncompressed size
    path.write_bytes(bytes(data))


def test_lying_header_cannot_expand_past_its_declaration(tmp_path):
    archive = make_zip(tmp_path / "liar.zip", {"zeros.bin": b"\0" * (20 * 1024 * 1024)})
    _lie_about_size(archive, "zeros.bin", 1000)
    with pytest.raises(UnsafeArchiveError):
        extract_zip(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_not_a_zip_is_a_clear_error(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK but not really a zip file" * 10)
    with pytest.raises(UnsafeArchiveError, match="not a valid zip archive"):
        extract_zip(fake, tmp_path / "out", LIMITS)
