"""The sample grid: the first test images super-resolved every way, side by side with LR and HR,
so a reader sees what the table's numbers look like (each cell a 1:1 centre window)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dpsrgan.data.shards import decode_png, iter_encoded_batches
from dpsrgan.evaluation.evaluator import BatchEvaluator

GRID_TITLES = {"bicubic": "bicubic", "srresnet": "SRResNet", "srgan": "SRGAN", "pretrained": "pretrained", "gan": "DPSRGAN"}
GRID_CROP = 192
"""HR pixels per side of the centre window each grid cell shows at 1:1 (whole test photos
would be scaled down by the viewer, hiding exactly the detail the methods differ in)."""


def sample_rows(split_dir: Path, count: int) -> dict[str, list[Any]]:
    """The first ``count`` rows of a split (for the sample grid), in shard order."""
    rows: dict[str, list[Any]] = {"id": [], "hr": [], "lr": []}
    for batch in iter_encoded_batches(split_dir, count):
        for key in rows:
            rows[key].extend(batch[key])
        if len(rows["id"]) >= count:
            break
    return {key: values[:count] for key, values in rows.items()}


def sample_grid(evaluator: BatchEvaluator, rows: Mapping[str, Sequence[Any]]) -> Image.Image:
    """One row per image: LR (nearest-upscaled) | bicubic | [SRResNet | SRGAN |] pretrained |
    DPSRGAN | HR, labelled; each cell the same centre window of at most :data:`GRID_CROP`² HR
    pixels, at 1:1."""
    lrs = [decode_png(bytes(value)) for value in rows["lr"]]
    hrs = [decode_png(bytes(value)) for value in rows["hr"]]
    images, _ = evaluator.super_resolve(lrs)
    titles = ["LR", *(GRID_TITLES[method] for method in images), "HR"]
    gap, header = 4, 16
    windows = [_centre_window(hr.shape[:2], evaluator.settings.scale) for hr in hrs]
    cell_w = max(64, *(right - left for (_, _, left, right) in windows))  # room for the column titles
    heights = [bottom - top for (top, bottom, _, _) in windows]
    canvas = Image.new(
        "RGB", (len(titles) * (cell_w + gap) + gap, header + sum(heights) + gap * (len(hrs) + 1)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        draw.text((gap + column * (cell_w + gap), 2), title, fill="black")
    y = header + gap
    for index, hr in enumerate(hrs):
        top, bottom, left, right = windows[index]
        lr_big = Image.fromarray(lrs[index]).resize((hr.shape[1], hr.shape[0]), Image.Resampling.NEAREST)
        cells = [np.asarray(lr_big), *(images[m][index] for m in images), hr]
        for column, cell in enumerate(cells):
            canvas.paste(Image.fromarray(np.ascontiguousarray(cell[top:bottom, left:right])),
                         (gap + column * (cell_w + gap), y))
        y += heights[index] + gap
    return canvas


def _centre_window(shape: tuple[int, int], scale: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the centre window, aligned to LR pixels."""
    height, width = shape
    side_h, side_w = min(height, GRID_CROP), min(width, GRID_CROP)
    top = (height - side_h) // 2 // scale * scale
    left = (width - side_w) // 2 // scale * scale
    return top, top + side_h, left, left + side_w
