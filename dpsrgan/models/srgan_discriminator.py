"""SRGAN's discriminator (Ledig et al., 2017, Fig. 4): the SRGAN baseline's critic, judging an
HR image *alone* (not conditioned on LR), one real/fake logit per image::

    HR (N×C×H×W) ─ block 0 (3×3 conv 64, LReLU 0.2)
       ─ blocks 1..7 (3×3 conv, BN, LReLU 0.2; widths 64, 128, 128, 256, 256, 512, 512;
         stride 2 in blocks 1, 3, 5, 7) ─ N×512×⌈H/16⌉×⌈W/16⌉
       ─ flatten ─ Dense(1024) ─ LReLU 0.2 ─ Dense(1) ─ N×1 logit

The conv stack is the one DPSRGAN's PatchGAN shares (:mod:`dpsrgan.models.discriminator_blocks`,
the same blocks); the dense head is what SRGAN adds and DPSRGAN drops. Its input size,
512·⌈H/16⌉·⌈W/16⌉, fixes the HR size at construction (``hr_size``): 96² in the paper (18,432
inputs, 18.9M parameters in Dense(1024) alone), the training crop in this pipeline. The output is
a raw logit (the sigmoid lives in BCE-with-logits).

``forward(candidate_hr, lr)`` takes the LR image for the same call signature as the conditional
PatchGAN, so the GAN step runs either discriminator unchanged; SRGAN's ignores it.

Module names (``blocks``, ``dense``) are state_dict keys: do not rename them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.models.checks import require_ints
from dpsrgan.models.discriminator_blocks import SRGAN_DENSE_WIDTH, srgan_conv_stack


class SRGANDiscriminator(nn.Module):
    """``forward(candidate_hr, lr=None)``: N×C×H×W floats in [0, 1] (H, W = ``hr_size``) → N×1
    logits; ``lr`` is ignored (unconditional).

    Args:
        hr_size: (H, W) or one side of the HR images it judges (the dense head's input depends on it).
        in_channels: image channels (3 for RGB).
        channels: width of the first block (64 in SRGAN); later blocks use 2×, 4×, 8×.
    """

    def __init__(self, hr_size: int | tuple[int, int] = 96, in_channels: int = 3, channels: int = 64) -> None:
        super().__init__()
        height, width = (hr_size, hr_size) if isinstance(hr_size, int) else tuple(hr_size)
        require_ints("SRGAN discriminator", height=height, width=width, in_channels=in_channels, channels=channels)
        self._config = {"kind": "srgan", "hr_size": [height, width], "in_channels": in_channels, "channels": channels}
        self.blocks = srgan_conv_stack(in_channels, channels)
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.dense_inputs, SRGAN_DENSE_WIDTH),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(SRGAN_DENSE_WIDTH, 1),
        )

    @property
    def config(self) -> dict:
        """The constructor arguments (plus ``kind``) as plain data (a copy)."""
        return {**self._config, "hr_size": list(self._config["hr_size"])}

    @property
    def dense_inputs(self) -> int:
        """Inputs of Dense(1024): 8·channels · ⌈H/16⌉ · ⌈W/16⌉ (4 stride-2 convs, 'same' padding)."""
        height, width = self._config["hr_size"]
        return 8 * self._config["channels"] * math.ceil(height / 16) * math.ceil(width / 16)

    def forward(self, candidate_hr: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
        expected = tuple(self._config["hr_size"])
        if tuple(candidate_hr.shape[-2:]) != expected:
            raise DpsrganError(
                f"SRGAN discriminator built for {expected[0]}×{expected[1]} HR images got "
                f"{candidate_hr.shape[-2]}×{candidate_hr.shape[-1]} (its dense head fixes the size)"
            )
        return self.dense(self.blocks(candidate_hr))  # N×1
