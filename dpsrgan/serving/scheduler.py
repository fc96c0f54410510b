"""Who computes next, and stopping work nobody will read: one model replica's CPU or GPU time.

A replica holds several admitted requests at once (Serve's ``max_ongoing_requests``), each in its
own worker thread, but only one of them computes at a time: two forward passes sharing two
cores only slow each other down and double the memory. The :class:`Scheduler` is that baton.

* **Shortest remaining work first.** A waiting job gets the baton before a running one whose
  remaining work is larger, at the next *checkpoint*: every tile of a tiled image, and — for a
  job that fits one tile — every residual block inside the forward pass. So a 64² request sent
  while a 1024² one is half done waits for a block, not for the whole image.
* **Cancellation that stops the work.** A job whose deadline passes, or whose client went away
  (:meth:`Scheduler.cancel`), raises :class:`Cancelled` at its next checkpoint, in the middle of
  its forward pass; a job waiting for the baton leaves the queue at once.

Checkpoints are forward pre-hooks on the model (:func:`install_checkpoints`): the engine and the
model stay unaware of the scheduler, and a thread not running a job (a warm-up) passes through.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from torch import nn

T = TypeVar("T")


class Cancelled(Exception):
    """The job's deadline passed or it was cancelled; it stopped at a checkpoint."""


_ORDER = itertools.count()


@dataclass(eq=False)
class Job:
    """One request's work: ``work`` LR pixels (tile context included) in ``steps`` tiles, due by
    ``deadline`` (``time.time()`` seconds)."""

    label: str
    work: int
    steps: int
    deadline: float
    started_steps: int = 0
    busy_s: float = 0.0
    """Seconds this job held the baton."""
    cancelled_at: float | None = None
    order: int = field(default_factory=lambda: next(_ORDER))

    @property
    def remaining(self) -> float:
        """Work not yet done, in LR pixels (the tile in progress counts as not done)."""
        done = max(0, min(self.started_steps - 1, self.steps - 1))
        return self.work * (self.steps - done) / self.steps

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None or time.time() >= self.deadline

    def advance(self) -> None:
        self.started_steps += 1


@dataclass(eq=False)
class Group:
    """Several same-sized single-tile jobs batched into one forward pass; cancelled only when
    all are."""

    members: Sequence[Job]
    busy_s: float = 0.0
    order: int = field(default_factory=lambda: next(_ORDER))
    steps: int = 1

    @property
    def remaining(self) -> float:
        """A batch ranks as one of its images: ranked by their sum, a batch would be overtaken
        by every single request of the same size, and batched requests would starve."""
        return max(job.remaining for job in self.members)

    @property
    def cancelled(self) -> bool:
        return all(job.cancelled for job in self.members)

    def advance(self) -> None:
        for job in self.members:
            job.advance()


Runnable = Job | Group


class Scheduler:
    """The baton of one replica (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: Runnable | None = None
        self._waiting: list[Runnable] = []
        self._local = threading.local()

    def run(self, job: Runnable, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` in this thread as ``job``: wait for the baton, compute, give it back.
        Raises :class:`Cancelled` if the job is cancelled before or while it computes."""
        self._acquire(job)
        self._local.job = job
        try:
            return call(*args)
        finally:
            self._local.job = None
            self._release(job)

    def cancel(self, job: Job) -> None:
        """Mark ``job`` cancelled; it stops at its next checkpoint or leaves the queue now."""
        if job.cancelled_at is None:
            job.cancelled_at = time.time()
        with self._cond:
            self._cond.notify_all()

    def checkpoint(self, boundary: bool) -> None:
        """Called between units of work: at a tile ``boundary``, or inside a forward pass.
        Stops a cancelled job; hands the baton to a smaller waiting job (inside a pass only to
        one that fits a single tile, so at most one big job is ever suspended mid-tile)."""
        job: Runnable | None = getattr(self._local, "job", None)
        if job is None:
            return
        if boundary:
            job.advance()
        if job.cancelled:
            raise Cancelled(getattr(job, "label", "batch"))
        with self._cond:
            overtaken = any(
                other.remaining < job.remaining and (boundary or other.steps == 1) for other in self._waiting
            )
        if overtaken:
            self._release(job)
            self._acquire(job)

    def _acquire(self, job: Runnable) -> None:
        with self._cond:
            self._waiting.append(job)
            try:
                while True:
                    if job.cancelled:
                        raise Cancelled(getattr(job, "label", "batch"))
                    if self._running is None and min(self._waiting, key=_priority) is job:
                        break
                    self._cond.wait(timeout=_wake_by(job))
            finally:
                self._waiting.remove(job)
            self._running = job
            job.busy_s -= time.perf_counter()

    def _release(self, job: Runnable) -> None:
        """Give the baton back if ``job`` holds it (a job cancelled while re-queueing does not)."""
        with self._cond:
            if self._running is not job:
                return
            job.busy_s += time.perf_counter()
            self._running = None
            self._cond.notify_all()


def _priority(job: Runnable) -> tuple[float, int]:
    return job.remaining, job.order


def _wake_by(job: Runnable) -> float:
    """How long a waiting thread may sleep: until its (first) deadline, so it leaves on time."""
    deadlines = [member.deadline for member in job.members] if isinstance(job, Group) else [job.deadline]
    return max(0.01, min(deadlines) - time.time())


def install_checkpoints(runner: nn.Module, scheduler: Scheduler) -> None:
    """Forward pre-hooks that call :meth:`Scheduler.checkpoint`: on ``runner`` itself (one call
    per tile: a boundary) and on its residual blocks and tail (inside a pass). Any other module
    gets the inner checkpoints on its direct children."""
    runner.register_forward_pre_hook(lambda module, args: scheduler.checkpoint(boundary=True))
    inner = [*getattr(runner, "body", ()), getattr(runner, "tail", None)]
    for module in [m for m in inner if m is not None] or list(runner.children()):
        module.register_forward_pre_hook(lambda module, args: scheduler.checkpoint(boundary=False))
