"""The raw-data directory: what the download stage writes and the degrade stage reads.

Layout::

    source.json                 {"source": "celeba" | "folder"}
    celeba/                     data.source=celeba: the extracted official archive
    list_eval_partition.txt     data.source=celeba: the official partition
    images/                     data.source=folder: the photo tree (copied or extracted)

Each part is written atomically; ``source.json`` comes last, so its presence means the directory
is complete, and its kind lets the degrade stage refuse a directory made for another source. It
does not record ``data.uri``: the same bytes from another mirror must not re-run the degrade stage.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from dpsrgan.atomic_io import write_text_atomic
from dpsrgan.config import DataParams
from dpsrgan.data import celeba, folder
from dpsrgan.errors import DpsrganError
from dpsrgan.storage import ExtractLimits, redact

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json"
FOLDER_IMAGES = "images"


def download(data: DataParams, raw_dir: Path, cache_dir: Path) -> None:
    """Fetch the source that ``data`` names into ``raw_dir`` (remote files cached in ``cache_dir``)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / SOURCE_FILE).unlink(missing_ok=True)
    if data.source == "celeba":
        celeba.fetch_celeba(data, raw_dir, cache_dir)
        stale = [raw_dir / FOLDER_IMAGES]
    else:
        limits = ExtractLimits(data.max_extract_bytes, data.max_extract_files)
        folder.materialise_folder(
            data.uri, raw_dir / FOLDER_IMAGES, cache_dir, md5=data.md5, s3_endpoint_url=data.s3_endpoint_url,
            limits=limits,
        )
        stale = [raw_dir / celeba.EXTRACTED, raw_dir / celeba.PARTITION]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    write_text_atomic(raw_dir / SOURCE_FILE, json.dumps({"source": data.source}) + "\n")
    log.info("raw data from %s (data.source=%s) ready in %s", redact(data.uri), data.source, raw_dir)


def source_kind(raw_dir: Path) -> str:
    """The source kind recorded by :func:`download`; a one-line error if the directory is incomplete."""
    try:
        return json.loads((raw_dir / SOURCE_FILE).read_text())["source"]
    except (OSError, ValueError, KeyError):
        raise DpsrganError(f"{raw_dir / SOURCE_FILE} missing or unreadable; run the download stage first") from None
