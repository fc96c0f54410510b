"""The reference points every speed-up is a ratio to, measured in the same run.

- :class:`SRResNet`: SRResNet-16 (Ledig et al., 2017) at the generator's width and depth — the
  DPSRGAN generator without its dilated convs (so it does 0.885× the generator's work). Run
  by :func:`plain_forward`: eager, fp32, contiguous NCHW, under ``torch.no_grad()`` — what a
  user gets from ``model(x)`` with no tuning at all.
- :func:`conv_flops_per_lr_pixel`: the work of a fully convolutional upscaler, counted from its
  conv layers (2 · C_in/groups · C_out · k_h · k_w FLOPs per output pixel of each conv), per LR
  input pixel: multiply by H·W for an image.
- :func:`matmul_rate`: a big ``torch.mm``, the machine's achievable dense rate per dtype.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from dpsrgan.models.generator import ResidualBlock, UpsampleBlock


class SRResNet(nn.Module):
    """SRResNet: 9×9 head + PReLU, ``num_blocks`` plain residual blocks, conv + BN, global skip,
    log2(scale) PixelShuffle ×2 stages, 9×9 tail. The generator's blocks with ``dilation=None``;
    float N×3×H×W → N×3×sH×sW."""

    def __init__(self, scale: int = 4, channels: int = 64, num_blocks: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels, None) for _ in range(num_blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsampler = nn.Sequential(*(UpsampleBlock(channels) for _ in range(int(math.log2(scale)))))
        self.tail = nn.Conv2d(channels, in_channels, 9, padding=4)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        features = self.head(lr)
        features = features + self.body_tail(self.body(features))
        return self.tail(self.upsampler(features))


def srresnet16(seed: int = 0) -> SRResNet:
    """The baseline, seeded, in eval mode, on the CPU, fp32."""
    torch.manual_seed(seed)
    return SRResNet().eval()


def plain_forward(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """The untuned way to run a model: eager fp32 NCHW under ``no_grad``."""
    with torch.no_grad():
        return model(lr.float().contiguous())


def conv_flops_per_lr_pixel(model: nn.Module, probe: int = 8, device: str | torch.device = "cpu") -> float:
    """FLOPs (multiply + add = 2) of every ``nn.Conv2d`` in ``model`` per LR input pixel.

    The convs' output sizes come from one forward pass on a ``probe``×``probe`` input (hooks
    record them), so the count follows the model's real resolutions (LR, 2×, 4×, ...). Exact
    for "same"-padded convs, where work is proportional to the input area.
    """
    total = 0.0

    def count(conv: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        per_pixel = 2 * (conv.in_channels // conv.groups) * conv.out_channels * kh * kw
        total += per_pixel * output.shape[-2] * output.shape[-1]

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            param = next(model.parameters())
            model(torch.zeros(1, 3, probe, probe, device=device, dtype=param.dtype))
    finally:
        for hook in hooks:
            hook.remove()
    return total / (probe * probe)


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
