"""SRResNet (Ledig et al., 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN"):
the generator of SRGAN, and the baseline DPSRGAN's generator is built on::

    LR ─ 9×9 conv, PReLU ─┬─ 16 × [3×3 conv, BN, PReLU, 3×3 conv, BN, (+)] ─ 3×3 conv, BN ─(+)─┐
                          └──────────────────────── long skip ─────────────────────────────┘
       ─ 2 × [3×3 conv 64→256, PixelShuffle ×2, PReLU] ─ 9×9 conv ─ SR

It is DPSRGAN's :class:`~dpsrgan.models.generator.Generator` without the extra dilated convs
(``dilation=None``): the same module names, so its checkpoints, ``dpsrgan upscale``, the
evaluation and the export all read it as a generator checkpoint whose architecture says
``"dilation": null``. ``bicubic_skip`` follows DPSRGAN's setting in the pipeline, so the two are
compared like with like (the published SRResNet has no skip: ``bicubic_skip=False``).
"""

from __future__ import annotations

import math

from dpsrgan.models.generator import Generator


def srresnet(
    scale: int = 4, channels: int = 64, num_blocks: int = 16, in_channels: int = 3, bicubic_skip: bool = False
) -> Generator:
    """SRResNet-``num_blocks``: float N×in×H×W in [0, 1] → N×in×sH×sW (unclamped)."""
    return Generator(
        scale=scale,
        channels=channels,
        num_blocks=num_blocks,
        dilation=None,
        in_channels=in_channels,
        bicubic_skip=bicubic_skip,
    )


def srresnet_parameter_count(scale: int = 4, channels: int = 64, num_blocks: int = 16, in_channels: int = 3) -> int:
    """Trainable parameters of SRResNet's published layout (Ledig et al., Fig. 4), counted from
    its layer shapes, with per-channel PReLU: 1,550,659 for SRResNet-16 at 64 channels, ×4."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731  weight + bias
    bn, prelu = 2 * channels, channels
    head = conv(in_channels, channels, 9) + prelu
    block = 2 * conv(channels, channels, 3) + 2 * bn + prelu
    body_tail = conv(channels, channels, 3) + bn
    upsample = int(math.log2(scale)) * (conv(channels, 4 * channels, 3) + prelu)
    tail = conv(channels, in_channels, 9)
    return head + num_blocks * block + body_tail + upsample + tail
