"""Where Ray Data reads a stage's local files: on the node that has them.

A stage's inputs are DVC outs that ``dvc repro`` checked out on the disk of the node running the
stage's driver: the head node, for a job submitted to a cluster. Ray Data schedules read tasks on
any node, and on a cluster of separate hosts the path exists on one of them only (a one-host test
cluster would hide that). So every read of a local path is pinned to the driver's node with
Ray's node-id label, and the blocks travel on to the workers through the object store. Ray's own
``local://`` scheme did the same and is deprecated in Ray 2.60.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

NODE_ID_LABEL = "ray.io/node-id"
"""The label every Ray node carries with its own node id."""


def this_node() -> str:
    """The id of the Ray node this process runs on (Ray must be initialised)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def read_options(node_id: str | None, num_cpus: float) -> dict[str, Any]:
    """Keyword arguments for a Ray Data read of files on ``node_id`` (anywhere when None).

    ``num_cpus`` is explicit because Ray's default (1 CPU a task) never fits beside training
    workers that leave a fraction of a CPU free on a node, and the read would wait forever.
    """
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if node_id is not None:
        options["label_selector"] = {NODE_ID_LABEL: node_id}
    return options


SPREAD: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
"""Remote args for the work that follows a pinned read. Without a scheduling strategy of its own,
Ray Data fuses a map into the read before it when their CPUs match, and the fused task inherits
the read's node label: the heavy work would all run on the one node that holds the files."""


def read_local_parquet(
    paths: Sequence[Path], columns: Sequence[str], *, node_id: str | None, num_cpus: float
):
    """A Ray Dataset of ``columns`` from local Parquet files: one task per file, on ``node_id``.

    Not ``ray.data.read_parquet``: in Ray 2.60 it lists files in a task of its own that asks for
    a whole CPU and takes no placement, so on a cluster it may look for the directory on a node
    that lacks it, and beside training workers holding most of a node it never starts at all.
    """
    import ray.data

    # Absolute paths: the read runs in a Ray worker, whose working directory is not the caller's.
    items = [{"path": str(Path(path).resolve())} for path in paths]
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _read_parquet_files,
        fn_kwargs={"columns": list(columns)},
        batch_size=1,
        batch_format="pyarrow",
        **read_options(node_id, num_cpus),
    )


def _read_parquet_files(batch: pa.Table, columns: list[str]) -> pa.Table:
    paths = batch.column("path").to_pylist()
    return pa.concat_tables([pq.read_table(path, columns=columns) for path in paths])
