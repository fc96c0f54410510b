"""The reference points every speed-up is a ratio to, measured in the same run.

- :func:`srresnet16`: SRResNet-16 (Ledig et al., 2017; :mod:`dpsrgan.models.srresnet`) at the
  generator's width and depth — the DPSRGAN generator without its dilated convs (so it does
  0.885× the generator's work). Run by :func:`plain_forward`: eager, fp32, contiguous NCHW,
  under ``torch.no_grad()`` — what a user gets from ``model(x)`` with no tuning at all.
- :func:`conv_flops_per_lr_pixel` (:mod:`dpsrgan.models.complexity`): the work of a fully
  convolutional upscaler per LR input pixel, counted from its conv layers.
- :func:`matmul_rate`: a big ``torch.mm``, the machine's achievable dense rate per dtype.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from dpsrgan.models.complexity import conv_flops_per_lr_pixel  # noqa: F401  (re-exported for the benchmarks)
from dpsrgan.models.generator import Generator
from dpsrgan.models.srresnet import srresnet


def srresnet16(seed: int = 0) -> Generator:
    """The baseline, seeded, in eval mode, on the CPU, fp32."""
    torch.manual_seed(seed)
    return srresnet().eval()


def plain_forward(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """The untuned way to run a model: eager fp32 NCHW under ``no_grad``."""
    with torch.no_grad():
        return model(lr.float().contiguous())


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5, device: str = "cpu") -> list[float]:
    """GFLOP/s of ``torch.mm`` of two n×n ``dtype`` matrices, one value per repeat (after a
    warm-up call)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return rates
