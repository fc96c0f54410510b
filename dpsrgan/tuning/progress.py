"""The sweep's progress on the driver's console: one line per trial epoch."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from dpsrgan.training.progress import format_duration
from dpsrgan.tuning.trial import TIME_ATTR

logger = logging.getLogger("dpsrgan.tuning")


class TrialProgress:
    """The sweep's progress on the driver's console: one line per trial epoch (trial, its knobs,
    validation PSNR-Y, objective) with the sweep's elapsed time and an ETA.

    A ``ray.tune.Callback`` (built by :func:`trial_progress_callback`, so that importing this
    module does not need Ray Tune's callback machinery), called in the driver process: trials
    and their Train workers log elsewhere (``ray.log_to_driver`` is off), so without it the
    sweep is silent for minutes. The ETA assumes every remaining trial runs every epoch (ASHA
    stopping some only makes it shorter) and that concurrent trials share the time evenly.
    """

    def __init__(self, num_samples: int, epochs: int, concurrency: int) -> None:
        self.total = num_samples * epochs
        self.concurrency = max(concurrency, 1)
        self.done = 0
        self.started = time.monotonic()

    def line(self, trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
        """The progress line of one reported result, or None for a report without validation."""
        if "objective" not in result:
            return None
        self.done += 1
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - self.done, 0) * elapsed / self.done
        knobs = " ".join(
            f"{key} {config[key]:.3g}" for key in ("adv_weight", "lr_g", "lr_d") if key in config
        )
        return (
            f"tune: trial {trial_id} epoch {int(result.get(TIME_ATTR, 0))}: {knobs}, val PSNR-Y "
            f"{float(result.get('val/psnr_y', math.nan)):.2f} dB, HF energy "
            f"{float(result.get('val/hf_ratio', math.nan)):.3f}, objective {float(result['objective']):.4g} "
            f"[{self.done}/{self.total} trial-epochs, {format_duration(elapsed)} elapsed, ETA "
            f"{format_duration(remaining)} at most]"
        )


def trial_progress_callback(num_samples: int, epochs: int, concurrency: int) -> Any:
    """A ``ray.tune.Callback`` that logs :class:`TrialProgress` lines."""
    from ray.tune import Callback

    progress = TrialProgress(num_samples, epochs, concurrency)

    class _Logger(Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            line = progress.line(trial.trial_id, trial.config, result)
            if line:
                logger.info(line)

    return _Logger()
