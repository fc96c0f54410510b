"""From one decoded photograph to HR/LR pairs: the geometry of each source, then degradation.

- CelebA face: centre square crop (178x218 → 178x178), MATLAB-bicubic resize to
  ``hr_size`` (the authors resize faces to 128), LR by :func:`dpsrgan.degradation.degrade`.
- Folder train image: HR patches of ``hr_size`` cut on a grid of ``stride`` (raster order), so a
  few large photos give many samples; ids get ``#y{top}x{left}``.
- Folder valid/test image: the whole image, centre-cropped to at most ``eval_max_side`` per
  side and to a multiple of the scale (evaluation on whole images, as in the SR literature).

Each LR gets a seed derived from its id, so the real-world degradation is random per image yet
identical on every rebuild. Everything here is pure and runs in worker processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dpsrgan.config import DegradeParams
from dpsrgan.data.images import load_rgb
from dpsrgan.data.shards import Row, Split, encode_png
from dpsrgan.degradation import degrade, imresize_uint8

Geometry = Literal["face", "patches", "whole"]


@dataclass(frozen=True, slots=True)
class Task:
    """One input image: its id (stable name), file path, split and how to cut it."""

    id: str
    path: str
    split: Split
    geometry: Geometry


@dataclass(frozen=True)
class PairSettings:
    """Everything a worker needs besides the task (picklable, sent once per chunk)."""

    hr_size: int
    patch_stride: int
    eval_max_side: int
    max_image_pixels: int
    degradation: DegradeParams
    """The params' ``degrade`` section; its ``seed`` is the base of every image's seed."""


def image_seed(base_seed: int, image_id: str) -> int:
    """A non-negative 63-bit seed fixed by the params seed and the image id."""
    digest = hashlib.sha256(f"{base_seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def make_rows(task: Task, settings: PairSettings, content: bytes | None = None) -> list[Row]:
    """Decode ``task``'s image (its file, or the file's ``content`` read elsewhere) and return its
    encoded pairs (raises ``RejectedImage``)."""
    source = Path(task.path) if content is None else content
    image = load_rgb(source, max_pixels=settings.max_image_pixels, min_side=settings.hr_size)
    return [_pair(pair_id, hr, settings) for pair_id, hr in _hr_images(task, image, settings)]


def _hr_images(task: Task, image: np.ndarray, settings: PairSettings) -> Iterator[tuple[str, np.ndarray]]:
    size, scale = settings.hr_size, settings.degradation.scale
    match task.geometry:
        case "face":
            yield task.id, resize_uint8(centre_crop(image, min(image.shape[:2]), min(image.shape[:2])), size)
        case "patches":
            height, width = image.shape[:2]
            for top in range(0, height - size + 1, settings.patch_stride):
                for left in range(0, width - size + 1, settings.patch_stride):
                    yield f"{task.id}#y{top}x{left}", image[top : top + size, left : left + size]
        case "whole":
            height, width = (min(side, settings.eval_max_side) for side in image.shape[:2])
            yield task.id, centre_crop(image, height - height % scale, width - width % scale)


def _pair(pair_id: str, hr: np.ndarray, settings: PairSettings) -> Row:
    hr = np.ascontiguousarray(hr)
    lr = degrade(hr, settings.degradation, image_seed(settings.degradation.seed, pair_id))
    return Row(pair_id, encode_png(hr), encode_png(lr), hr.shape[0], hr.shape[1])


def centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height`` x ``width`` window (the extra pixel of an odd margin goes bottom/right)."""
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def resize_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """MATLAB ``imresize(image, [size size], 'bicubic')`` on uint8, bit for bit (the face HR)."""
    if image.shape[:2] == (size, size):
        return image
    return imresize_uint8(image, output_shape=(size, size))
