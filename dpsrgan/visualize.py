"""Pictures for people: LR | bicubic | SR | HR comparison grids, and loss / metric curves.

Inputs are uint8 H×W×3 arrays (grids) or the per-epoch history rows the training stages write;
outputs are PNG bytes, so callers decide where they go (MLflow artifacts, DVC plots, files).
Matplotlib runs on its non-interactive Agg backend (no display needed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLUMNS = ("LR", "bicubic", "SR", "HR")
LABEL_HEIGHT = 14
GAP = 2


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def comparison_grid(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> bytes:
    """One row per image: (LR, bicubic, SR, HR) uint8 H×W×3 → a labelled PNG.

    LR is shown nearest-neighbour enlarged to the HR size, so its pixels stay visible; rows may
    have different sizes (each cell is as large as its HR image).
    """
    if not rows:
        raise ValueError("comparison_grid needs at least one row")
    cell_w = max(row[3].shape[1] for row in rows)
    heights = [row[3].shape[0] for row in rows]
    width = len(COLUMNS) * cell_w + (len(COLUMNS) - 1) * GAP
    height = LABEL_HEIGHT + sum(heights) + GAP * (len(rows) - 1)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(COLUMNS):
        draw.text((column * (cell_w + GAP) + 2, 1), label, fill="black")
    top = LABEL_HEIGHT
    for row, row_height in zip(rows, heights, strict=True):
        hr_h, hr_w = row[3].shape[:2]
        for column, image in enumerate(row):
            cell = Image.fromarray(image)
            if cell.size != (hr_w, hr_h):
                cell = cell.resize((hr_w, hr_h), Image.Resampling.NEAREST)
            canvas.paste(cell, (column * (cell_w + GAP), top))
        top += row_height + GAP
    return _png(canvas)


def history_plot(history: Sequence[Mapping[str, float]], title: str) -> bytes:
    """Per-epoch curves: losses (log scale), then validation PSNR-Y and SSIM-Y against bicubic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    losses = sorted({key for row in history for key in row if key.startswith("loss/")})
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=100)
    for key in losses:
        axes[0].plot(
            epochs, [row.get(key, np.nan) for row in history], marker="o", label=key.removeprefix("loss/")
        )
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log", title="losses")
    axes[0].legend(fontsize=8)
    for axis, metric, unit in ((axes[1], "psnr_y", "PSNR-Y (dB)"), (axes[2], "ssim_y", "SSIM-Y")):
        axis.plot(epochs, [row.get(f"val/{metric}", np.nan) for row in history], marker="o", label="SR")
        axis.plot(
            epochs, [row.get(f"val/{metric}_bicubic", np.nan) for row in history], ls="--", label="bicubic"
        )
        axis.set(xlabel="epoch", ylabel=unit, title=f"validation {unit}")
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
