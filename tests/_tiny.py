"""Tiny real artefacts shared by the evaluation / registry / serving / tune tests: generators
with 8 channels and 2 blocks saved with ``save_generator``, and Parquet shards in the degrade
stage's schema, made of smooth synthetic photographs (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dpsrgan.checkpoint import save_generator
from dpsrgan.data.shards import Row, encode_png, write_split
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.models.generator import Generator

SCALE = 4


def tiny_generator(seed: int) -> Generator:
    torch.manual_seed(seed)
    return Generator(scale=SCALE, channels=8, num_blocks=2).eval()


def save_tiny_generator(path: Path, seed: int) -> Path:
    return save_generator(tiny_generator(seed), path, seed=seed, purpose="test")


def smooth_image(seed: int, size: int) -> np.ndarray:
    """A uint8 RGB image of a few random gradients and blobs: photograph-like statistics."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        cx, cy, r = rng.uniform(0.2, 0.8, 3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.05 + 0.1 * r))
        channels.append(0.5 + 0.25 * (a * x + b * y) + 0.3 * c * blob)
    image = np.stack(channels, axis=-1)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def write_tiny_split(
    out_dir: Path, count: int, size: int = 32, shard_rows: int = 3, seed: int = 0
) -> list[Path]:
    rows = []
    for index in range(count):
        hr = smooth_image(seed + index, size)
        rows.append(
            Row(f"{index:06d}.jpg", encode_png(hr), encode_png(bicubic_downscale(hr, SCALE)), size, size)
        )
    return write_split(rows, out_dir, shard_rows)
