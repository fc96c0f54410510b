"""File digests (:func:`sha256_file`, :func:`md5_file`: the one place files are hashed), MD5
verification of fetched files, remembered in a small sidecar so a verified file is not hashed (or
fetched) again, and recognising an HTML page saved where an archive should be.

MD5 is what CelebA's authors publish; it guards against truncation and mix-ups, not tampering.
SHA-256 names inputs in provenance (shards, checkpoints, the VGG19 weights).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from dpsrgan.atomic_io import write_text_atomic
from dpsrgan.errors import DpsrganError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumError(DpsrganError):
    """A file's digest differs from the expected one (``actual`` and ``expected``: hex)."""

    def __init__(self, message: str, *, actual: str, expected: str) -> None:
        super().__init__(message)
        self.actual, self.expected = actual, expected


def _file_digest(path: str | os.PathLike, algorithm: str) -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)  # integrity, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    return _file_digest(path, "md5")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    return _file_digest(path, "sha256")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_verified(path: Path, md5: str | None) -> bool:
    """True when ``path`` exists and its sidecar says it matched ``md5`` and it is unchanged since.

    With no expected MD5 a complete (renamed-into-place) file counts as verified.
    """
    if not path.is_file():
        return False
    if md5 is None:
        return True
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    return record == {"md5": md5.lower(), **_identity(path)}


def mark_verified(path: Path, md5: str) -> None:
    """Write the sidecar that lets :func:`is_verified` skip hashing next time (atomically)."""
    write_text_atomic(_sidecar(path), json.dumps({"md5": md5.lower(), **_identity(path)}))


def verify_md5(path: Path, md5: str | None, label: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to ``md5`` (skipped when None).

    ``label`` names the file for the message (e.g. ``img_align_celeba.zip``); the message says
    how to override the expectation for a re-packed mirror.
    """
    if md5 is None:
        log.warning("%s: no expected MD5 in data.md5, so it is not verified", label)
        return
    actual = md5_file(path)
    if actual != md5.lower():
        raise ChecksumError(
            f"{label}: MD5 {actual} does not match the expected {md5.lower()} (file {path}); "
            f"the download is corrupt or the mirror re-packed it: fetch it again, or if you trust "
            f"this copy set data.md5.{label}: {actual} in params.yaml",
            actual=actual,
            expected=md5.lower(),
        )


def verify_sha256(path: Path, sha256: str, label: str) -> None:
    """Raise :class:`ChecksumError` unless ``path``'s SHA-256 starts with ``sha256`` (the whole
    hex digest, or its leading digits as a file name promises them: ``vgg19-dcbb9e9d.pth``)."""
    expected = sha256.lower()
    actual = sha256_file(path)
    if not actual.startswith(expected):
        raise ChecksumError(
            f"{label}: SHA-256 starts with {actual[: len(expected)]}, not the expected {expected} "
            f"(file {path}); the download is corrupt or not the file named: fetch it again",
            actual=actual,
            expected=expected,
        )


# What the start of an HTML page looks like, and what Drive's pages say, most specific first.
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<meta|<title)", re.IGNORECASE)
_PAGE_KINDS = (
    (re.compile(rb"too many users|quota exceeded|download quota", re.IGNORECASE),
     "Google Drive's download-quota page ('too many users have viewed or downloaded this file')"),
    (re.compile(rb"virus scan warning|download-form|can't scan this file|confirm=", re.IGNORECASE),
     "Google Drive's large-file confirmation page"),
    (re.compile(rb"accounts\.google\.com|sign in|log ?in", re.IGNORECASE),
     "a login page"),
)


def describe_html(head: bytes) -> str | None:
    """If ``head`` (the first KiB or so of a file) is an HTML page, say which kind; else None."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not _HTML_START.match(head):
        return None
    for pattern, kind in _PAGE_KINDS:
        if pattern.search(head):
            return kind
    return "an HTML page"


def reject_html(path: Path, label: str, head_bytes: int = 64 * 1024, setting: str = "data.uri") -> None:
    """Raise when the file at ``path`` is an HTML page saved in place of the real file
    (``setting``: the param that names the source, for the message)."""
    with open(path, "rb") as handle:
        kind = describe_html(handle.read(head_bytes))
    if kind is not None:
        raise DpsrganError(
            f"{label}: {path} is {kind}, not the file itself; delete it and fetch again, "
            f"or point {setting} at a mirror (s3://..., https://...) or a local copy"
        )
