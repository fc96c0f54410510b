"""Ordered parallel map for the degrade stage: local processes, or Ray Data on a cluster.

Both paths take the same chunks of work and the same picklable function and yield results in
input order, so the written shards are byte-identical whichever ran them. The local path is a
``ProcessPoolExecutor`` with a bounded number of chunks in flight (memory stays flat on
CelebA's 200k images); Ray is imported only when a cluster address is given.

Parallelism comes from processes, so each one runs its BLAS single-threaded: the per-image
matrices are tiny, and OpenBLAS's default thread per core made a 178→128 resize ~6x more
expensive in CPU time (and far slower in wall time on a busy machine).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_map(
    fn: Callable[[Sequence[T]], list[R]],
    chunks: Sequence[Sequence[T]],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
) -> Iterator[list[R]]:
    """``fn(chunk)`` for every chunk, in order, on ``workers`` processes (1: in this process).

    ``initializer(*initargs)`` runs once per worker process first. At most ``4 * workers``
    chunks are in flight. Closing the iterator early cancels what has not started.
    """
    if workers <= 1:
        with threadpool_limits(limits=1):
            initializer(*initargs)
            for chunk in chunks:
                yield fn(chunk)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent (tqdm, boto3)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(initializer, initargs)
    ) as pool:
        pending: deque[Future[list[R]]] = deque()
        queue = iter(chunks)
        try:
            for chunk in queue:
                pending.append(pool.submit(fn, chunk))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    threadpool_limits(limits=1)
    initializer(*initargs)


def ray_map_batches(
    fn: Callable[..., dict[str, Any]],
    items: Sequence[dict[str, Any]],
    address: str,
    batch_size: int,
    fn_kwargs: dict[str, Any],
    *,
    read_here: Callable[[dict[str, Any]], dict[str, Any]],
    cpus_per_read: float,
) -> Iterator[dict[str, Any]]:
    """Ray Data ``map_batches(fn)`` over ``items`` on the cluster at ``address``; rows in order.

    ``read_here(batch)`` runs first, on this node, and adds what must come from its disk (the
    input files exist here, not on the other nodes); ``fn(batch, **fn_kwargs)`` then runs on any
    node. Both take and return numpy column batches. Connects (and later disconnects) only if
    Ray is not initialised already.
    """
    import ray

    from dpsrgan.cluster.runtime import ray_session
    from dpsrgan.data.placement import SPREAD, read_options, this_node

    with ray_session(address):
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        log.info("running on the Ray cluster at %s", address)
        dataset = (
            ray.data.from_items(list(items))
            .map_batches(
                read_here,
                batch_size=batch_size,
                batch_format="numpy",
                **read_options(this_node(), cpus_per_read),
            )
            .map_batches(
                fn, fn_kwargs=fn_kwargs, batch_size=batch_size, batch_format="numpy", num_cpus=1, **SPREAD
            )
        )
        yield from dataset.iter_rows()
