"""The tune objective (lower is better) of one trial epoch's validation metrics: pure functions.

A GAN trades distortion for perception. Minimising a fidelity loss alone picks
``adv_weight → 0`` (no GAN at all); minimising a perceptual distance or fooling D alone rewards
hallucinated texture. The paper's result is a small PSNR cost (32.24 vs SRResNet's 32.37 dB) for
a large perceptual gain (MOS 3.91 vs 3.02): the most realistic output *subject to* fidelity close
to the MSE-trained generator. So the default objective is a constrained one:

* ``detail_within_bounds`` (default): how far the generator's fine detail is from HR's —
  ``|ln HF energy|`` (HF energy: Laplacian energy of the luma relative to HR, 1 = HR's; an
  MSE-trained generator sits far below 1, invented texture above it) — among trials inside the
  **bounds** the GAN stage must keep (docs/tuning-evaluation-registry.md): PSNR-Y at most
  ``tune.psnr_floor_db`` below the pretrained generator's and never below bicubic's, every valid
  image's colour shift at most ``tune.max_color_shift`` (0–255), and HF energy at least
  ``tune.min_hf_gain`` × the pretrained generator's. It needs no VGG weights, so it means the same
  offline (random VGG) and with ImageNet's.
* ``perceptual_with_psnr_floor``: the validation VGG feature distance (``val/perceptual``) under
  the PSNR bounds only (meaningful with ImageNet VGG weights).
* ``perceptual``: the VGG distance alone; ``psnr``: ``−PSNR-Y`` (a distortion-only search).

A trial outside its bounds scores ``PENALTY · (1 + shortfall)``: behind every trial inside them,
and the less-bad ones first, so the sweep can never prefer a weight that breaks the bounds while
one that keeps them exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dpsrgan.errors import DpsrganError

PENALTY = 1e6
"""Added (× (1 + shortfall)) to a trial's objective outside its bounds."""

ObjectiveKind = Literal["detail_within_bounds", "perceptual_with_psnr_floor", "perceptual", "psnr"]


@dataclass(frozen=True)
class Reference:
    """The pretrained generator on the same valid images, measured as a trial is measured."""

    psnr_y: float
    hf_ratio: float


@dataclass(frozen=True)
class Bounds:
    """What a GAN fine-tune must keep (``tune.psnr_floor_db``, ``max_color_shift``, ``min_hf_gain``)."""

    psnr_floor_db: float
    max_color_shift: float
    min_hf_gain: float


def psnr_shortfall(metrics: Mapping[str, float], reference: Reference, bounds: Bounds) -> float:
    """dB below the PSNR-Y floor: the pretrained generator's minus ``psnr_floor_db``, or bicubic's
    on the same images, whichever is higher (0 when above it)."""
    floor = max(reference.psnr_y - bounds.psnr_floor_db, float(metrics.get("val/psnr_y_bicubic", -math.inf)))
    return max(floor - float(metrics["val/psnr_y"]), 0.0)


def shortfall(metrics: Mapping[str, float], reference: Reference, bounds: Bounds) -> float:
    """How far a trial is outside every bound (0 inside): PSNR-Y dB under its floor + colour shift
    over its maximum (0–255 units) + the relative HF-energy gain missing."""
    color = max(float(metrics["val/color_shift_max"]) - bounds.max_color_shift, 0.0)
    wanted_hf = bounds.min_hf_gain * reference.hf_ratio
    detail = max(wanted_hf - float(metrics["val/hf_ratio"]), 0.0) / wanted_hf if wanted_hf > 0 else 0.0
    return psnr_shortfall(metrics, reference, bounds) + color + detail


def objective_value(
    metrics: Mapping[str, float], kind: ObjectiveKind, reference: Reference, bounds: Bounds
) -> float:
    """The objective of one epoch's ``val/*`` metrics; see the module doc."""
    match kind:
        case "psnr":
            return -float(metrics["val/psnr_y"])
        case "perceptual":
            return float(metrics["val/perceptual"])
        case "perceptual_with_psnr_floor":
            return _penalised(float(metrics["val/perceptual"]), psnr_shortfall(metrics, reference, bounds))
        case "detail_within_bounds":
            gap = abs(math.log(max(float(metrics["val/hf_ratio"]), 1e-12)))
            return _penalised(gap, shortfall(metrics, reference, bounds))
    raise DpsrganError(
        f"tune.objective: unknown {kind!r}; use detail_within_bounds, perceptual_with_psnr_floor, perceptual or psnr"
    )


def _penalised(value: float, outside_by: float) -> float:
    return value + PENALTY * (1.0 + outside_by) if outside_by > 0 else value
