"""Image pairs for calibration and the int8 quality gate: uint8 HR and its bicubic ×s LR.

A source is a folder: either a processed split (``data/processed/train``: the degrade stage's
Parquet shards, read with :func:`dpsrgan.data.shards.read_split`) or a folder of photographs,
cropped to a multiple of the scale and downscaled with the degrade stage's MATLAB bicubic.
Calibrate on the train split; judge on held-out photographs (the test split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dpsrgan.data.shards import Sample, read_split, shard_paths
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.errors import DpsrganError
from dpsrgan.image_tensors import images_to_tensor, tensor_to_images
from dpsrgan.metrics import read_rgb

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_pairs(folder: str | Path, scale: int, limit: int | None = None, what: str = "--calibration") -> list[Sample]:
    """Up to ``limit`` HR/LR pairs from ``folder`` (see the module docstring), in a fixed order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DpsrganError(f"{what} {folder}: no such folder; pass a processed split (data/processed/train) or a folder of photographs")
    if shard_paths(folder):
        pairs = []
        for sample in read_split(folder):
            pairs.append(sample)
            if limit is not None and len(pairs) >= limit:
                break
    else:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        pairs = [_photo_pair(path, scale) for path in files[:limit]]
    if not pairs:
        raise DpsrganError(f"{what} {folder}: no images or part-*.parquet shards in it")
    return pairs


def _photo_pair(path: Path, scale: int) -> Sample:
    hr = read_rgb(path)
    height, width = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    if height == 0 or width == 0:
        raise DpsrganError(f"{path}: smaller than the scale {scale}")
    hr = np.ascontiguousarray(hr[:height, :width])
    return Sample(path.name, hr, bicubic_downscale(hr, scale))


def to_input(lr: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 → float32 1×3×H×W in [0, 1] (the generator's input), C-contiguous."""
    return images_to_tensor(lr).contiguous().numpy()


def to_image(sr: np.ndarray) -> np.ndarray:
    """float 1×3×H×W → uint8 H×W×3, clamped and rounded as ``dpsrgan upscale`` writes it."""
    return tensor_to_images(torch.from_numpy(sr))[0]
