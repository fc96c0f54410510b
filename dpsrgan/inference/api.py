"""The Python API: upscale a PIL image, a numpy array or a tensor with any x-scale model."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from dpsrgan.inference.engine import Upscaler, restored_mode
from dpsrgan.inference.images import array_to_planes, from_planes, planes_to_array, to_planes

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray)


def upscale(
    image: ImageLike,
    model: nn.Module,
    *,
    scale: int | None = None,
    tile: int = 0,
    tile_pad: int | None = None,
    overlap: int | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> ImageLike:
    """Super-resolve ``image`` with ``model``; returns the same type, layout and bit depth.

    Args:
        image: a PIL image (any mode; see :mod:`dpsrgan.inference.images` for the mode policy;
            EXIF orientation is applied when reading files, not to in-memory images) or an
            array H×W, H×W×{1,2,3,4} of uint8, uint16 or float in [0, 1].
        model: an image-to-image upscaler, e.g. :class:`dpsrgan.Generator`. It is put in eval
            mode for the call (its mode is restored after) and moved to ``device``.
        scale: the model's factor; default ``model.scale`` or measured on a small probe.
        tile: LR tile size; 0 runs the whole image at once (peak memory grows with the image).
        tile_pad: LR context pixels read around each tile; default the model's receptive
            radius, which makes tiled output equal untiled output.
        overlap: half-width (LR px) of the cross-fade between neighbouring tiles; default 0
            when the pad covers the receptive radius (tiles agree), else ``tile_pad // 2``.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 on native-bf16 CPUs and bf16 GPUs, else fp32), ``fp32``, ``bf16``,
            ``fp16`` (CUDA). A non-finite or blank reduced-precision result is redone in fp32.
    """
    if not isinstance(image, (Image.Image, np.ndarray)):
        raise TypeError(f"upscale takes a PIL image or a numpy array, got {type(image).__name__}")
    with restored_mode(model):
        upscaler = Upscaler.prepare(
            model, scale=scale, tile=tile, tile_pad=tile_pad, overlap=overlap, device=device, precision=precision
        )
        if isinstance(image, Image.Image):
            planes, mode = to_planes(image)
            return from_planes(upscaler.upscale_planes(planes), mode, image.info.get("icc_profile"))
        return planes_to_array(upscaler.upscale_planes(array_to_planes(image)), like=image)


def upscale_tensor(
    lr: torch.Tensor,
    model: nn.Module,
    tile: int = 0,
    tile_pad: int | None = None,
    *,
    scale: int | None = None,
    overlap: int | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> torch.Tensor:
    """N×3×H×W float in [0, 1] → N×3×sH×sW float32 clamped to [0, 1] (not quantised), on
    ``lr``'s device. Same tiling and precision behaviour as :func:`upscale`."""
    with restored_mode(model):
        upscaler = Upscaler.prepare(
            model, scale=scale, tile=tile, tile_pad=tile_pad, overlap=overlap, device=device, precision=precision
        )
        return upscaler.upscale_tensor(lr)
