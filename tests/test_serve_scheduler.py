"""The serving replica's core without Serve: the compute baton (shortest remaining work first,
cancellation mid-image, deadlines that stop work by themselves), admission against the deadline,
and batched upscaling equal to one image at a time. Real models (tiny generators), real threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dpsrgan.inference.engine import Upscaler
from dpsrgan.inference.images import encode_image, from_planes
from dpsrgan.inference.planes import Planes
from dpsrgan.serving.model_source import LoadedModel
from dpsrgan.serving.replies import Refusal
from dpsrgan.serving.scheduler import Cancelled, Job, Scheduler, install_checkpoints
from dpsrgan.serving.settings import ServeSettings
from dpsrgan.serving.worker import Rate, UpscaleWorker, tile_work
from tests._upscale_helpers import smooth_rgb, tiny_generator


def _upscaler(tile: int) -> Upscaler:
    return Upscaler.prepare(tiny_generator(0), tile=tile, device="cpu", precision="fp32")


def _png(side: int, seed: int = 0) -> bytes:
    return encode_image(from_planes(Planes(smooth_rgb(side, side, seed)), "RGB"))


class _BigJob:
    """A tiled job running in its own thread on ``scheduler``; ``started`` is set at its first tile."""

    def __init__(self, scheduler: Scheduler, upscaler: Upscaler, side: int = 256) -> None:
        self.planes = Planes(smooth_rgb(side, side, 1))
        self.job = Job("big", *tile_work(side, side, upscaler.tile, upscaler.pad), deadline=time.time() + 120)
        self.started = threading.Event()
        self.outcome: list[object] = []
        upscaler.runner.register_forward_pre_hook(lambda module, args: self.started.set())
        self.thread = threading.Thread(target=self._run, args=(scheduler, upscaler), daemon=True)
        self.thread.start()
        assert self.started.wait(60), "the big job never started"

    def _run(self, scheduler: Scheduler, upscaler: Upscaler) -> None:
        try:
            self.outcome.append(scheduler.run(self.job, upscaler.upscale_batch, [self.planes])[0])
        except Cancelled as cancelled:
            self.outcome.append(cancelled)

    def result(self) -> object:
        self.thread.join(120)
        assert not self.thread.is_alive()
        return self.outcome[0]


def test_a_small_job_overtakes_a_big_one_and_both_get_their_exact_pixels():
    scheduler, upscaler = Scheduler(), _upscaler(tile=16)
    install_checkpoints(upscaler.runner, scheduler)
    big = _BigJob(scheduler, upscaler, side=96)
    small_planes = Planes(smooth_rgb(12, 12, 2))
    small = scheduler.run(Job("small", 144, 1, time.time() + 60), upscaler.upscale_batch, [small_planes])[0]
    assert big.thread.is_alive(), "the small job had to wait for the whole big one"
    big_out = big.result()
    assert big.job.started_steps == big.job.steps
    reference = _upscaler(tile=16)
    assert np.array_equal(small.color, reference.upscale_planes(small_planes).color)
    assert np.array_equal(big_out.color, reference.upscale_planes(big.planes).color)


def test_cancelling_a_job_stops_it_mid_image():
    scheduler, upscaler = Scheduler(), _upscaler(tile=16)
    install_checkpoints(upscaler.runner, scheduler)
    big = _BigJob(scheduler, upscaler)
    scheduler.cancel(big.job)
    assert isinstance(big.result(), Cancelled)
    assert big.job.started_steps < big.job.steps  # tiles were left undone


def test_a_job_past_its_deadline_stops_by_itself():
    scheduler, upscaler = Scheduler(), _upscaler(tile=16)
    install_checkpoints(upscaler.runner, scheduler)
    big = _BigJob(scheduler, upscaler)
    big.job.deadline = time.time()  # nobody calls cancel: the checkpoint sees the deadline
    assert isinstance(big.result(), Cancelled)
    assert big.job.started_steps < big.job.steps


def test_a_job_cancelled_while_waiting_leaves_the_queue_and_the_holder_goes_on():
    scheduler = Scheduler()
    release, holding = threading.Event(), threading.Event()

    def hold() -> str:
        holding.set()
        release.wait(30)
        return "held"

    holder_result: list[str] = []
    holder = threading.Thread(
        target=lambda: holder_result.append(scheduler.run(Job("holder", 100, 1, time.time() + 60), hold))
    )
    holder.start()
    assert holding.wait(10)
    waiter = Job("waiter", 10, 1, time.time() + 60)
    raised: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(raised, scheduler.run, waiter, lambda: "ran"))
    thread.start()
    scheduler.cancel(waiter)
    thread.join(10)
    assert not thread.is_alive() and isinstance(raised[0], Cancelled)
    release.set()
    holder.join(10)
    assert holder_result == ["held"]


def _capture(raised: list[BaseException], call, *args) -> None:
    try:
        call(*args)
    except Cancelled as error:
        raised.append(error)


@pytest.mark.parametrize("channels", [3, 1])
def test_a_batch_equals_its_images_upscaled_one_by_one(channels):
    upscaler = _upscaler(tile=512)
    images = [smooth_rgb(20, 24, seed)[..., :channels] for seed in range(3)]
    alpha = (np.arange(20 * 24, dtype=np.uint8).reshape(20, 24) * 7) % 255
    batch = [Planes(images[0], alpha), Planes(images[1]), Planes(images[2], alpha)]
    together = upscaler.upscale_batch(batch)
    alone = [upscaler.upscale_planes(planes) for planes in batch]
    for a, b in zip(together, alone, strict=True):
        assert np.array_equal(a.color, b.color)
        assert (a.alpha is None and b.alpha is None) or np.array_equal(a.alpha, b.alpha)


def test_tile_work_counts_the_context_each_tile_reads():
    assert tile_work(300, 200, 512, 56) == (60_000, 1)
    rows = (512 + 56) + (56 + 512)  # two tiles per axis, each reading 56 px beyond its inner edge
    assert tile_work(1024, 1024, 512, 56) == (rows * rows, 4)


@pytest.fixture()
def worker() -> UpscaleWorker:
    """A worker whose costs are set by hand: 1 ms per LR pixel, no overhead, free encoding."""
    settings = ServeSettings(model="unused.pt", timeout_s=10, max_pixels=100 * 100)
    worker = UpscaleWorker(LoadedModel(_upscaler(tile=512), "tiny@test"), settings)
    worker.compute_cost.overhead, worker.compute_cost.rate = 0.0, Rate()
    worker.compute_cost.rate.add(1.0, 1000)
    worker.encode_rate = Rate()
    return worker


def test_admission_takes_what_fits_the_deadline_and_refuses_the_rest(worker):
    deadline = time.time() + 10
    first, second = worker.admit(_png(64), deadline, "a"), worker.admit(_png(64), deadline, "b")
    assert isinstance(first, Job) and isinstance(second, Job)  # 4.1 s each: 8.2 s of 10
    third = worker.admit(_png(64, seed=1), deadline, "c")
    assert isinstance(third, Refusal) and third.status == 503
    assert third.retry_after_s == pytest.approx(8.19, abs=0.1) and "busy" in third.message
    worker.finish(first, "completed")
    assert isinstance(worker.admit(_png(64), deadline, "d"), Job)  # room again


def test_admission_refuses_oversized_and_malformed_uploads_before_any_work(worker):
    deadline = time.time() + 10
    slow = worker.admit(_png(99), deadline, "upload")  # 9801 px: 9.8 s < 10 s, but the queue has it
    assert isinstance(slow, Job)
    worker.finish(slow, "completed")
    big = worker.admit(_png(101), deadline, "upload")
    assert isinstance(big, Refusal) and big.status == 413 and "pixel limit of 10,000" in big.message
    garbage = worker.admit(b"GIF89a but not really", deadline, "upload")
    assert isinstance(garbage, Refusal) and garbage.status == 400 and garbage.message.startswith("upload: ")
    worker.settings = ServeSettings(model="unused.pt", timeout_s=5, max_pixels=100 * 100)
    slow_alone = worker.admit(_png(90), time.time() + 5, "upload")  # 8.1 s of work, 5 s deadline
    assert isinstance(slow_alone, Refusal) and slow_alone.status == 413 and "over the 5 s deadline" in slow_alone.message
