"""An image as arrays (:class:`Planes`) and the torch-free parts of upscaling them: the value
range of each dtype, and the bicubic alpha plane. Shared by the torch engine
(:mod:`dpsrgan.inference.engine`) and the exported-model backends
(:mod:`dpsrgan.inference.exported`), which must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from dpsrgan.errors import DpsrganError

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights, Pillow's own RGB → L conversion: grayscale in → grayscale out."""


@dataclass
class Planes:
    """An image as arrays: ``color`` H×W×C with C = 1 (gray) or 3 (RGB), ``alpha`` H×W or None.
    Integer dtypes use their full range (uint8: 255, uint16: 65535); floats are in [0, 1]."""

    color: np.ndarray
    alpha: np.ndarray | None = None


def full_scale(dtype: np.dtype) -> float:
    """The value that means 1.0 for an image dtype."""
    match np.dtype(dtype):
        case np.uint8:
            return 255.0
        case np.uint16:
            return 65535.0
        case dt if np.issubdtype(dt, np.floating):
            return 1.0
    raise DpsrganError(f"image arrays must be uint8, uint16 or float in [0, 1], got dtype {dtype}")


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic ×scale of an H×W alpha plane, clamped and returned in its own dtype."""
    top = full_scale(alpha.dtype)
    height, width = alpha.shape
    plane = Image.fromarray(alpha.astype(np.float32) / top)  # mode F
    big = np.asarray(plane.resize((width * scale, height * scale), Image.Resampling.BICUBIC))
    big = np.clip(big, 0.0, 1.0)
    if top == 1.0:
        return big.astype(alpha.dtype)
    return np.rint(big * top).astype(alpha.dtype)
