"""Live progress of a Ray Train run on the driver's console: one line per step, one per epoch.

Rank 0 pushes small progress records into a :class:`ProgressSink` actor (zero CPUs, at most a
few records a second); a thread in the driver drains it and renders them. On a terminal the
step line rewrites itself in place (``\\r``); elsewhere (CI logs, ``dvc repro`` into a file) a
step line is logged at most every ``log_every_s`` seconds. Epoch summaries are always logged.
The sink also carries a *failure* (the instability guard's budget spent), which the driver
turns into a user-facing error after ``fit`` returns.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import ray

logger = logging.getLogger("dpsrgan.training")

PUSH_INTERVAL_S = 0.5


@ray.remote(num_cpus=0)
class ProgressSink:
    """Mailbox between rank 0 and the driver."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._failure: str | None = None

    def push(self, record: dict[str, Any]) -> None:
        self._records.append(record)

    def fail(self, message: str) -> None:
        self._failure = message

    def drain(self) -> tuple[list[dict[str, Any]], str | None]:
        records, self._records = self._records, []
        return records, self._failure


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_losses(losses: dict[str, float], keys: tuple[str, ...] | None = None) -> str:
    shown = keys or tuple(key for key in losses if key.startswith("loss/"))
    return " ".join(f"{key.removeprefix('loss/')} {losses[key]:.4g}" for key in shown if key in losses)


@dataclass
class StepReporter:
    """Rank 0's side: throughput and ETA from its own clock, throttled pushes to the sink."""

    sink: Any
    stage: str
    epochs: int
    steps_per_epoch: int
    samples_per_step: int
    """Global batch: per-worker batch size × number of workers."""
    _window_start: float = field(default_factory=time.monotonic)
    _window_steps: int = 0
    _last_push: float = 0.0
    samples_per_s: float = 0.0

    def restart_clock(self) -> None:
        """After validation, checkpoints or restores: keep those pauses out of samples/s."""
        self._window_start, self._window_steps = time.monotonic(), 0

    def step(self, epoch: int, step_in_epoch: int, global_step: int, losses: dict[str, float]) -> None:
        now = time.monotonic()
        if self._window_steps == 0:  # the first step after a pause also waited for data start-up
            self.samples_per_s = self.samples_per_step / max(now - self._window_start, 1e-9)
            self._window_start = now
        else:
            self.samples_per_s = (
                self._window_steps * self.samples_per_step / max(now - self._window_start, 1e-9)
            )
        self._window_steps += 1
        if now - self._last_push < PUSH_INTERVAL_S and step_in_epoch < self.steps_per_epoch:
            return
        self._last_push = now
        remaining = self.epochs * self.steps_per_epoch - global_step
        eta = remaining * self.samples_per_step / self.samples_per_s if self.samples_per_s else None
        self.sink.push.remote(
            {
                "kind": "step",
                "stage": self.stage,
                "epoch": epoch,
                "epochs": self.epochs,
                "step": step_in_epoch,
                "steps": self.steps_per_epoch,
                "global_step": global_step,
                "losses": losses,
                "samples_per_s": self.samples_per_s,
                "eta_s": eta,
            }
        )

    def epoch(self, epoch: int, row: dict[str, float]) -> None:
        self.sink.push.remote(
            {"kind": "epoch", "stage": self.stage, "epoch": epoch, "epochs": self.epochs, "row": row}
        )

    def event(self, message: str, level: int = logging.WARNING) -> None:
        self.sink.push.remote({"kind": "event", "stage": self.stage, "message": message, "level": level})


class ProgressPrinter:
    """The driver's side: a daemon thread rendering what rank 0 pushed until :meth:`stop`."""

    def __init__(self, sink: Any, stream: TextIO | None = None, log_every_s: float = 30.0) -> None:
        self.sink = sink
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.log_every_s = log_every_s
        self.failure: str | None = None
        self._last_log = 0.0
        self._line_open = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpsrgan-progress", daemon=True)

    def __enter__(self) -> ProgressPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._poll()  # the records pushed after the last poll
        self._close_line()

    def _run(self) -> None:
        while not self._stop.wait(PUSH_INTERVAL_S):
            self._poll()

    def _poll(self) -> None:
        try:
            records, failure = ray.get(self.sink.drain.remote(), timeout=30)
        except (ray.exceptions.RayError, TimeoutError):  # the run is ending or Ray is shutting down
            return
        self.failure = failure or self.failure
        for record in records:
            self.render(record)

    def render(self, record: dict[str, Any]) -> None:
        match record["kind"]:
            case "step":
                line = step_line(record)
                if self.live:
                    self.stream.write("\r" + line.ljust(110)[:160])
                    self.stream.flush()
                    self._line_open = True
                elif time.monotonic() - self._last_log >= self.log_every_s:
                    self._last_log = time.monotonic()
                    logger.info(line)
            case "epoch":
                self._close_line()
                logger.info(epoch_line(record))
            case "event":
                self._close_line()
                logger.log(record.get("level", logging.WARNING), "%s: %s", record["stage"], record["message"])

    def _close_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False


def step_line(record: dict[str, Any]) -> str:
    eta = record.get("eta_s")
    return (
        f"{record['stage']} epoch {record['epoch'] + 1}/{record['epochs']} "
        f"step {record['step']}/{record['steps']} | {format_losses(record['losses'])} | "
        f"{record['samples_per_s']:.1f} samples/s | ETA {format_duration(eta) if eta is not None else '?'}"
    )


def epoch_line(record: dict[str, Any]) -> str:
    row = record["row"]
    val = ""
    if "val/psnr_y" in row:
        val = (
            f" | val PSNR-Y {row['val/psnr_y']:.2f} dB (bicubic {row['val/psnr_y_bicubic']:.2f})"
            f" SSIM-Y {row['val/ssim_y']:.4f}"
        )
    d = (
        f" | D(real) {row['d/real_mean']:.2f} D(fake) {row['d/fake_mean']:.2f}"
        if "d/real_mean" in row
        else ""
    )
    return (
        f"{record['stage']} epoch {record['epoch'] + 1}/{record['epochs']} done: "
        f"{format_losses(row)}{d}{val} | {row.get('perf/samples_per_s', 0.0):.1f} samples/s"
    )
