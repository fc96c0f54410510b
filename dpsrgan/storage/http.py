"""HTTP(S) download into a ``.part`` file that resumes with ``Range`` after a dropped connection.

A server that ignores ``Range`` (answers 200) restarts the file from zero; one that answers 416
to a complete partial file is taken at its word when its ``Content-Range`` total matches.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import requests

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.transfer import append_stream
from dpsrgan.storage.retry import TransientError, retrying

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
_CHUNK = 64 * 1024  # small reads: bytes already received when a connection drops are kept
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def download_http(
    url: str,
    partial: Path,
    label: str,
    *,
    session: requests.Session | None = None,
    params: dict[str, str] | None = None,
    shown_url: str | None = None,
) -> None:
    """Fetch ``url`` into ``partial``, resuming what is already there; retries transient errors.

    ``shown_url`` is what messages print instead of ``url`` (credentials and tokens redacted).
    Raises :class:`~dpsrgan.errors.DpsrganError` for a permanent failure or when retries run out.
    """
    session = session or requests.Session()
    shown = shown_url or url
    try:
        for attempt in retrying():
            with attempt:
                _attempt(session, url, params, partial, label, shown)
    except TransientError as error:
        raise DpsrganError(
            f"{label}: giving up on {shown}: {error}; the partial download {partial} resumes on the "
            f"next run"
        ) from None


def _attempt(
    session: requests.Session,
    url: str,
    params: dict[str, str] | None,
    partial: Path,
    label: str,
    shown: str,
) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        log.info("%s: resuming at byte %d", label, offset)
    try:
        with session.get(
            url, params=params, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        ) as response:
            start, total = _agreed_range(response, offset, partial, label, shown)
            if start is None:
                return
            size = append_stream(response.iter_content(_CHUNK), partial, start, total, label)
    except _TRANSIENT as error:
        raise TransientError(f"{type(error).__name__}: {error}") from error
    if total is not None and size != total:
        raise TransientError(f"connection closed at byte {size} of {total}")


def _agreed_range(
    response: requests.Response, offset: int, partial: Path, label: str, shown: str
) -> tuple[int | None, int | None]:
    """(offset to write from, expected final size) for this response; (None, _) means complete."""
    status = response.status_code
    if status == 416 and offset:
        total = _content_range_total(response)
        if total == offset:
            return None, total
        partial.unlink()
        raise TransientError(f"server refused to resume at byte {offset}; restarting")
    if status in _RETRY_STATUS:
        raise TransientError(f"HTTP {status}")
    if status >= 400:
        raise DpsrganError(f"{label}: HTTP {status} {response.reason} from {shown}; check data.uri")
    length = response.headers.get("Content-Length")
    if status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            partial.unlink()
            raise TransientError("server resumed at an unexpected offset; restarting")
        total = None if match.group(2) == "*" else int(match.group(2))
        return offset, total
    if offset:
        log.info("%s: server does not support resuming; restarting from zero", label)
    return 0, int(length) if length is not None else None


def _content_range_total(response: requests.Response) -> int | None:
    match = re.search(r"/(\d+)$", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None
