"""DPSRGAN generator: SRResNet with an extra dilated convolution in alternating residual blocks.

Paper: DPSRGAN, "Dilation Patch Super-Resolution GAN" — the generator is SRResNet (Ledig et al.,
2017) whose alternating residual blocks carry one extra 3×3 *dilated* convolution to widen the
receptive field cheaply::

    LR ─ head (9×9 conv, PReLU) ─┬─ body (B residual blocks) ─ body_tail (3×3 conv, BN) ─(+)─┐
                                 └──────────────────── global skip ─────────────────────────┘
       ─ upsampler (log2(scale) × [3×3 conv → PixelShuffle ×2 → PReLU]) ─ tail (9×9 conv) ─ SR

    residual block i:  x ─ 3×3 conv ─ BN ─ PReLU ─ 3×3 conv ─ BN ─[3×3 conv, dilation d]─(+)─
                       └─────────────────────────────── skip ───────────────────────────┘
                       (the dilated conv only in blocks 0, 2, 4, ...)

Where we deviate from, or pin down, the paper:

- "dilation rate 1" in the paper means one pixel gap between taps, which is ``dilation=2`` in
  PyTorch (``dilation=1`` is a plain conv and widens nothing). ``dilation`` is a parameter;
  ``dilation=None`` drops the extra convs, which leaves exactly SRResNet (``models/srresnet.py``).
- The paper does not draw where in the block the extra conv sits; we append it to the residual
  branch, after the second BN, so the block is SRResNet's plus one layer and the skip is intact.
- The upsampler convs are ICNR-initialised (Aitken et al., 2017): at initialisation each
  PixelShuffle stage is a nearest-neighbour upsampling of a learned conv, so training starts free
  of checkerboard artefacts.
- Input and output are float NCHW in [0, 1]; the output is *not* clamped (inference clamps).
- ``bicubic_skip=True`` (our default in params, off in the paper's form) adds a MATLAB-bicubic
  upsampling of the input to the output and zero-initialises the tail conv, so the network
  predicts the detail bicubic misses and starts exactly at the bicubic baseline. Measured on
  photographs no stage saw (benchmarks/convergence.py): the paper's form is still far below
  bicubic after minutes of CPU training, this form is above it from the first hundreds of steps.
  The skip has no weights (``models/bicubic.py``), so checkpoints of both forms share keys.

Module names (``head``, ``body``, ``body_tail``, ``upsampler``, ``tail``) are state_dict keys
and so part of the checkpoint format: do not rename them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.models.bicubic import BicubicUpsample
from dpsrgan.models.checks import require_ints

VALID_SCALES = (2, 4, 8)
CONFIG_KEYS = ("scale", "channels", "num_blocks", "dilation", "in_channels", "bicubic_skip")


class ResidualBlock(nn.Module):
    """SRResNet block (conv, BN, PReLU, conv, BN, skip), optionally with a dilated conv appended
    to the residual branch. Shape-preserving: N×C×H×W → N×C×H×W for any H, W."""

    def __init__(self, channels: int, dilation: int | None) -> None:
        super().__init__()
        # Registration order is forward order: Generator.receptive_field walks the modules.
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.dilated = (
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
            if dilation is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        if self.dilated is not None:
            residual = self.dilated(residual)
        return x + residual


class UpsampleBlock(nn.Module):
    """×2 sub-pixel upsampling: 3×3 conv to 4C channels, PixelShuffle(2), PReLU.
    N×C×H×W → N×C×2H×2W. The conv is ICNR-initialised (see :func:`icnr_`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)
        icnr_(self.conv.weight, self.conv.bias, upscale=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


@torch.no_grad()
def icnr_(weight: torch.Tensor, bias: torch.Tensor | None, upscale: int) -> None:
    """ICNR init in place: Kaiming-initialise one kernel per output channel of the PixelShuffle,
    then repeat it for its ``upscale²`` sub-pixel channels, so all sub-pixels start equal.

    PixelShuffle sends input channel ``c·r² + k`` to sub-pixel ``k`` of output channel ``c``,
    hence ``repeat_interleave`` along the output-channel axis.
    """
    sub_pixels = upscale**2
    out_channels, *rest = weight.shape
    kernel = torch.empty(out_channels // sub_pixels, *rest, dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_normal_(kernel, nonlinearity="relu")
    weight.copy_(kernel.repeat_interleave(sub_pixels, dim=0))
    if bias is not None:
        bias.zero_()


class Generator(nn.Module):
    """DPSRGAN generator. ``forward``: float N×in_channels×H×W in [0, 1] → N×in_channels×sH×sW
    (s = ``scale``), unclamped. Fully convolutional: any H, W ≥ 1, odd sizes included.

    Args:
        scale: 2, 4 (the paper) or 8; one PixelShuffle ×2 stage per factor of two.
        channels: feature width (64 in SRResNet).
        num_blocks: residual blocks (16 in SRResNet); blocks 0, 2, 4, ... get the dilated conv.
        dilation: PyTorch dilation of the extra conv; 2 is the paper's "rate 1". None: no extra
            conv at all, i.e. SRResNet (see :func:`dpsrgan.models.srresnet.srresnet`).
        in_channels: image channels (3 for RGB).
        bicubic_skip: predict a residual over MATLAB-bicubic upsampling of the input, with the
            tail conv zero-initialised (starts at bicubic). False is the paper's form.
    """

    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        num_blocks: int = 16,
        dilation: int | None = 2,
        in_channels: int = 3,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__()
        _check_config(scale, channels, num_blocks, dilation, in_channels)
        if not isinstance(bicubic_skip, bool):
            raise DpsrganError(f"generator bicubic_skip must be true or false, got {bicubic_skip!r}")
        self._config = {
            "scale": scale,
            "channels": channels,
            "num_blocks": num_blocks,
            "dilation": dilation,
            "in_channels": in_channels,
            "bicubic_skip": bicubic_skip,
        }
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(
            *(ResidualBlock(channels, dilation if i % 2 == 0 else None) for i in range(num_blocks))
        )
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsampler = nn.Sequential(*(UpsampleBlock(channels) for _ in range(int(math.log2(scale)))))
        self.tail = nn.Conv2d(channels, in_channels, 9, padding=4)
        self.bicubic = BicubicUpsample(scale, in_channels) if bicubic_skip else None
        if bicubic_skip:  # start at bicubic: the residual branch outputs zero until it learns
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Generator:
        """Build from :attr:`config` (plain data, e.g. read from a checkpoint). A config without
        ``bicubic_skip`` (checkpoints written before it existed) is the paper's form."""
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise DpsrganError(
                f"generator config has unknown keys {unknown}; valid keys: {', '.join(CONFIG_KEYS)}"
            )
        return cls(**config)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # Receptive field (LR px): head 9; each block +4, dilated blocks +2d more; 112 in all by default.
        features = self.head(lr)  # N×C×H×W
        features = features + self.body_tail(self.body(features))  # global skip
        sr = self.tail(self.upsampler(features))  # N×in×sH×sW
        if self.bicubic is not None:
            sr = sr.float() + self.bicubic(lr)  # residual over bicubic (float32: it carries the image)
        return sr

    @property
    def config(self) -> dict[str, int | bool | None]:
        """The constructor arguments as plain data (a copy): ``Generator.from_config`` inverts it."""
        return dict(self._config)

    @property
    def scale(self) -> int:
        return self._config["scale"]

    @property
    def receptive_field(self) -> int:
        """Width (= height) in LR pixels of the input window one output pixel depends on."""
        return max(high - low + 1 for low, high in self._input_windows())

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context an output pixel needs on each side of the LR pixel it lies in:
        a tile padded by this many LR pixels upscales exactly as the whole image does."""
        return max(max(-low, high) for low, high in self._input_windows())

    def _input_windows(self) -> list[tuple[int, int]]:
        """For each sub-pixel phase p of an output pixel inside LR pixel 0, the LR interval
        [low, high] (one axis) that reaches it along the longest path (the skips are shorter).

        Walks the convs and PixelShuffles backwards from the output: a conv widens the interval
        by dilation·(kernel−1)/2 on each side at its own resolution, a PixelShuffle ×r maps
        position x to ⌊x/r⌋.
        """
        layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.PixelShuffle))]
        windows = []
        for phase in range(self.scale):
            low = high = phase
            for layer in reversed(layers):
                if isinstance(layer, nn.PixelShuffle):
                    low, high = low // layer.upscale_factor, high // layer.upscale_factor
                else:
                    reach = layer.dilation[0] * (layer.kernel_size[0] - 1) // 2
                    low, high = low - reach, high + reach
            windows.append((low, high))
        return windows


def _check_config(scale: int, channels: int, num_blocks: int, dilation: int | None, in_channels: int) -> None:
    if scale not in VALID_SCALES:
        raise DpsrganError(f"generator scale must be one of {list(VALID_SCALES)}, got {scale!r}")
    optional = {} if dilation is None else {"dilation": dilation}  # None: no extra conv (SRResNet)
    require_ints("generator", channels=channels, num_blocks=num_blocks, in_channels=in_channels, **optional)
