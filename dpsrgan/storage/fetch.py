"""One call to get a verified file from wherever it lives.

Sources: ``gdrive:FILE_ID``, ``s3://bucket/key``, ``http(s)://host/path/file`` and local paths.
Remote files land at ``dest`` only after the HTML check and the checksum checks passed (MD5, as
CelebA's authors publish it; SHA-256 or its leading digits, as torchvision names its weights);
local files are checked in place and returned as they are (no copy of a multi-GB archive).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import (
    ChecksumError,
    is_verified,
    mark_verified,
    md5_file,
    reject_html,
    verify_md5,
    verify_sha256,
)

log = logging.getLogger(__name__)


class FetchError(DpsrganError):
    """A source could not be fetched or is not what was expected."""


def redact(uri: str) -> str:
    """``uri`` without user info and query string, safe for logs, errors and manifests."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def fetch(
    source: str,
    dest: Path,
    *,
    md5: str | None,
    sha256: str | None = None,
    s3_endpoint_url: str | None = None,
    setting: str = "data.uri",
) -> Path:
    """Return a local path holding ``source``'s verified bytes.

    Remote sources are downloaded to ``dest`` (resuming ``dest.part``), unless ``dest`` was
    verified before. ``sha256`` may be the digest's leading hex digits. With neither ``md5`` nor
    ``sha256`` the file is not checked (a warning says so). ``setting`` is the param that names
    the source, which messages tell the user to check. Raises
    :class:`~dpsrgan.errors.DpsrganError` with a one-line reason on any failure
    (:class:`~dpsrgan.storage.checksum.ChecksumError` for a wrong digest).
    """
    label = dest.name
    if not _is_remote(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FetchError(f"{label}: {path} not found; check {setting}")
        reject_html(path, label, setting=setting)
        _verify(path, label, md5, sha256)
        return path
    if is_verified(dest, md5):
        log.info("%s: already downloaded and verified (%s)", label, dest)
        return dest
    if dest.is_file() and md5 is not None and md5_file(dest) == md5.lower():
        mark_verified(dest, md5)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    log.info("%s: fetching %s", label, redact(source))
    _download(source, partial, label, s3_endpoint_url, setting)
    try:
        reject_html(partial, label, setting=setting)
        _verify(partial, label, md5, sha256)
    except DpsrganError:
        partial.unlink()
        raise
    os.replace(partial, dest)
    if md5 is not None:
        mark_verified(dest, md5)
    return dest


def _is_remote(source: str) -> bool:
    return source.startswith(("gdrive:", "s3://", "http://", "https://"))


def _verify(path: Path, label: str, md5: str | None, sha256: str | None) -> None:
    if sha256 is not None:
        verify_sha256(path, sha256, label)
    if md5 is not None or sha256 is None:
        verify_md5(path, md5, label)  # warns when there is no checksum at all


def _download(source: str, partial: Path, label: str, s3_endpoint_url: str | None, setting: str) -> None:
    if source.startswith("gdrive:"):
        from dpsrgan.storage.gdrive import download_drive

        download_drive(source.removeprefix("gdrive:"), partial, label)
    elif source.startswith("s3://"):
        from dpsrgan.storage.s3 import download_s3

        download_s3(source, partial, label, endpoint_url=s3_endpoint_url, setting=setting)
    else:
        from dpsrgan.storage.http import download_http

        download_http(source, partial, label, shown_url=redact(source), setting=setting)


__all__ = ["ChecksumError", "FetchError", "fetch", "redact"]
