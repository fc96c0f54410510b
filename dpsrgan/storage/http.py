"""HTTP(S) download into a ``.part`` file that resumes with ``Range`` after a dropped connection.

A server that ignores ``Range`` (answers 200) restarts the file from zero; one that answers 416
to a complete partial file is taken at its word when its ``Content-Range`` total matches.
Timeouts, dropped connections, 5xx and 429 are retried; a host that cannot be reached at all
(connection refused, unknown name) fails at once, as curl's and wget's retries treat it: waiting
minutes for a typo in a URL helps nobody, and a partial file still resumes on the next run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import requests
from urllib3.exceptions import NewConnectionError

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
    setting: str = "data.uri",
) -> None:
    """Fetch ``url`` into ``partial``, resuming what is already there; retries transient errors.

    ``shown_url`` is what messages print instead of ``url`` (credentials and tokens redacted);
    ``setting`` is the param that names the source, which a permanent failure tells the user to check.
    Raises :class:`~dpsrgan.errors.DpsrganError` for a permanent failure or when retries run out.
    """
    session = session or requests.Session()
    where = _Where(label, shown_url or url, setting)
    try:
        for attempt in retrying():
            with attempt:
                _attempt(session, url, params, partial, where)
    except TransientError as error:
        raise DpsrganError(
            f"{where.label}: giving up on {where.shown}: {error}; the partial download {partial} resumes "
            f"on the next run"
        ) from None


@dataclass(frozen=True)
class _Where:
    """What messages name: the file (``label``), the URL as shown, the param to check."""

    label: str
    shown: str
    setting: str


def _attempt(
    session: requests.Session, url: str, params: dict[str, str] | None, partial: Path, where: _Where
) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        log.info("%s: resuming at byte %d", where.label, offset)
    try:
        with session.get(
            url, params=params, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        ) as response:
            start, total = _agreed_range(response, offset, partial, where)
            if start is None:
                return
            size = append_stream(response.iter_content(_CHUNK), partial, start, total, where.label, where.setting)
    except _TRANSIENT as error:
        if _unreachable(error):
            raise DpsrganError(
                f"{where.label}: cannot connect to {where.shown} ({_first_cause(error)}); check {where.setting}"
            ) from None
        raise TransientError(f"{type(error).__name__}: {error}") from error
    if total is not None and size != total:
        raise TransientError(f"connection closed at byte {size} of {total}")


def _unreachable(error: Exception) -> bool:
    """A connection that was never made: refused, or a host name that does not resolve (urllib3's
    NewConnectionError; a connect *timeout* is not one and is retried)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _first_cause(error: Exception) -> str:
    """The socket's words ("Connection refused", "Name or service not known") under urllib3's."""
    cause: BaseException | None = getattr(error.args[0], "reason", None)
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


def _agreed_range(
    response: requests.Response, offset: int, partial: Path, where: _Where
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
        raise DpsrganError(f"{where.label}: HTTP {status} {response.reason} from {where.shown}; check {where.setting}")
    length = response.headers.get("Content-Length")
    if status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            partial.unlink()
            raise TransientError("server resumed at an unexpected offset; restarting")
        total = None if match.group(2) == "*" else int(match.group(2))
        return offset, total
    if offset:
        log.info("%s: server does not support resuming; restarting from zero", where.label)
    return 0, int(length) if length is not None else None


def _content_range_total(response: requests.Response) -> int | None:
    match = re.search(r"/(\d+)$", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None
