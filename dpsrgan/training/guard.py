"""Instability guard: notice a diverged or collapsed GAN step and decide, on every rank alike.

Two failure signs are watched after each step:

- a non-finite loss on any rank (acts at once: the weights may already be poisoned);
- a collapsed discriminator: the all-rank means of D(real) and D(fake) (after the sigmoid) both
  within ``threshold`` of the same end (D no longer separates real from fake), or inverted
  (D(real) < t and D(fake) > 1 − t), for ``patience`` consecutive steps.

The worker loop answers a verdict by restoring the last good checkpoint with a lowered learning
rate, up to a budget (``gan.max_guard_restores``); see :mod:`dpsrgan.training.loop`. The verdict
is computed from all-reduced numbers, so every rank takes the same branch (a rank that restored
alone would deadlock DDP's next all-reduce).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist


def all_rank_health(losses: dict[str, float], device: torch.device) -> tuple[bool, float, float]:
    """(any loss non-finite on any rank, mean D(real), mean D(fake)) across all ranks.

    The D means are NaN when ``losses`` has no ``d/*`` entries (the MSE pretraining).
    """
    nonfinite = any(not math.isfinite(value) for value in losses.values())
    real, fake = losses.get("d/real_mean", math.nan), losses.get("d/fake_mean", math.nan)
    values = torch.tensor([float(nonfinite), real, fake], dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
        values[1:] /= dist.get_world_size()
    flag, real, fake = values.tolist()
    return flag > 0, real, fake


class InstabilityGuard:
    """Turns per-step health numbers into a reason to restore (or None)."""

    def __init__(self, collapse_threshold: float | None, patience: int = 1) -> None:
        self.threshold = collapse_threshold
        self.patience = patience
        self.collapsed_steps = 0

    def is_collapsed(self, real_mean: float, fake_mean: float) -> bool:
        t = self.threshold
        if t is None or not (math.isfinite(real_mean) and math.isfinite(fake_mean)):
            return False
        saturated_low = real_mean < t and fake_mean < t
        saturated_high = real_mean > 1 - t and fake_mean > 1 - t
        inverted = real_mean < t and fake_mean > 1 - t
        return saturated_low or saturated_high or inverted

    def observe(self, nonfinite: bool, real_mean: float, fake_mean: float) -> str | None:
        """The reason to restore after this step, or None while training looks healthy."""
        if nonfinite:
            self.collapsed_steps = 0
            return "non-finite loss"
        if self.is_collapsed(real_mean, fake_mean):
            self.collapsed_steps += 1
            if self.collapsed_steps >= self.patience:
                self.collapsed_steps = 0
                return (
                    f"discriminator collapsed for {self.patience} steps "
                    f"(D(real)={real_mean:.3f}, D(fake)={fake_mean:.3f})"
                )
        else:
            self.collapsed_steps = 0
        return None

    def reset(self) -> None:
        self.collapsed_steps = 0
