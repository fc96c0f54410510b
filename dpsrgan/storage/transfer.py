"""Append a byte stream to a ``.part`` file with a progress bar, checking the first bytes.

Shared by the HTTP and S3 transfers: both resume by appending to the partial file from the offset
the server agreed to, and both must notice an HTML page before it is written in place of data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import describe_html


class HtmlPageError(DpsrganError):
    """The server answered with an HTML page where a data file was expected."""

    def __init__(self, label: str, kind: str, page: bytes, setting: str = "data.uri") -> None:
        super().__init__(
            f"{label}: the server sent {kind} instead of the file; point {setting} at a mirror "
            f"(s3://..., https://...) or a local copy"
        )
        self.kind = kind
        self.page = page


def append_stream(
    chunks: Iterable[bytes], partial: Path, offset: int, total: int | None, label: str, setting: str = "data.uri"
) -> int:
    """Write ``chunks`` to ``partial`` from byte ``offset`` (0 truncates); return the new size.

    The first chunk of a fresh transfer is sniffed for HTML before the file is opened, so a
    quota or login page neither lands in the file nor truncates a resumable one. Bytes are
    flushed as they arrive, so a dropped connection leaves a resumable file.
    """
    stream = (chunk for chunk in chunks if chunk)
    first = next(stream, b"")
    if offset == 0 and first:
        kind = describe_html(first[:65536])
        if kind is not None:
            raise HtmlPageError(label, kind, first, setting)
    size = offset
    with open(partial, "ab" if offset else "wb") as handle, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=label, disable=None, leave=False,
    ) as bar:
        for chunk in itertools.chain([first] if first else [], stream):
            handle.write(chunk)
            size += len(chunk)
            bar.update(len(chunk))
    return size
