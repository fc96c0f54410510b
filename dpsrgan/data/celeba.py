"""CelebA (aligned and cropped faces): where the official files live, fetching, the partition.

Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015. The two files the pipeline
uses are the official ``img_align_celeba.zip`` (202,599 JPEGs of 178x218, ``000001.jpg`` …) and
``list_eval_partition.txt`` (``<file> <0|1|2>`` = train 162,770 / valid 19,867 / test 19,962).
``data.uri`` chooses the source: ``gdrive`` (the authors' Drive files), ``s3://bucket/prefix``
or ``https://host/path`` (a mirror holding the official file names), a local directory holding
them, or a local ``img_align_celeba.zip`` with ``list_eval_partition.txt`` beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dpsrgan.atomic_io import write_bytes_atomic
from dpsrgan.config import DataParams
from dpsrgan.data.shards import SPLITS, Split
from dpsrgan.errors import DpsrganError
from dpsrgan.storage import ExtractLimits, extract_zip, fetch
from dpsrgan.storage.extract import is_extracted

log = logging.getLogger(__name__)

ARCHIVE = "img_align_celeba.zip"
PARTITION = "list_eval_partition.txt"
IMAGES_DIR = "img_align_celeba"
DRIVE_IDS = {
    ARCHIVE: "1zmsC4yvw-e089uHXj5EdP0BSZ0AlDQRR",
    PARTITION: "1ih_VMokoI774ErNWrb26lDeWlanUBpnX",
}
LICENCE_NOTICE = (
    "CelebA is available for non-commercial research purposes only (CelebA agreement: "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html). Do not redistribute the images or "
    "derived data, or use them commercially, without the authors' permission."
)
EXTRACTED = "celeba"
"""Subdirectory of the raw-data directory holding the extracted archive."""


def sources(uri: str) -> dict[str, str]:
    """Where each official file comes from, as a :func:`~dpsrgan.storage.fetch` source."""
    if uri == "gdrive":
        return {name: f"gdrive:{file_id}" for name, file_id in DRIVE_IDS.items()}
    if uri.startswith(("s3://", "http://", "https://")):
        return {name: f"{uri.rstrip('/')}/{name}" for name in (ARCHIVE, PARTITION)}
    path = Path(uri).expanduser()
    if path.is_dir():
        return {name: str(path / name) for name in (ARCHIVE, PARTITION)}
    if path.suffix == ".zip":
        return {ARCHIVE: str(path), PARTITION: str(path.with_name(PARTITION))}
    raise DpsrganError(
        f"data.uri={uri}: not gdrive, s3://bucket/prefix, https://host/path, a local directory with "
        f"{ARCHIVE} and {PARTITION}, or a local {ARCHIVE}"
    )


def fetch_celeba(data: DataParams, raw_dir: Path, cache_dir: Path) -> None:
    """Fetch, verify and extract CelebA into ``raw_dir`` (``celeba/`` + the partition file).

    Remote files are kept under ``cache_dir`` so a rerun does not download them again.
    """
    log.warning("%s", LICENCE_NOTICE)
    limits = ExtractLimits(data.max_extract_bytes, data.max_extract_files)
    paths = {
        name: fetch(source, cache_dir / name, md5=data.md5.get(name), s3_endpoint_url=data.s3_endpoint_url)
        for name, source in sources(data.uri).items()
    }
    read_partition(paths[PARTITION])
    raw_dir.mkdir(parents=True, exist_ok=True)
    extract_zip(paths[ARCHIVE], raw_dir / EXTRACTED, limits)
    write_bytes_atomic(raw_dir / PARTITION, paths[PARTITION].read_bytes())


def read_partition(path: Path) -> dict[str, Split]:
    """``list_eval_partition.txt`` → {file name: split}; a malformed line is a one-line error."""
    splits: dict[str, Split] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2") or "/" in fields[0]:
                raise DpsrganError(
                    f"{path}:{number}: expected '<image>.jpg <0|1|2>', got {line.strip()!r}; is it the "
                    f"official {PARTITION}?"
                )
            splits[fields[0]] = SPLITS[int(fields[1])]
    if not splits:
        raise DpsrganError(f"{path}: empty partition file")
    return splits


def images_dir(raw_dir: Path) -> Path:
    """The directory of JPEGs inside an extracted archive (``img_align_celeba/`` or the root)."""
    root = raw_dir / EXTRACTED
    if not is_extracted(root):
        raise DpsrganError(f"{root}: missing or incompletely extracted; run the download stage (dvc repro download)")
    nested = root / IMAGES_DIR
    return nested if nested.is_dir() else root
