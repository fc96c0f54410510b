"""Export verifies itself: the exported model and torch on the same inputs, compared.

Inputs: seeded uniform noise (harder than photographs: every pixel matters) at an odd size,
1×3×23×37, and at a second size with batch 2, 2×3×16×20, so one check covers odd sizes and the
dynamic batch/height/width. The torch reference is the generator itself (eval, fp32).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.export.runtime import ExportedModel

TOLERANCE = 1e-3
"""Largest allowed max |exported − torch| on the [0, 1] output scale: a quarter of one 8-bit
level, so an export that passes writes the same 8-bit images up to rare rounding ties. Measured
fp32 differences are ~1e-6 (tiny generators) to ~1e-5 (the default generator)."""
SHAPES = ((1, 23, 37), (2, 16, 20))
"""(batch, height, width) of the verification inputs."""


def max_abs_diff(model: ExportedModel, generator: nn.Module, seed: int = 0) -> float:
    """Largest |exported − torch| over :data:`SHAPES` (inf for a non-finite or misshapen output)."""
    import torch

    rng = np.random.default_rng(seed)
    channels = generator.config["in_channels"]
    worst = 0.0
    for batch, height, width in SHAPES:
        lr = rng.random((batch, channels, height, width), dtype=np.float32)
        with torch.inference_mode():
            expected = generator(torch.from_numpy(lr)).float().numpy()
        actual = model(lr)
        if actual.shape != expected.shape:
            return float("inf")
        diff = float(np.abs(actual - expected).max())
        worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    return worst


def verify(model: ExportedModel, generator: nn.Module, tolerance: float = TOLERANCE) -> float:
    """The measured max difference; one :class:`DpsrganError` line when it exceeds ``tolerance``."""
    diff = max_abs_diff(model, generator)
    if not diff <= tolerance:
        sizes = ", ".join(f"{n}x{generator.config['in_channels']}x{h}x{w}" for n, h, w in SHAPES)
        raise DpsrganError(
            f"{model.path.name}: verification failed on {model.backend}: max |exported - torch| = {diff:.3g} "
            f"> tolerance {tolerance:g} on inputs {sizes}; nothing was written"
        )
    return diff
