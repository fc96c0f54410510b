"""Ray Data datasets over the degrade stage's Parquet shards, shaped for the training workers.

- ``train``: read the split's shards, decode the PNG columns to uint8 H×W×3 arrays inside
  ``map_batches`` (binary columns cannot go through ``iter_torch_batches``), drop everything
  else. Train rows all share one HR size, so batches stack. Ray Train splits it across workers
  (``get_dataset_shard``); each epoch re-reads it in a new block order. The reads run on the
  node that holds the files (:mod:`dpsrgan.data.placement`); decoding runs anywhere.
- ``valid``: the raw rows (``id`` and PNG bytes), *not* split: valid images may differ in size,
  so each worker reads the whole (small) split and decodes only the rows it owns
  (:func:`owns_row`), one image at a time. A stable, id-based owner keeps the assignment the
  same whatever order Ray Data delivers the rows in.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads

from dpsrgan.data.placement import SPREAD, read_local_parquet
from dpsrgan.data.shards import decode_png, shard_paths
from dpsrgan.errors import DpsrganError

DECODE_BATCH_ROWS = 32


def _decode_pairs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PNG bytes → stacked uint8 N×H×W×3 arrays (train rows share one size)."""
    return {
        "hr": np.stack([decode_png(data) for data in batch["hr"]]),
        "lr": np.stack([decode_png(data) for data in batch["lr"]]),
    }


def split_row_count(split_dir: str | Path) -> int:
    """Rows in a split, from the Parquet footers (no data read)."""
    return pads.dataset(str(split_dir), format="parquet").count_rows()


def split_ids(split_dir: str | Path) -> list[str]:
    """The split's image ids in sorted order (only the ``id`` column is read)."""
    table = pads.dataset(str(split_dir), format="parquet").to_table(columns=["id"])
    return sorted(table.column("id").to_pylist())


def _require_split(split_dir: Path) -> None:
    if not any(split_dir.glob("part-*.parquet")):
        raise DpsrganError(
            f"{split_dir}: no part-*.parquet shards; run the degrade stage first (dvc repro degrade)"
        )


def train_dataset(split_dir: str | Path, *, node_id: str | None, num_cpus: float):
    """The train split as a Ray Dataset of ``{"hr", "lr"}`` uint8 N×H×W×3 arrays.

    ``node_id``: the Ray node whose disk holds ``split_dir`` (None: every node sees it);
    ``num_cpus``: what each read and decode task asks for.
    """
    split_dir = Path(split_dir).resolve()
    _require_split(split_dir)
    dataset = read_local_parquet(shard_paths(split_dir), ["hr", "lr"], node_id=node_id, num_cpus=num_cpus)
    return dataset.randomize_block_order().map_batches(
        _decode_pairs, batch_format="numpy", batch_size=DECODE_BATCH_ROWS, num_cpus=num_cpus, **SPREAD
    )


def valid_dataset(
    split_dir: str | Path, ids: list[str] | None = None, *, node_id: str | None, num_cpus: float
):
    """The valid split's raw rows (``id``, ``hr``, ``lr`` PNG bytes), optionally only ``ids``;
    ``node_id`` and ``num_cpus`` as for :func:`train_dataset`."""
    split_dir = Path(split_dir).resolve()
    _require_split(split_dir)
    dataset = read_local_parquet(
        shard_paths(split_dir), ["id", "hr", "lr"], node_id=node_id, num_cpus=num_cpus
    )
    if ids is not None:
        from ray.data.expressions import col

        dataset = dataset.filter(expr=col("id").is_in(list(ids)), num_cpus=num_cpus)
    return dataset


def owns_row(image_id: str, rank: int, world_size: int) -> bool:
    """Whether ``rank`` validates the row ``image_id`` (a stable hash: each row exactly once)."""
    return zlib.crc32(image_id.encode()) % world_size == rank


def decode_row(row: dict) -> tuple[str, np.ndarray, np.ndarray]:
    """(id, HR uint8 H×W×3, LR uint8 h×w×3) of a raw valid row."""
    return str(row["id"]), decode_png(row["hr"]), decode_png(row["lr"])
