"""Decode one input photograph into uint8 RGB, or say in a few words why it is unusable.

Decisions (each rejected file is skipped and listed in the manifest with its reason):

- zero bytes, not an image, truncated or corrupt data → rejected;
- more pixels than ``data.max_image_pixels`` → rejected before decoding (decompression bomb);
- CMYK → rejected: without the (absent) ICC profile a conversion guesses the colours, and a
  training target with wrong colours is worse than one image fewer;
- real transparency → rejected (no sensible background); an alpha channel that is fully
  opaque is dropped; grayscale and palette images become RGB; 16-bit and float images rejected;
- shorter side below ``min_side`` (the HR size) → rejected, never upscaled;
- the EXIF orientation is applied, so camera photos are upright.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_CONVERTIBLE = {"RGB", "L", "P", "RGBA", "LA", "PA", "La", "RGBa"}


class RejectedImage(Exception):
    """An input file that cannot become a training/evaluation image; ``str()`` is the reason."""


def configure_pillow(max_pixels: int) -> None:
    """Let our own pixel cap decide (Pillow's global default would refuse at 2 x 89 MP itself).

    Called once per worker process (it sets a Pillow module attribute).
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def load_rgb(source: Path | bytes, *, max_pixels: int, min_side: int) -> np.ndarray:
    """Decode ``source`` (a file, or a file's bytes) into uint8 HWC RGB or raise :class:`RejectedImage`."""
    size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    if size == 0:
        raise RejectedImage("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise RejectedImage(
                    f"decompression bomb guard: {width}x{height} pixels exceed data.max_image_pixels={max_pixels}"
                )
            if image.mode == "CMYK":
                raise RejectedImage("CMYK colour (convert it to RGB, then add it again)")
            if image.mode not in _CONVERTIBLE:
                raise RejectedImage(f"unsupported pixel mode {image.mode} (8-bit RGB or grayscale expected)")
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except Image.DecompressionBombError as error:
        raise RejectedImage(f"decompression bomb guard: {error}") from None
    except UnidentifiedImageError:
        raise RejectedImage("not an image (unrecognised file format)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise RejectedImage(f"truncated or corrupt image data ({error})") from None
    if min(rgb.shape[:2]) < min_side:
        raise RejectedImage(
            f"too small: {rgb.shape[1]}x{rgb.shape[0]}, the shorter side must be >= data.hr_size={min_side}"
        )
    return rgb


def _to_rgb(image: Image.Image) -> np.ndarray:
    if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 255:
            raise RejectedImage("has transparent pixels (flatten it onto a background first)")
        image = rgba
    return np.asarray(image.convert("RGB"))
