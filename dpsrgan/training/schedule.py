"""Learning-rate schedules: linear warm-up, then constant or cosine decay to a floor (as BasicSR/timm).

Warm-up keeps Adam's first, poorly estimated steps small: Adam's first updates move every weight
by about the learning rate in the direction of its gradient's sign, whatever the gradient's size,
so a fine-tune that starts at full rate jolts a converged network (the GAN stage from its
pretrained generator: a visible colour cast within 4 steps, see benchmarks/gan.py); with a
zero-initialised last conv the pretraining's first updates otherwise overshoot. The cosine tail
lets a short run end on small steps, which is where most of a few-minute run's last fraction of a
dB comes from.
"""

from __future__ import annotations

import math
from typing import Literal

MIN_FACTOR = 0.05
"""The cosine's floor, as a fraction of the base learning rate."""

Schedule = Literal["constant", "cosine"]


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: (step + 1) / warmup_steps for the first ``warmup_steps`` steps, then 1."""
    return (step + 1) / warmup_steps if 0 <= step < warmup_steps else 1.0


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_factor: float = MIN_FACTOR) -> float:
    """Factor in (0, 1] for the base learning rate at 0-based ``step`` of ``total_steps``."""
    if step < warmup_steps:
        return warmup_factor(step, warmup_steps)
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_factor(schedule: Schedule, step: int, total_steps: int, warmup_steps: int) -> float:
    """The base learning rate's factor at 0-based ``step``: warm-up, then ``constant`` (1) or
    ``cosine`` (down to :data:`MIN_FACTOR` at ``total_steps``)."""
    match schedule:
        case "constant":
            return warmup_factor(step, warmup_steps)
        case "cosine":
            return warmup_cosine(step, total_steps, warmup_steps)
    raise ValueError(f"lr schedule must be 'constant' or 'cosine', got {schedule!r}")


def stage_learning_rates(
    step: int,
    *,
    lr_g: float,
    lr_d: float,
    schedule: Schedule,
    total_steps: int,
    warmup_steps: int,
    d_warmup_steps: int = 0,
    scale: float = 1.0,
) -> dict[str, float]:
    """The generator's (``g``) and discriminator's (``d``) learning rates at 0-based ``step`` of a
    training stage (the pretraining has no D: its ``d`` is unused): base rate × schedule ×
    ``scale`` (the instability guard's cuts).

    D's schedule runs from step 0; G's starts after D's warm-up (``d_warmup_steps`` D-only
    steps, G's rate 0 meanwhile), so G's own linear warm-up is never spent while it is not training.
    """
    g_step = step - d_warmup_steps
    g_factor = lr_factor(schedule, g_step, total_steps - d_warmup_steps, warmup_steps) if g_step >= 0 else 0.0
    return {
        "g": lr_g * scale * g_factor,
        "d": lr_d * scale * lr_factor(schedule, step, total_steps, warmup_steps),
    }
