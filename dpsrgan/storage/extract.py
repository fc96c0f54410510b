"""Safe zip extraction: no escaping paths, no links, bounded size and count, never half-done.

Checks, before a byte is written: every member name is relative, has no ``..`` and no backslash;
no member is a symlink or device (Unix mode in ``external_attr``); names are unique; the declared
sizes and the member count are under the caps. While writing, actual bytes are counted too (a
lying header cannot exceed the caps). Extraction goes to a temporary sibling directory that gets a
completion marker and is then renamed into place, so an interrupted run is never mistaken for a
finished one, and a finished one (marker present, same archive) is not redone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from dpsrgan.errors import DpsrganError

log = logging.getLogger(__name__)

MARKER = ".dpsrgan-extracted.json"
"""Written last into an extracted tree; its presence means the extraction finished."""
_CHUNK = 1 << 20


class UnsafeArchiveError(DpsrganError):
    """The archive is refused: unsafe paths or links, too big, too many files, or corrupt."""


@dataclass(frozen=True)
class ExtractLimits:
    """Caps that stop a zip bomb (``data.max_extract_bytes`` / ``data.max_extract_files``)."""

    max_bytes: int
    max_files: int


def is_extracted(dest: Path) -> bool:
    """True when ``dest`` holds a finished extraction (its marker is present)."""
    return (dest / MARKER).is_file()


def extract_zip(archive: Path, dest: Path, limits: ExtractLimits) -> Path:
    """Extract ``archive`` into ``dest`` (created; an unfinished or different one is replaced)."""
    identity = {"archive": archive.name, "size": archive.stat().st_size}
    if is_extracted(dest) and json.loads((dest / MARKER).read_text()).get("source") == identity:
        log.info("%s: already extracted in %s", archive.name, dest)
        return dest
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _checked_members(zf, archive.name, limits)
            tmp = dest.with_name(f".{dest.name}.partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                total = _write_members(zf, members, tmp, archive.name, limits)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise UnsafeArchiveError(f"{archive}: not a valid zip archive ({error}); delete it and fetch it again") from None
    marker = {"source": identity, "files": sum(not m.is_dir() for m in members), "bytes": total}
    (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    log.info("%s: extracted %d files (%d bytes) into %s", archive.name, marker["files"], total, dest)
    return dest


def _checked_members(zf: zipfile.ZipFile, name: str, limits: ExtractLimits) -> list[zipfile.ZipInfo]:
    """All members, after refusing unsafe names, links, duplicates and declared-size bombs."""
    members = zf.infolist()
    if len(members) > limits.max_files:
        raise UnsafeArchiveError(
            f"{name}: {len(members)} members exceed data.max_extract_files={limits.max_files}; "
            f"raise it if the archive is trusted"
        )
    declared = sum(member.file_size for member in members)
    if declared > limits.max_bytes:
        raise UnsafeArchiveError(
            f"{name}: declared uncompressed size {declared} bytes exceeds data.max_extract_bytes="
            f"{limits.max_bytes} (zip bomb?); raise it if the archive is trusted"
        )
    seen: set[str] = set()
    for member in members:
        _check_name(member.filename, name)
        mode = member.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"{name}: member {member.filename!r} is a symbolic link; links are refused")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{name}: member {member.filename!r} is not a regular file or directory")
        if member.flag_bits & 0x1:
            raise UnsafeArchiveError(f"{name}: member {member.filename!r} is encrypted; decrypt the archive first")
        key = member.filename.rstrip("/")
        if key in seen:
            raise UnsafeArchiveError(f"{name}: member {member.filename!r} appears twice")
        seen.add(key)
    return members


def _check_name(filename: str, name: str) -> None:
    path = PurePosixPath(filename)
    if "\\" in filename or "\x00" in filename:
        raise UnsafeArchiveError(f"{name}: member {filename!r} has a backslash or NUL in its name; refused")
    if path.is_absolute() or (len(filename) > 1 and filename[1] == ":"):
        raise UnsafeArchiveError(f"{name}: member {filename!r} has an absolute path; refused (zip-slip)")
    if ".." in path.parts or not path.parts:
        raise UnsafeArchiveError(f"{name}: member {filename!r} escapes the target directory; refused (zip-slip)")


def _write_members(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path, name: str, limits: ExtractLimits
) -> int:
    """Write members under ``root`` counting real bytes against the caps; returns the total."""
    total = 0
    for member in tqdm(members, desc=f"extract {name}", unit="file", disable=None, leave=False):
        target = root.joinpath(*PurePosixPath(member.filename).parts)
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with zf.open(member) as source, open(target, "xb") as sink:
            for block in iter(lambda: source.read(_CHUNK), b""):
                written += len(block)
                total += len(block)
                if written > member.file_size or total > limits.max_bytes:
                    raise UnsafeArchiveError(
                        f"{name}: member {member.filename!r} expands past its declared size or past "
                        f"data.max_extract_bytes={limits.max_bytes} (zip bomb?); refused"
                    )
                sink.write(block)
    return total
