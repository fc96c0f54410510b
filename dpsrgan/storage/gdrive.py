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
from dpsrgan.storage.http import download_http
from dpsrgan.storage.transfer import HtmlPageError

log = logging.getLogger(__name__)

DRIVE_DOWNLOAD_URL = "https://drive.google.com/uc"
DRIVE_USERCONTENT_URL = "https://drive.usercontent.google.com/download"

_CONFIRM_LINK = re.compile(r"confirm=([0-9A-Za-z_-]+)")
_MAX_PAGES = 3
ALTERNATIVES = (
    "set data.uri to a mirror instead: s3://bucket/prefix (data.s3_endpoint_url for MinIO/Ceph), "
    "https://host/path/ (serving the official file names), or a local zip or directory"
)


class DriveQuotaError(DpsrganError):
    """Drive refused the download for now (quota / too many users)."""


def download_drive(file_id: str, partial: Path, label: str) -> None:
    """Fetch Drive file ``file_id`` into ``partial`` (resumable), answering confirmation pages.

    Each request that gets a page instead of the file yields the next URL and query from that
    page; the transfer itself (resume, retries, progress) is :func:`download_http`'s.
    """
    session = requests.Session()
    url, params = DRIVE_DOWNLOAD_URL, {"export": "download", "id": file_id}
    for _ in range(_MAX_PAGES):
        try:
            download_http(url, partial, label, session=session, params=params, shown_url=f"Google Drive file {file_id}")
            return
        except HtmlPageError as page:
            url, params = _answer(page, session, params, label)
    raise DpsrganError(f"{label}: Google Drive kept answering with confirmation pages; {ALTERNATIVES}")


def _answer(
    page: HtmlPageError, session: requests.Session, params: dict[str, str], label: str
) -> tuple[str, dict[str, str]]:
    """The request that a confirmation page asks for; a one-line error for any other page."""
    if "quota" in page.kind:
        raise DriveQuotaError(
            f"{label}: Google Drive refused the download: {page.kind}; this lasts hours and retrying "
            f"will not help; {ALTERNATIVES}"
        )
    text = page.page.decode("utf-8", errors="replace")
    form = _download_form(text)
    if form:
        log.info("%s: answering Drive's large-file confirmation form", label)
        return DRIVE_USERCONTENT_URL, form
    match = _CONFIRM_LINK.search(text)
    token = match.group(1) if match else _cookie_token(session)
    if token:
        log.info("%s: answering Drive's confirmation page", label)
        return DRIVE_DOWNLOAD_URL, {**params, "confirm": token}
    raise DpsrganError(f"{label}: Google Drive sent {page.kind} instead of the file; {ALTERNATIVES}")


def _cookie_token(session: requests.Session) -> str | None:
    for name, value in session.cookies.items():
        if name.startswith("download_warning"):
            return value
    return None


class _FormInputs(HTMLParser):
    """Collects the named inputs of ``<form id="download-form">``."""

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
