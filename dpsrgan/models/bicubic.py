"""MATLAB-bicubic ×s upsampling as a fixed polyphase convolution, for the generator's skip.

A generator that predicts a *residual over bicubic* starts, with its last conv zero-initialised,
exactly at the baseline it must beat (the evaluation's bicubic, :func:`dpsrgan.degradation.imresize`:
Keys a = −0.5, symmetric padding) and only has to learn the missing detail. Upsampling by an
integer factor s makes output pixel ``s·k + p`` (phase p) a 5-tap weighted sum of LR pixels
``k−2 … k+2`` along each axis, so the whole resize is one depthwise 5×5 conv with s² phases per
channel followed by ``PixelShuffle(s)``, on an LR image padded symmetrically by 2 px (MATLAB's
border rule). The kernel is read off :func:`~dpsrgan.degradation._weight_matrix`, so the two
agree to float rounding; it is a non-persistent buffer (not part of checkpoints).

Fully convolutional with a radius of 2 LR pixels: tiles padded by the generator's receptive
radius (56) still upscale exactly as the whole image does. It always computes in float32, also
under autocast: the skip carries the whole image, which bf16 would round to about 1/256.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dpsrgan.degradation import _weight_matrix

RADIUS = 2
"""LR pixels each side that one output pixel reads (Keys' kernel has support [-2, 2])."""


def phase_taps(scale: int) -> np.ndarray:
    """``scale × 5`` array: row p holds the weights of LR pixels k−2 … k+2 for output pixel
    ``scale·k + p`` (read off MATLAB's weight matrix well inside a long signal)."""
    length, k = 4 * RADIUS + 1, 2 * RADIUS
    matrix = _weight_matrix(length, length * scale, float(scale))
    return np.stack([matrix[scale * k + p, k - RADIUS : k + RADIUS + 1] for p in range(scale)])


class BicubicUpsample(nn.Module):
    """``forward``: float N×C×H×W → N×C×sH×sW, MATLAB ``imresize(x, s, 'bicubic')`` unclamped,
    always float32 (any H, W ≥ 1)."""

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        self.scale, self.channels = scale, channels
        taps = torch.from_numpy(phase_taps(scale)).float()  # s × 5
        phases = taps[:, None, :, None] * taps[None, :, None, :]  # s(rows) × s(cols) × 5 × 5
        kernel = phases.reshape(scale * scale, 1, 5, 5).repeat(channels, 1, 1, 1)  # C·s² × 1 × 5 × 5
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            padded = symmetric_pad(x.float(), RADIUS)
            phases = F.conv2d(padded, self.kernel, groups=self.channels)  # N×C·s²×H×W
            return F.pixel_shuffle(phases, self.scale)


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad H and W by ``pad`` mirroring the edge pixel too (MATLAB's/numpy's ``symmetric``);
    sides shorter than ``pad`` repeat the mirror as MATLAB's index folding does."""
    for dim in (-2, -1):
        size = x.shape[dim]
        mirror = torch.cat([torch.arange(size), torch.arange(size - 1, -1, -1)])
        index = mirror[torch.arange(-pad, size + pad) % (2 * size)].to(x.device)
        x = x.index_select(dim, index)
    return x
