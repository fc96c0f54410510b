"""The model side of one replica, without Serve: admit against the deadline, decode, upscale on
the :class:`~dpsrgan.serving.scheduler.Scheduler`, encode — each step the CLI's own code.

Admission is where overload is decided, before any pixel is decoded: the image's header gives
its size, the size gives its work (LR pixels, tile context included), and measured rates give
seconds. A request that cannot finish before its deadline — given the work that will run ahead
of it, shortest first — is refused now with 503 and a ``Retry-After`` of that backlog, instead
of being started, abandoned at its deadline and finished for nobody.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import psutil

from dpsrgan.errors import DpsrganError
from dpsrgan.inference.images import ImageTooLarge, decode_planes, encode_image, from_planes, image_size
from dpsrgan.inference.planes import Planes
from dpsrgan.inference.tiling import spans
from dpsrgan.lifecycle.serving import SERVER_HINT
from dpsrgan.serving.model_source import LoadedModel
from dpsrgan.serving.replies import BAD_REQUEST, TOO_LARGE, UNAVAILABLE, Refusal
from dpsrgan.serving.scheduler import Cancelled, Group, Job, Runnable, Scheduler, install_checkpoints
from dpsrgan.serving.settings import ServeSettings

logger = logging.getLogger(__name__)

WARM_UP_SIZES = (32, 128)
"""LR sides of the start-up forward passes that seed the cost model (and warm the kernels)."""
SMALL_WORK = 128 * 128
"""Jobs under this many LR pixels measure the per-job overhead; larger ones the per-pixel rate."""


class Rate:
    """Seconds per pixel: decaying sums, so recent jobs count most and big ones more than small."""

    def __init__(self, decay: float = 0.8) -> None:
        self.decay, self.seconds, self.pixels = decay, 0.0, 0.0

    def add(self, seconds: float, pixels: float) -> None:
        self.seconds = self.seconds * self.decay + seconds
        self.pixels = self.pixels * self.decay + pixels

    def __call__(self, pixels: float) -> float:
        return pixels * self.seconds / self.pixels if self.pixels else 0.0


class Cost:
    """Seconds a job of ``pixels`` LR work pixels computes: a per-job overhead (what a tiny image
    costs) plus a per-pixel rate. One rate alone would let a run of small requests, all
    overhead, inflate the estimate for big ones and refuse them for nothing."""

    def __init__(self) -> None:
        self.overhead = 0.0
        self.rate = Rate()

    def seed(self, small: tuple[float, int], large: tuple[float, int]) -> None:
        """From two timed passes, (seconds, pixels) each."""
        (t_small, p_small), (t_large, p_large) = small, large
        per_pixel = max(t_large - t_small, 1e-3 * t_large) / (p_large - p_small)
        self.rate.add(per_pixel * p_large, p_large)
        self.overhead = max(0.0, t_small - per_pixel * p_small)

    def add(self, seconds: float, pixels: int) -> None:
        if pixels < SMALL_WORK:
            self.overhead = 0.8 * self.overhead + 0.2 * max(0.0, seconds - self.rate(pixels))
        else:
            self.rate.add(max(seconds - self.overhead, 0.0), pixels)

    def __call__(self, pixels: float) -> float:
        return self.overhead + self.rate(pixels) if pixels else 0.0


@dataclass
class Decoded:
    planes: Planes
    mode: str
    icc_profile: bytes | None


@dataclass
class Stats:
    """Counters a replica reports at ``GET /stats`` (the load test reads them)."""

    completed: int = 0
    cancelled: int = 0
    """Admitted, then stopped: deadline passed, client gone, or replica shutting down."""
    refused: int = 0
    """Admitted by their header, then refused (truncated or undecodable pixel data)."""
    refused_busy: int = 0
    batches: int = 0
    batched_images: int = 0
    max_past_deadline_s: float = 0.0
    """Longest any work (compute or encode) ran after its request's deadline."""
    stopped_unfinished: int = 0
    """Cancelled jobs that stopped with work left (the cancellation cut real work short)."""


def tile_work(height: int, width: int, tile: int, pad: int) -> tuple[int, int]:
    """(LR pixels the model reads, tiles) for an image, as the tiling engine cuts it."""
    if tile <= 0 or (height <= tile and width <= tile):
        return height * width, 1
    rows = [min(y1 + pad, height) - max(y0 - pad, 0) for y0, y1 in spans(height, tile)]
    cols = [min(x1 + pad, width) - max(x0 - pad, 0) for x0, x1 in spans(width, tile)]
    return sum(rows) * sum(cols), len(rows) * len(cols)


