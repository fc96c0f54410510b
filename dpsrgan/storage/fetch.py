"""One call to get a verified file from wherever it lives.

Sources: ``gdrive:FILE_ID``, ``s3://bucket/key``, ``http(s)://host/path/file`` and local paths.
Remote files land at ``dest`` only after the HTML check and the MD5 check passed; local files are
checked in place and returned as they are (no copy of a multi-GB archive).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import ChecksumError, is_verified, mark_verified, md5_file, reject_html, verify_md5

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


def fetch(source: str, dest: Path, *, md5: str | None, s3_endpoint_url: str | None = None) -> Path:
    """Return a local path holding ``source``'s verified bytes.

    Remote sources are downloaded to ``dest`` (resuming ``dest.part``), unless ``dest`` was
    verified before. ``md5`` None skips the checksum with a warning. Raises
    :class:`~dpsrgan.errors.DpsrganError` with a one-line reason on any failure.
    """
    label = dest.name
    if not _is_remote(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FetchError(f"{label}: {path} not found; check data.uri")
        reject_html(path, label)
        verify_md5(path, md5, label)
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
    _download(source, partial, label, s3_endpoint_url)
    try:
        reject_html(partial, label)
        verify_md5(partial, md5, label)
    except DpsrganError:
        partial.unlink()
        raise
    os.replace(partial, dest)
    if md5 is not None:
        mark_verified(dest, md5)
    return dest


def _is_remote(source: str) -> bool:
    return source.startswith(("gdrive:", "s3://", "http://", "https://"))


def _download(source: str, partial: Path, label: str, s3_endpoint_url: str | None) -> None:
    if source.startswith("gdrive:"):
        from dpsrgan.storage.gdrive import download_drive

        download_drive(source.removeprefix("gdrive:"), partial, label)
    elif source.startswith("s3://"):
        from dpsrgan.storage.s3 import download_s3

        download_s3(source, partial, label, endpoint_url=s3_endpoint_url)
    else:
        from dpsrgan.storage.http import download_http

        download_http(source, partial, label, shown_url=redact(source))


__all__ = ["ChecksumError", "FetchError", "fetch", "redact"]
