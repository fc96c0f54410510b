"""The per-batch function of the evaluation, :class:`BatchEvaluator`: it holds the generators,
decodes a batch of test rows (the degrade stage's Parquet schema: ``id``, ``hr``/``lr`` PNG
bytes), super-resolves each LR image every way and measures every result against its HR image
(PSNR/SSIM on Y and RGB with the SR literature's border crop, LPIPS when available) and the time
each method took. Ray Data's actors and the in-process path (:mod:`~dpsrgan.evaluation.run`) and
the sample grid all call this one object, so their numbers cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dpsrgan.data.shards import decode_png
from dpsrgan.degradation import bicubic_upscale
from dpsrgan.errors import DpsrganError
from dpsrgan.evaluation.lpips import load_lpips
from dpsrgan.evaluation.methods import METHODS
from dpsrgan.image_tensors import images_to_tensor, tensor_to_images
from dpsrgan.inference.engine import Upscaler
from dpsrgan.metrics import METRIC_NAMES, color_shift, high_frequency_ratio, image_metrics

EXTRA_METRICS = ("hf_ratio", "color_shift")
"""Beside PSNR/SSIM: high-frequency energy relative to HR (sharpness) and the largest per-channel
mean difference to HR in 0–255 units (colour cast); see :mod:`dpsrgan.metrics`."""


@dataclass(frozen=True)
class EvalSettings:
    """What every evaluating actor needs besides the models."""

    scale: int
    crop_border: int
    tile: int = 0
    lpips: bool = True
    device: str = "auto"


class BatchEvaluator:
    """The per-batch function: a batch of test rows → per-image metric rows for every method.

    A callable class so Ray Data builds it once per actor (models loaded once), and a plain
    object for the in-process path and for the sample grid.
    """

    def __init__(self, generators: Mapping[str, torch.nn.Module], settings: EvalSettings) -> None:
        self.settings = settings
        self.upscalers = {
            method: Upscaler.prepare(generator, tile=settings.tile, device=settings.device, precision="fp32")
            for method, generator in generators.items()
        }
        self.lpips = load_lpips() if settings.lpips else None
        for upscaler in self.upscalers.values():  # warm-up: first-call overheads stay out of the timings
            upscaler.upscale_tensor(torch.zeros(1, 3, 8, 8))

    def super_resolve(
        self, lrs: Sequence[np.ndarray]
    ) -> tuple[dict[str, list[np.ndarray]], dict[str, list[float]]]:
        """Every method's SR image for each LR image, and its forward time in ms per image.

        Networks run on same-sized LR images stacked into one batch (test images may differ in
        size); the batch's time is shared equally among its images.
        """
        count = len(lrs)
        methods = [method for method in METHODS if method == "bicubic" or method in self.upscalers]
        images: dict[str, list[Any]] = {method: [None] * count for method in methods}
        millis: dict[str, list[float]] = {method: [0.0] * count for method in methods}
        for index, lr in enumerate(lrs):
            start = time.perf_counter()
            images["bicubic"][index] = bicubic_upscale(lr, self.settings.scale)
            millis["bicubic"][index] = (time.perf_counter() - start) * 1e3
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, lr in enumerate(lrs):
            groups.setdefault(lr.shape, []).append(index)
        for method, upscaler in self.upscalers.items():
            for indices in groups.values():
                stack = np.stack([lrs[i] for i in indices])
                lr_batch = images_to_tensor(stack)
                start = time.perf_counter()
                sr_batch = upscaler.upscale_tensor(lr_batch)
                per_image = (time.perf_counter() - start) * 1e3 / len(indices)
                for i, sr in zip(indices, tensor_to_images(sr_batch), strict=True):
                    images[method][i] = sr
                    millis[method][i] = per_image
        return images, millis

    def _lpips(self, sr: np.ndarray, hr: np.ndarray) -> float:
        if self.lpips is None:
            return float("nan")
        to_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
        return float(self.lpips(to_tensor(sr), to_tensor(hr)).item())

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``{id, hr, lr}`` columns → long-format rows ``{id, method, <metrics>, lpips, ms_per_image}``."""
        ids = [str(value) for value in batch["id"]]
        hrs = [decode_png(bytes(value)) for value in batch["hr"]]
        lrs = [decode_png(bytes(value)) for value in batch["lr"]]
        images, millis = self.super_resolve(lrs)
        rows: dict[str, list[Any]] = {
            key: [] for key in ("id", "method", *METRIC_NAMES, *EXTRA_METRICS, "lpips", "ms_per_image")
        }
        for method in images:
            for index, image_id in enumerate(ids):
                sr, hr = images[method][index], hrs[index]
                if sr.shape != hr.shape:
                    raise DpsrganError(
                        f"test image {image_id}: SR {sr.shape} vs HR {hr.shape}; "
                        "the shards' LR must be HR/scale (re-run the degrade stage)"
                    )
                scores = image_metrics(sr, hr, self.settings.crop_border)
                rows["id"].append(image_id)
                rows["method"].append(method)
                for name in METRIC_NAMES:
                    rows[name].append(scores[name])
                rows["hf_ratio"].append(high_frequency_ratio(sr, hr, self.settings.crop_border))
                rows["color_shift"].append(color_shift(sr, hr, self.settings.crop_border))
                rows["lpips"].append(self._lpips(sr, hr))
                rows["ms_per_image"].append(millis[method][index])
        return {
            key: np.asarray(values, dtype=object if key in ("id", "method") else np.float64)
            for key, values in rows.items()
        }
