"""SRGAN's discriminator conv stack (Ledig et al., 2017, Fig. 4), the part both critics share::

    block 0 (3×3 conv c, LReLU 0.2) ─ blocks 1..7 (3×3 conv, BN, LReLU 0.2; widths c, 2c, 2c,
    4c, 4c, 8c, 8c; stride 2 in blocks 1, 3, 5, 7) ─ N×8c×⌈H/16⌉×⌈W/16⌉

DPSRGAN's conditional PatchGAN (:mod:`dpsrgan.models.discriminator`) ends it with a 3×3 conv to
one logit per patch; SRGAN's own (:mod:`dpsrgan.models.srgan_discriminator`) with its dense head.
Both import the stack from here, so neither model module needs the other.

Module names (``conv``, ``bn``, ``act``) are state_dict keys: do not rename them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

SRGAN_BLOCKS = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))
"""(width multiplier of ``channels``, stride) of SRGAN's eight conv blocks."""
SRGAN_DENSE_WIDTH = 1024
"""Width of SRGAN's first dense layer (the head DPSRGAN drops)."""


class DiscriminatorBlock(nn.Module):
    """3×3 conv (stride 1 or 2, padding 1) → BN (or nothing) → LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, batch_norm: bool, sn: bool) -> None:
        super().__init__()
        conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.conv = _spectral_norm(conv) if sn else conv
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def srgan_conv_stack(in_channels: int, channels: int, spectral_norm: bool = False) -> nn.Sequential:
    """The eight blocks of :data:`SRGAN_BLOCKS`: ``in_channels`` → ``8 · channels`` channels at
    1/16 of the input size. BN after every block but the first (SRGAN), none with
    ``spectral_norm`` (which spectral-normalises every conv instead: Miyato et al., 2018)."""
    blocks, width = [], in_channels
    for index, (multiplier, stride) in enumerate(SRGAN_BLOCKS):
        batch_norm = index > 0 and not spectral_norm  # SRGAN: no BN after the first conv
        blocks.append(DiscriminatorBlock(width, channels * multiplier, stride, batch_norm, spectral_norm))
        width = channels * multiplier
    return nn.Sequential(*blocks)
