"""The evaluate stage's DVC metrics: per method the mean of every per-image measure. The
promotion gate and the MLflow comparison read these numbers, so a method that was not evaluated
gets its status, never a made-up number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dpsrgan.evaluation.evaluator import EXTRA_METRICS
from dpsrgan.evaluation.methods import METHODS
from dpsrgan.metrics import METRIC_NAMES


def summarize(
    per_image: pd.DataFrame,
    costs: Mapping[str, Mapping[str, float]],
    lpips_note: str,
    off: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """DVC metrics: per evaluated method the mean of every metric (and the worst image's colour
    shift, ``color_shift_worst``), its PSNR-Y gain over bicubic on the same images (``psnr_y_gain``: what the promotion gate reads with no champion), ms per
    image and its ``costs`` (parameter counts, GFLOPs); per method that is ``off`` (a baseline
    that was not trained) only its ``status``: no number is made up for it.

    LPIPS appears per method only when it was computed; otherwise ``lpips_note`` says why.
    """
    summary: dict[str, Any] = {"test_images": int(per_image["id"].nunique())}
    has_lpips = bool(per_image["lpips"].notna().any())
    bicubic_psnr_y = per_image[per_image["method"] == "bicubic"].set_index("id")["psnr_y"]
    evaluated = set(per_image["method"].astype(str))
    for method in METHODS:
        if method in (off or {}):
            summary[method] = {"status": off[method]}
            continue
        if method not in evaluated:
            continue
        rows = per_image[per_image["method"] == method]
        entry = {name: round(float(rows[name].mean()), 4) for name in (*METRIC_NAMES, *EXTRA_METRICS)}
        entry["color_shift_worst"] = round(float(rows["color_shift"].max()), 4)  # a cast shows on one image
        gains = rows.set_index("id")["psnr_y"] - bicubic_psnr_y
        entry["psnr_y_gain"] = round(float(gains.mean()), 4)
        if has_lpips:
            entry["lpips"] = round(float(rows["lpips"].mean()), 4)
        entry["ms_per_image"] = round(float(rows["ms_per_image"].mean()), 3)
        entry.update(costs.get(method, {}))
        summary[method] = entry
    summary["lpips_note"] = "computed" if has_lpips else lpips_note
    return summary
