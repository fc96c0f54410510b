"""The compared methods and their row order: the one vocabulary the evaluator, the summary, the
table and the grid share, so a method cannot be spelt two ways."""

from __future__ import annotations

METHODS = ("bicubic", "srresnet", "srgan", "pretrained", "gan")
"""Row order everywhere: the free baseline, the paper's two baselines (dpsrgan.baselines; present
when trained), DPSRGAN's MSE-pretrained (dilated) generator, DPSRGAN. ``pretrained`` and ``gan``
are always evaluated."""
REQUIRED = ("pretrained", "gan")
