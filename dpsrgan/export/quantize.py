"""Post-training int8 quantisation of the OpenVINO model with NNCF, and the quality gate that
decides whether it ships.

Calibration: NNCF collects activation ranges on LR images of the training split (never the
held-out ones). What stays in float (``ignored_scope``), measured on the quickstart generator's
6 held-out photographs (mean ΔPSNR-Y against fp32):

- the bicubic skip and every ``Add``: the final add carries the whole image, and NNCF's int8
  add would round it to 8 bits over a range wider than [0, 1] (−1.74 dB with them quantised);
- the 9×9 head and tail convs: the RGB-facing layers (−0.093 dB with only the adds in float,
  +0.008 dB with head and tail too). They are ~10% of the arithmetic; the 3×3 body and
  upsampler convs, the rest, run in int8.

Gate: on held-out photographs, PSNR-Y (BT.601, border crop = scale, 8-bit outputs as
``dpsrgan upscale`` writes them) of the int8 model minus that of the fp32 model, both run by
OpenVINO in f32; the mean over the images must satisfy |Δ| ≤ :data:`MAX_DELTA_DB`, or the int8
file is not written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpsrgan.data.shards import Sample
from dpsrgan.errors import DpsrganError
from dpsrgan.export.runtime import ExportedModel
from dpsrgan.export.samples import to_image, to_input
from dpsrgan.metrics import psnr

logger = logging.getLogger(__name__)

MAX_DELTA_DB = 0.05
"""Largest allowed |mean ΔPSNR-Y| (int8 − fp32) on held-out photographs, in dB."""
FLOAT_NODES = [r"/bicubic/.*", r"/head/.*", r"/tail/.*"]
"""ONNX node names (the torch module paths) kept in float; see the module docstring."""
FLOAT_TYPES = ["Add"]
CALIBRATION_IMAGES = 64
"""LR images NNCF calibrates on (its default subset is 300; 64 training patches suffice and
keep the export around a minute for the default generator on 2 cores)."""


@dataclass(frozen=True)
class Quality:
    """ΔPSNR-Y of int8 against fp32 on ``images`` held-out photographs (dB; negative = worse)."""

    delta_mean: float
    delta_worst: float
    fp32_psnr_y: float
    images: int

    def line(self) -> str:
        return (
            f"int8 vs fp32 PSNR-Y on {self.images} held-out image(s): mean delta {self.delta_mean:+.3f} dB "
            f"(worst {self.delta_worst:+.3f} dB; fp32 {self.fp32_psnr_y:.2f} dB)"
        )


def quantize(ov_model: Any, calibration: list[Sample]) -> Any:
    """An int8 copy of ``ov_model`` calibrated on the LR side of ``calibration``."""
    import nncf

    inputs = [to_input(sample.lr) for sample in calibration]
    return nncf.quantize(
        ov_model,
        nncf.Dataset(inputs),
        subset_size=len(inputs),
        ignored_scope=nncf.IgnoredScope(patterns=FLOAT_NODES, types=FLOAT_TYPES, validate=False),
    )


def measure(fp32: ExportedModel, int8: ExportedModel, heldout: list[Sample]) -> Quality:
    """PSNR-Y of both models' 8-bit outputs against HR, per image; the int8 − fp32 deltas."""
    scale = fp32.scale
    deltas, base = [], []
    for sample in heldout:
        lr = to_input(sample.lr)
        reference = psnr(to_image(fp32(lr)), sample.hr, crop_border=scale)
        quantised = psnr(to_image(int8(lr)), sample.hr, crop_border=scale)
        deltas.append(quantised - reference)
        base.append(reference)
    worst = max(deltas, key=abs)
    return Quality(float(np.mean(deltas)), float(worst), float(np.mean(base)), len(deltas))


def check(quality: Quality, max_delta_db: float = MAX_DELTA_DB) -> None:
    """One :class:`DpsrganError` line when the int8 model loses more than ``max_delta_db``."""
    if not abs(quality.delta_mean) <= max_delta_db:
        raise DpsrganError(
            f"int8 refused: {quality.line()} exceeds the {max_delta_db:g} dB limit; "
            "nothing was written (use the fp32 export)"
        )
