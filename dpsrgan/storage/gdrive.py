"""Google Drive downloads: get past the large-file confirmation page, name the quota page.

Drive answers ``uc?export=download&id=…`` for a large file with an HTML page ("can't scan this
file for viruses") instead of the file. Today that page holds a form (``id="download-form"``)
whose hidden inputs (``id``, ``export``, ``confirm``, ``uuid``) are submitted to
``drive.usercontent.google.com/download``; older versions put a ``confirm=`` token in a link or
a ``download_warning`` cookie. Popular files (CelebA among them) also often get the "too many
users have viewed or downloaded this file recently" quota page, which no retry fixes: the error
names the alternatives. The URLs are module attributes so tests can point them at a local server.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import requests

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import describe_html
from dpsrgan.storage.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, download_http
from dpsrgan.storage.progress import HtmlPageError
from dpsrgan.storage.retry import TransientError, retrying

log = logging.getLogger(__name__)

DRIVE_DOWNLOAD_URL = "https://drive.google.com/uc"
DRIVE_USERCONTENT_URL = "https://drive.usercontent.google.com/download"

_PAGE_LIMIT = 2 * 1024 * 1024
_CONFIRM_LINK = re.compile(r"confirm=([0-9A-Za-z_-]+)")
ALTERNATIVES = (
    "set data.uri to a mirror instead: s3://bucket/prefix (data.s3_endpoint_url for MinIO/Ceph), "
    "https://host/path/ (serving the official file names), or a local zip or directory"
)


class DriveQuotaError(DpsrganError):
    """Drive refused the download for now (quota / too many users)."""


def download_drive(file_id: str, partial: Path, label: str) -> None:
    """Fetch Drive file ``file_id`` into ``partial`` (resumable), through any confirmation page."""
    session = requests.Session()
    url, params = _resolve(session, file_id, label)
    try:
        download_http(url, partial, label, session=session, params=params, shown_url=f"Google Drive file {file_id}")
    except HtmlPageError as error:
        raise _page_error(error.kind, label) from None


def _resolve(session: requests.Session, file_id: str, label: str) -> tuple[str, dict[str, str]]:
    """The URL and query that serve the file itself, after answering a confirmation page."""
    url, params = DRIVE_DOWNLOAD_URL, {"export": "download", "id": file_id}
    for _ in range(2):
        page = _fetch_page(session, url, params)
        if page is None:
            return url, params
        kind = describe_html(page.encode(errors="replace")[:65536]) or "an unexpected page"
        if "quota" in kind:
            raise _page_error(kind, label)
        form = _download_form(page)
        if form:
            log.info("%s: answering Drive's large-file confirmation form", label)
            url, params = DRIVE_USERCONTENT_URL, form
            continue
        match = _CONFIRM_LINK.search(page)
        token = match.group(1) if match else _cookie_token(session)
        if token:
            log.info("%s: answering Drive's confirmation page", label)
            url, params = DRIVE_DOWNLOAD_URL, {**params, "confirm": token}
            continue
        raise _page_error(kind, label)
    raise DpsrganError(f"{label}: Google Drive kept asking for confirmation; {ALTERNATIVES}")


def _fetch_page(session: requests.Session, url: str, params: dict[str, str]) -> str | None:
    """The HTML page at ``url`` if it is one; None if it serves the file (left unread)."""
    def get() -> str | None:
        try:
            with session.get(url, params=params, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise TransientError(f"HTTP {response.status_code} from Google Drive")
                if not response.headers.get("Content-Type", "").startswith("text/html"):
                    if response.status_code >= 400:
                        raise DpsrganError(f"HTTP {response.status_code} from Google Drive; {ALTERNATIVES}")
                    return None
                body = response.raw.read(_PAGE_LIMIT, decode_content=True)
                return body.decode(response.encoding or "utf-8", errors="replace")
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error

    try:
        for attempt in retrying():
            with attempt:
                return get()
    except TransientError as error:
        raise DpsrganError(f"Google Drive unreachable: {error}; {ALTERNATIVES}") from None
    raise AssertionError("unreachable: retrying() either returns or raises")


def _cookie_token(session: requests.Session) -> str | None:
    for name, value in session.cookies.items():
        if name.startswith("download_warning"):
            return value
    return None


class _FormInputs(HTMLParser):
    """Collects the hidden inputs of ``<form id="download-form">``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.inside = values.get("id") == "download-form"
        elif tag == "input" and self.inside and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def _download_form(page: str) -> dict[str, str]:
    parser = _FormInputs()
    parser.feed(page)
    return parser.fields


def _page_error(kind: str, label: str) -> DpsrganError:
    if "quota" in kind:
        return DriveQuotaError(
            f"{label}: Google Drive refused the download: {kind}; this lasts hours, retrying will not "
            f"help; {ALTERNATIVES}"
        )
    return DpsrganError(f"{label}: Google Drive sent {kind} instead of the file; {ALTERNATIVES}")
