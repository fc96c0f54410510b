"""The degrade stage's work: raw images → sharded HR/LR Parquet per split + a manifest.

Inputs are listed in a fixed order (sorted ids per split), cut into chunks and processed in
parallel (local processes, or Ray Data when a cluster address is given); results come back in
input order and stream into fixed-size shards, so the same inputs give the same bytes however
many workers ran them. Unusable images are skipped and listed; the run fails once they pass
``data.max_rejected_fraction``. The output directory is built beside the target and renamed
into place, so it is never half-written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from dpsrgan.config import DataParams, DegradeParams
from dpsrgan.data import celeba, folder
from dpsrgan.data.images import RejectedImage, configure_pillow
from dpsrgan.data.pairs import PairSettings, Task, make_rows
from dpsrgan.data.parallel import process_map, ray_map_batches
from dpsrgan.data.raw import FOLDER_IMAGES, source_kind
from dpsrgan.data.shards import MANIFEST, SPLITS, Row, ShardWriter, Split
from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import sha256_file

log = logging.getLogger(__name__)

CHUNK_IMAGES = 64
"""Most images per unit of parallel work: enough to amortise IPC, few enough for a smooth bar."""
_LOGGED_REJECTS = 20
DATA_KEYS = (
    "source", "hr_size", "patch_stride", "eval_max_side", "valid_fraction", "test_fraction", "max_images",
    "max_rejected_fraction", "shard_rows", "max_image_pixels",
)
"""The ``data.*`` params this stage reads (dvc.yaml lists them; the manifest records them)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one input image became: its rows, or the reason it was rejected."""

    task: Task
    rows: tuple[Row, ...] = ()
    reason: str = ""


def list_tasks(data: DataParams, raw_dir: Path) -> list[Task]:
    """Every input image with its split and geometry, sorted by (split, id), capped per split."""
    kind = source_kind(raw_dir)
    if kind != data.source:
        raise DpsrganError(
            f"{raw_dir} holds a '{kind}' source but data.source={data.source}; rerun the download stage"
        )
    if data.source == "celeba":
        root = celeba.images_dir(raw_dir)
        partition = celeba.read_partition(raw_dir / celeba.PARTITION)
        tasks = [Task(name, str(root / name), split, "face") for name, split in partition.items()]
    else:
        root = raw_dir / FOLDER_IMAGES
        rel_paths = folder.list_images(root)
        splits = folder.assign_splits(rel_paths, data.valid_fraction, data.test_fraction)
        tasks = [
            Task(rel, str(root / rel), splits[rel], "patches" if splits[rel] == "train" else "whole")
            for rel in rel_paths
        ]
    tasks.sort(key=lambda task: (SPLITS.index(task.split), task.id))
    capped: list[Task] = []
    for split in SPLITS:
        in_split = [task for task in tasks if task.split == split]
        capped.extend(in_split[: data.max_images.get(split, len(in_split))])
    return capped


def process_chunk(
    tasks: Sequence[Task], settings: PairSettings, contents: Sequence[bytes | None] | None = None
) -> list[Outcome]:
    """Worker body: each task's rows, or the reason it was rejected (missing files included).

    ``contents``: the tasks' file bytes, read on the node that has the files (Ray path; None
    for a missing file); without it each task's file is opened here.
    """
    outcomes = []
    for index, task in enumerate(tasks):
        try:
            if contents is not None and contents[index] is None:
                raise FileNotFoundError(task.path)
            content = None if contents is None else contents[index]
            outcomes.append(Outcome(task, tuple(make_rows(task, settings, content))))
        except FileNotFoundError:
            outcomes.append(Outcome(task, reason="listed but missing from the source"))
        except RejectedImage as rejected:
            outcomes.append(Outcome(task, reason=str(rejected)))
    return outcomes


def prepare(
    data: DataParams,
    degrade: DegradeParams,
    raw_dir: Path,
    out_dir: Path,
    *,
    workers: int,
    ray_address: str | None = None,
    cpus_per_read: float = 0.5,
) -> dict[str, Any]:
    """Build ``out_dir`` (shards per split + ``manifest.json``) from ``raw_dir``; return the manifest."""
    if data.hr_size % degrade.scale:
        raise DpsrganError(f"data.hr_size={data.hr_size} must be divisible by degrade.scale={degrade.scale} (e.g. 128)")
    settings = PairSettings(
        data.hr_size, data.patch_stride, data.eval_max_side, data.max_image_pixels, degrade
    )
    # Absolute paths: Ray tasks (and pool workers) may run with another working directory.
    raw_dir = Path(raw_dir).resolve()
    tasks = list_tasks(data, raw_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        collector = _Collector(tmp, raw_dir, data, total=len(tasks))
        for outcome in tqdm(_run(tasks, settings, workers, ray_address, cpus_per_read), total=len(tasks), desc="degrade", unit="img", disable=None):
            collector.add(outcome)
        manifest = {
            "format": "dpsrgan-processed/1",
            "schema": {"id": "string", "hr": "png", "lr": "png", "height": "int32", "width": "int32"},
            "scale": degrade.scale,
            "inputs": len(tasks),
            "splits": collector.finish(degrade.scale),
            "rejected": collector.rejected,
            "rejected_fraction": round(len(collector.rejected) / len(tasks), 6),
            "params": {"data": data.model_dump(mode="json", include=set(DATA_KEYS)), "degrade": degrade.model_dump(mode="json")},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    counts = {split: manifest["splits"][split]["rows"] for split in SPLITS}
    log.info("wrote %s: rows %s, %d rejected of %d inputs", out_dir, counts, len(collector.rejected), len(tasks))
    return manifest


def _run(
    tasks: list[Task], settings: PairSettings, workers: int, ray_address: str | None, cpus_per_read: float
) -> Iterator[Outcome]:
    """Outcomes in task order, from Ray Data when an address is given, else local processes.

    On Ray the files are read where they are (this node: ``data/raw`` is a DVC out here, not on
    the other nodes) and degraded on any node.
    """
    if ray_address:
        rows = ray_map_batches(
            _ray_batch,
            [_task_columns(task) for task in tasks],
            ray_address,
            CHUNK_IMAGES,
            {"settings": settings},
            read_here=_read_files,
            cpus_per_read=cpus_per_read,
        )
        yield from _outcomes_from_rows(rows)
        return
    size = max(1, min(CHUNK_IMAGES, math.ceil(len(tasks) / (4 * workers))))  # a few photos still spread out
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    log.info("degrading %d images on %d process(es)", len(tasks), workers)
    for outcomes in process_map(
        _chunk_worker, [(chunk, settings) for chunk in chunks], workers, configure_pillow, (settings.max_image_pixels,)
    ):
        yield from outcomes


def _chunk_worker(job: tuple[Sequence[Task], PairSettings]) -> list[Outcome]:
    return process_chunk(*job)


class _Collector:
    """Streams outcomes into per-split shard writers, keeping counts, shapes and the reject list.

    Fails as soon as the rejects pass ``data.max_rejected_fraction`` of all inputs (the total is
    known up front, so there is no point in finishing a doomed run).
    """

    def __init__(self, root: Path, raw_dir: Path, data: DataParams, total: int) -> None:
        self.root, self.raw_dir, self.total = root, raw_dir, total
        self.fraction = data.max_rejected_fraction
        self.allowed = math.floor(self.fraction * total)
        self.writers = {split: ShardWriter(root / split, data.shard_rows) for split in SPLITS}
        self.images = dict.fromkeys(SPLITS, 0)
        self.shapes: dict[Split, set[tuple[int, int]]] = {split: set() for split in SPLITS}
        self.rejected: list[dict[str, str]] = []

    def add(self, outcome: Outcome) -> None:
        split = outcome.task.split
        if outcome.reason:
            self._reject(outcome)
            return
        self.images[split] += 1
        for row in outcome.rows:
            self.writers[split].add(row)
            self.shapes[split].add((row.height, row.width))

    def _reject(self, outcome: Outcome) -> None:
        file = Path(outcome.task.path).relative_to(self.raw_dir).as_posix()
        self.rejected.append({"file": file, "split": outcome.task.split, "reason": outcome.reason})
        if len(self.rejected) <= _LOGGED_REJECTS:
            log.warning("skipping %s: %s", file, outcome.reason)
        if len(self.rejected) > self.allowed:
            raise DpsrganError(
                f"more than data.max_rejected_fraction={self.fraction} of the {self.total} inputs are unusable "
                f"({len(self.rejected)} so far, e.g. {file}: {outcome.reason}); fix the source or raise the fraction"
            )

    def finish(self, scale: int) -> dict[str, Any]:
        """Close the shards; per split: images, rows, HR/LR shapes and each shard's sha256."""
        summary = {}
        for split, writer in self.writers.items():
            paths = writer.close()
            if writer.rows == 0:
                raise DpsrganError(f"no usable images in the {split} split; add images or check data.max_images")
            shapes = sorted(self.shapes[split])
            uniform = len(shapes) == 1
            summary[split] = {
                "images": self.images[split],
                "rows": writer.rows,
                "hr_shape": [*shapes[0], 3] if uniform else None,
                "lr_shape": [shapes[0][0] // scale, shapes[0][1] // scale, 3] if uniform else None,
                "hr_min": [min(h for h, _ in shapes), min(w for _, w in shapes)],
                "hr_max": [max(h for h, _ in shapes), max(w for _, w in shapes)],
                "shards": [{"file": p.relative_to(self.root).as_posix(), "sha256": sha256_file(p)} for p in paths],
            }
        return summary


# --- Ray Data adapters: tasks and outcomes as flat numpy columns -------------------------------

_ROW_FIELDS = ("id", "hr", "lr", "height", "width")


def _task_columns(task: Task) -> dict[str, str]:
    return {"task_id": task.id, "path": task.path, "split": task.split, "geometry": task.geometry}


def _read_files(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add each task's file bytes (``content``; ``found`` False for a missing file)."""
    contents, found = [], []
    for path in batch["path"]:
        try:
            contents.append(Path(str(path)).read_bytes())
            found.append(True)
        except FileNotFoundError:
            contents.append(b"")
            found.append(False)
    return {**batch, "content": np.array(contents, dtype=object), "found": np.array(found, dtype=bool)}


def _ray_batch(batch: dict[str, np.ndarray], settings: PairSettings) -> dict[str, np.ndarray]:
    """One output row per HR/LR pair, or one per rejected image (``reason`` set, empty pair)."""
    configure_pillow(settings.max_image_pixels)
    tasks = [
        Task(str(i), str(p), str(s), str(g))  # type: ignore[arg-type]
        for i, p, s, g in zip(batch["task_id"], batch["path"], batch["split"], batch["geometry"], strict=True)
    ]
    contents = [bytes(c) if f else None for c, f in zip(batch["content"], batch["found"], strict=True)]
    columns: dict[str, list[Any]] = {key: [] for key in (*_task_columns(tasks[0]), *_ROW_FIELDS, "reason")}
    with threadpool_limits(limits=1):  # one process per CPU already: see dpsrgan.data.parallel
        outcomes = process_chunk(tasks, settings, contents)
    for outcome in outcomes:
        rows = outcome.rows or (Row("", b"", b"", 0, 0),)
        for row in rows:
            for key, value in _task_columns(outcome.task).items():
                columns[key].append(value)
            for key in _ROW_FIELDS:
                columns[key].append(getattr(row, key))
            columns["reason"].append(outcome.reason)
    return {key: np.array(values, dtype=np.int32 if key in ("height", "width") else object) for key, values in columns.items()}


def _outcomes_from_rows(rows: Iterator[dict[str, Any]]) -> Iterator[Outcome]:
    """Regroup consecutive rows of the same input image into one :class:`Outcome`."""
    current: Task | None = None
    pairs: list[Row] = []
    reason = ""
    for row in rows:
        task = Task(row["task_id"], row["path"], row["split"], row["geometry"])
        if task != current:
            if current is not None:
                yield Outcome(current, tuple(pairs), reason)
            current, pairs = task, []
        reason = row["reason"]
        if not reason:
            pairs.append(Row(row["id"], bytes(row["hr"]), bytes(row["lr"]), int(row["height"]), int(row["width"])))
    if current is not None:
        yield Outcome(current, tuple(pairs), reason)