class UpscaleWorker:
    """Admission, decode, compute and encode for one replica; thread-safe."""

    def __init__(self, model: LoadedModel, settings: ServeSettings) -> None:
        self.settings = settings
        self.scheduler = Scheduler()
        self.compute_cost, self.encode_rate = Cost(), Rate()
        self.stats = Stats()
        self._admitted: set[Job] = set()
        self._lock = threading.Lock()
        self.model = self._prepared(model)

    def _prepared(self, model: LoadedModel) -> LoadedModel:
        """Checkpoints on the model's runner, and timed warm-up passes that seed the costs."""
        install_checkpoints(model.upscaler.runner, self.scheduler)
        rng = np.random.default_rng(0)
        timed = []
        for side in (WARM_UP_SIZES[0], *WARM_UP_SIZES):  # the first pass pays one-time set-up costs
            planes = Planes(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
            start = time.perf_counter()
            out = model.upscaler.upscale_planes(planes)
            timed.append((time.perf_counter() - start, side * side))
        self.compute_cost.seed(timed[1], timed[2])
        start = time.perf_counter()
        encode_image(from_planes(out, "RGB"))
        self.encode_rate.add(time.perf_counter() - start, out.color.shape[0] * out.color.shape[1])
        return model

    def swap(self, model: LoadedModel) -> None:
        """Serve ``model`` from now on; jobs already computing finish on the old one."""
        self.model = self._prepared(model)

    def admit(self, data: bytes, deadline: float, label: str) -> Job | Refusal:
        """A job for an upload whose header passes the limits and whose work fits its deadline."""
        try:
            width, height = image_size(data, label, self.settings.max_pixels, SERVER_HINT)
        except DpsrganError as error:
            return _refused(error)
        upscaler = self.model.upscaler
        job = Job(label, *tile_work(height, width, upscaler.tile, upscaler.pad), deadline)
        own = self.compute_cost(job.work) + self.encode_rate(width * height * upscaler.scale**2)
        timeout = self.settings.timeout_s
        if own > timeout:
            return Refusal(413, TOO_LARGE, f"{label}: {width}x{height} needs about {own:.0f} s here, over the "
                           f"{timeout:g} s deadline; send a smaller image")
        with self._lock:
            ahead = self.compute_cost(sum(o.remaining for o in self._admitted if o.remaining <= job.remaining))
            if time.time() + ahead + own > deadline:
                self.stats.refused_busy += 1
                return Refusal(503, UNAVAILABLE, f"{label}: busy, about {ahead:.0f} s of work ahead; it would "
                               f"miss its {timeout:g} s deadline, retry later", retry_after_s=max(1.0, ahead))
            self._admitted.add(job)
        return job

    def decode(self, data: bytes, label: str) -> Decoded | Refusal:
        """The upload's arrays as ``dpsrgan upscale`` reads a file (truncated data is found here)."""
        try:
            return Decoded(*decode_planes(data, label, self.settings.max_pixels, SERVER_HINT))
        except DpsrganError as error:
            return _refused(error)

    def compute(self, runnable: Runnable, batch: list[Planes]) -> list[Planes]:
        """Upscale ``batch`` (one image, or a group's same-shaped ones) as ``runnable``, on the
        baton; raises :class:`Cancelled` when it is cancelled or its deadline passes."""
        members = runnable.members if isinstance(runnable, Group) else [runnable]
        if isinstance(runnable, Group):
            with self._lock:
                self.stats.batches += 1
                self.stats.batched_images += len(members)
        try:
            result = self.scheduler.run(runnable, self.model.upscaler.upscale_batch, batch)
        except Cancelled:
            with self._lock:
                self.stats.stopped_unfinished += sum(job.remaining > 0 for job in members)
            raise
        finally:
            self._note_past_deadline(members)
        self.compute_cost.add(runnable.busy_s, sum(job.work for job in members))
        return result

    def encode(self, job: Job, planes: Planes, decoded: Decoded) -> bytes:
        """The PNG bytes ``dpsrgan upscale`` would write; not started if it would end past the
        deadline (encoding cannot be interrupted)."""
        height, width = planes.color.shape[:2]
        if time.time() + self.encode_rate(height * width) > job.deadline:
            raise Cancelled(job.label)
        start = time.perf_counter()
        png = encode_image(from_planes(planes, decoded.mode, decoded.icc_profile), "PNG")
        self.encode_rate.add(time.perf_counter() - start, height * width)
        self._note_past_deadline([job])
        return png

    def cancel(self, job: Job) -> None:
        self.scheduler.cancel(job)

    def close(self) -> None:
        """Cancel every admitted job (replica shutdown): each stops at its next checkpoint."""
        with self._lock:
            jobs = list(self._admitted)
        for job in jobs:
            self.scheduler.cancel(job)

    def finish(self, job: Job, outcome: str) -> None:
        """The request is answered (``outcome``: completed, refused or cancelled); its work no
        longer counts against admissions."""
        with self._lock:
            self._admitted.discard(job)
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    def _note_past_deadline(self, jobs: list[Job]) -> None:
        late = time.time() - min(job.deadline for job in jobs)
        with self._lock:
            self.stats.max_past_deadline_s = max(self.stats.max_past_deadline_s, late)

    def snapshot(self) -> dict:
        """Counters, in-flight work and this replica's memory, as JSON-ready values."""
        with self._lock:
            values = asdict(self.stats)
            values.update(
                model_version=self.model.version,
                in_flight=len(self._admitted),
                seconds_per_mpx=round(self.compute_cost.rate(1e6), 3),
                overhead_s=round(self.compute_cost.overhead, 4),
                rss_bytes=psutil.Process().memory_info().rss,
            )
        return values


def _refused(error: DpsrganError) -> Refusal:
    """An upload the pixel limit or the decoder refused: 413 when it is too large, else 400."""
    if isinstance(error, ImageTooLarge):
        return Refusal(413, TOO_LARGE, str(error))
    return Refusal(400, BAD_REQUEST, str(error))
