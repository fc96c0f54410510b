"""Atomic output writes: a temp file beside the target, fsync, then ``os.replace``. Every file
the package writes goes through :func:`atomic_file` (checkpoints with ``torch.save``, shards with
pyarrow, images with Pillow, JSON and text).

DVC hashes stage outputs after the command ends; a crash mid-write must leave either the old
file or nothing, never a truncated file under the real name that a later run could trust. The
temp file is hidden (``.<name>.<random>.tmp``), so folder scans skip a crash's leftovers.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write in place of ``path``: it appears under that name (fsynced, by one
    ``os.replace``) only when the block ends without error; otherwise the temp file is removed.
    The file gets the mode any new file gets (the umask's), as a plain ``open`` would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    file = temp.open("xb")  # exclusive: never another writer's temp file
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents created); returns the path."""
    with atomic_file(path) as file:
        file.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, value: Any) -> Path:
    """Indented JSON in insertion order with a final newline; NaN/inf are refused (not JSON)."""
    return write_text_atomic(path, json.dumps(value, indent=2, allow_nan=False) + "\n")
