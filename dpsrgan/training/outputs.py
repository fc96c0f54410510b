"""Turn a finished run's final training state into the stage's files: the generator (the EMA
copy when there is one) and discriminator checkpoints, the per-epoch history CSV that
``dvc plots`` draws, and the final metrics JSON that ``dvc metrics`` reads. Every write is
atomic (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dpsrgan.atomic_io import write_text_atomic
from dpsrgan.checkpoint import atomic_torch_save, save_generator
from dpsrgan.models.generator import Generator

DISCRIMINATOR_FORMAT = "dpsrgan-discriminator"
_COLUMN_ORDER = ("epoch", "global_step", "loss/", "d/", "val/", "perf/", "lr_scale")


def export_generator(state: Mapping[str, Any], path: str | os.PathLike, **provenance: Any) -> Path:
    """The evaluated generator (EMA weights when the run kept an EMA) as a generator checkpoint."""
    model = Generator.from_config(state["meta"]["generator"])
    weights = state["ema"]["weights"] if "ema" in state else state["generator"]
    model.load_state_dict(weights)
    return save_generator(model, path, weights="ema" if "ema" in state else "online", **provenance)


def export_discriminator(state: Mapping[str, Any], path: str | os.PathLike, **provenance: Any) -> Path:
    """The discriminator's weights + architecture (``build_discriminator(architecture)``)."""
    return atomic_torch_save(
        {
            "format": DISCRIMINATOR_FORMAT,
            "format_version": 1,
            "architecture": dict(state["meta"]["discriminator"]),
            "state_dict": dict(state["discriminator"]),
            "provenance": provenance,
        },
        path,
    )


def _column_rank(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(_COLUMN_ORDER):
        if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
            return rank, name
    return len(_COLUMN_ORDER), name


def csv_column(name: str) -> str:
    """History key → CSV column (``val/psnr_y`` → ``val_psnr_y``: plain names for plot specs)."""
    return name.replace("/", "_")


def write_history_csv(history: Sequence[Mapping[str, float]], path: str | os.PathLike) -> Path:
    """One row per epoch: losses, D means, validation PSNR/SSIM-Y, samples/s."""
    keys = sorted({key for row in history for key in row}, key=_column_rank)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_column(key) for key in keys])
    for row in history:
        writer.writerow([_cell(row.get(key)) for key in keys])
    return write_text_atomic(path, buffer.getvalue())


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return str(int(value)) if isinstance(value, float) else str(value)


def final_metrics(state: Mapping[str, Any]) -> dict[str, Any]:
    """The summary ``dvc metrics`` shows: last epoch's validation, losses, run facts."""
    progress = state["progress"]
    last = progress["history"][-1] if progress["history"] else {}
    metrics: dict[str, Any] = {
        "epochs": progress["epoch"],
        "steps": progress["global_step"],
        "restarts": len(progress["starts"]) - 1,
        "guard_restores": progress["guard_restores"],
    }
    val = {key.removeprefix("val/"): value for key, value in last.items() if key.startswith("val/")}
    if "psnr_y" in val and "psnr_y_bicubic" in val:
        val["psnr_y_gain_over_bicubic"] = val["psnr_y"] - val["psnr_y_bicubic"]
    if val:
        metrics["val"] = {key: round(value, 5) for key, value in val.items()}
    train = {csv_column(key): value for key, value in last.items() if key.startswith(("loss/", "d/"))}
    if train:
        metrics["train"] = {key: round(value, 6) for key, value in train.items()}
    return metrics


def write_metrics_json(metrics: Mapping[str, Any], path: str | os.PathLike) -> Path:
    return write_text_atomic(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
