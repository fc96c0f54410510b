"""Small real models and images for the inference tests (no downloads, all on CPU)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dpsrgan.models.generator import Generator


def tiny_generator(seed: int = 0) -> Generator:
    """8 channels, 2 blocks, x4, random init; BN running stats randomised so that eval-mode
    BN is a real per-channel affine map, not the identity."""
    torch.manual_seed(seed)
    model = Generator(scale=4, channels=8, num_blocks=2)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def smooth_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 H×W×3: gradients, a blob and mild noise — photograph-like, not flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.08)
        channels.append(0.5 + 0.25 * (a * x + b * y) + 0.3 * c * blob + 0.02 * rng.standard_normal(x.shape))
    return (np.clip(np.stack(channels, -1), 0, 1) * 255).round().astype(np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


class NearestUpsample(nn.Module):
    """A pointwise x2 'model' (receptive radius 0): any tiling must reproduce it exactly, so it
    isolates the tiling geometry and the blend weights from model context effects."""

    scale = 2
    receptive_radius = 0

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(self.mix(x), scale_factor=2, mode="nearest")


class BrokenUnderReducedPrecision(nn.Module):
    """x2 sub-pixel conv that returns NaN (or zeros: 'blank') when run under bf16 autocast —
    the failure modes the precision check must catch."""

    scale = 2
    receptive_radius = 1

    def __init__(self, failure: str = "nan") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.failure = failure

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.conv(x))
        if y.dtype == torch.bfloat16:
            return y * float("nan") if self.failure == "nan" else torch.zeros_like(y)
        return y
