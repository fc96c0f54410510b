"""Append a byte stream to a ``.part`` file with a progress bar, checking the first bytes.

Shared by the HTTP and S3 transfers: both resume by appending to the partial file from the offset
the server agreed to, and both must notice an HTML page before it is written in place of data.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import describe_html


class HtmlPageError(DpsrganError):
    """The server answered with an HTML page where a data file was expected."""

    def __init__(self, label: str, kind: str, page: bytes) -> None:
        super().__init__(
            f"{label}: the server sent {kind} instead of the file; point data.uri at a mirror "
            f"(s3://..., https://...) or a local copy"
        )
        self.kind = kind
        self.page = page


def append_stream(
    chunks: Iterable[bytes], partial: Path, offset: int, total: int | None, label: str
) -> int:
    """Write ``chunks`` to ``partial`` from byte ``offset`` (0 truncates); return the new size.

    The first chunk of a fresh transfer is sniffed for HTML, so a quota or login page never lands
    in the file. Bytes are flushed as they arrive, so a dropped connection leaves a resumable file.
    """
    size = offset
    with open(partial, "ab" if offset else "wb") as handle, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=label, disable=None, leave=False,
    ) as bar:
        for chunk in chunks:
            if not chunk:
                continue
            if size == 0:
                kind = describe_html(chunk[:65536])
                if kind is not None:
                    raise HtmlPageError(label, kind, chunk)
            handle.write(chunk)
            size += len(chunk)
            bar.update(len(chunk))
    return size
