"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (as BasicSR/timm).

Warm-up keeps Adam's first, poorly estimated steps small (with a zero-initialised last conv the
first updates otherwise overshoot); the cosine tail lets a short run end on small steps, which is
where most of a few-minute run's last fraction of a dB comes from.
"""

from __future__ import annotations

import math

MIN_FACTOR = 0.05
"""The cosine's floor, as a fraction of the base learning rate."""


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_factor: float = MIN_FACTOR) -> float:
    """Factor in (0, 1] for the base learning rate at 0-based ``step`` of ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
