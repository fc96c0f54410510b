"""``outputs/tune/best.json``: the GAN knobs the tune stage chose, with the evidence; train_gan
applies them at its config boundary (:func:`apply_best_config`), so after loading nothing
downstream can tell a tuned value from a param.

With ``tune.enabled: false`` the tune stage writes the params' own values (``source: params``):
``loss.adv_weight``, ``gan.lr_g`` and ``gan.lr_d`` are then what train_gan trains with, and the
sweep's numbers are absent. With the sweep on, ``loss.adv_weight`` is its first trial.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError


@dataclass(frozen=True)
class BestConfig:
    """The chosen adversarial weight and learning rates, and how they were chosen."""

    adv_weight: float
    lr_g: float
    lr_d: float
    source: Literal["sweep", "params"]
    objective_kind: str
    objective: float | None = None
    within_bounds: bool | None = None
    """Whether the chosen trial kept every bound of the objective (None: no sweep)."""
    trial: str | None = None
    val: dict[str, float] | None = None
    """The chosen trial's last validation metrics (``val/psnr_y``, ``val/hf_ratio``, ...)."""
    reference: dict[str, float] | None = None
    """The pretrained generator on the same valid images (``psnr_y``, ``hf_ratio``)."""
    objective_spread: float | None = None
    """Largest minus smallest objective among the trials that kept the bounds (None: fewer than two)."""

    def to_json(self) -> dict:
        return asdict(self)


def params_choice(params: Params) -> BestConfig:
    """The sweep switched off: the params' own values."""
    return BestConfig(
        adv_weight=params.loss.adv_weight,
        lr_g=params.gan.lr_g,
        lr_d=params.gan.lr_d,
        source="params",
        objective_kind=params.tune.objective,
    )


def read_best_config(path: str | Path) -> BestConfig:
    """Load the tune stage's choice (train_gan's ``--best-config``)."""
    try:
        return BestConfig(**json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise DpsrganError(f"{path}: not a tune best-config ({error}); re-run the tune stage (dvc repro tune)") from None


def with_gan_knobs(params: Params, adv_weight: float, lr_g: float, lr_d: float, **gan: object) -> Params:
    """``params`` with the tuned knobs (``loss.adv_weight``, ``gan.lr_g``, ``gan.lr_d``) and any
    other ``gan.*`` fields replaced."""
    return params.model_copy(
        update={
            "loss": params.loss.model_copy(update={"adv_weight": adv_weight}),
            "gan": params.gan.model_copy(update={"lr_g": lr_g, "lr_d": lr_d, **gan}),
        }
    )


def apply_best_config(params: Params, best: BestConfig) -> Params:
    """``params`` with ``loss.adv_weight``, ``gan.lr_g`` and ``gan.lr_d`` taken from ``best``."""
    return with_gan_knobs(params, best.adv_weight, best.lr_g, best.lr_d)
