"""Model size and work, counted the same way for every arm of the comparison.

- :func:`parameter_count`: trainable parameters of a module (buffers such as BN statistics and
  the bicubic skip's fixed kernel are not parameters).
- :func:`conv_flops_per_lr_pixel`: the work of a fully convolutional upscaler, counted from its
  conv layers (2 · C_in/groups · C_out · k_h · k_w FLOPs per output pixel of each conv), per LR
  input pixel: multiply by H·W for an image. :func:`gflops_per_output_megapixel` turns it into
  GFLOPs per megapixel of SR output (÷ scale²), the unit of the evaluation table.
"""

from __future__ import annotations

import torch
from torch import nn


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (``requires_grad``) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


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


def gflops_per_output_megapixel(generator: nn.Module, scale: int) -> float:
    """Conv GFLOPs to produce one megapixel of ×``scale`` output (10⁶ / scale² LR pixels)."""
    return conv_flops_per_lr_pixel(generator) * 1e6 / scale**2 / 1e9
