"""The paper's comparison arms, trained by the same stages as DPSRGAN (Ledig et al., 2017):

- ``srresnet``: SRResNet-16 (no dilated convs), pixel-MSE pretraining with ``pretrain.*``;
- ``srgan``: that SRResNet fine-tuned with SRGAN's discriminator (VGG-style convs + dense head on
  HR alone) with ``gan.*``, the same perceptual + L1 pixel terms as DPSRGAN (``loss.*``) and
  SRGAN's fixed adversarial weight ``baselines.srgan_adv_weight`` (no tune sweep).

An arm is DPSRGAN's params with the arm's model swapped in (:func:`arm_params`), so data, budget,
seeds and every other knob are the same by construction. ``bicubic_skip`` follows
``model.bicubic_skip`` for every arm (like with like). With ``baselines.enabled: false`` the
stages write :data:`ARM_FILE` saying so and train nothing; evaluate reads that and marks the row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpsrgan.atomic_io import write_json_atomic
from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError

ARMS = {"srresnet": "pretrain", "srgan": "gan"}
"""Baseline arm → the training stage that builds it."""
ARM_FILE = "arm.json"
"""In each arm's output directory: what was trained (or why nothing was)."""
GENERATOR_FILE = "generator.pt"
DISCRIMINATOR_FILE = "discriminator.pt"
OFF_REASON = "off (baselines.enabled=false)"


def arm_params(params: Params, arm: str) -> Params:
    """DPSRGAN's params with ``arm``'s model (and SRGAN's adversarial weight) swapped in."""
    if arm not in ARMS:
        raise DpsrganError(f"unknown baseline arm {arm!r}; valid arms: {', '.join(ARMS)}")
    model = {"dilation": None, "discriminator": "srgan" if arm == "srgan" else params.model.discriminator}
    if arm == "srgan":
        model["d_spectral_norm"] = False  # SRGAN's published discriminator: BN, no SN
    update: dict[str, Any] = {"model": params.model.model_copy(update=model)}
    if arm == "srgan":
        update["loss"] = params.loss.model_copy(update={"adv_weight": params.baselines.srgan_adv_weight})
    return params.model_copy(update=update)


def write_arm_record(out_dir: Path, arm: str, trained: bool, **details: Any) -> Path:
    """``out_dir/arm.json``: the arm, whether it was trained, and details (run, steps, reason)."""
    record = {"arm": arm, "trained": trained, **details}
    if not trained:
        record.setdefault("reason", OFF_REASON)
    return write_json_atomic(Path(out_dir) / ARM_FILE, record)


def read_arm_record(out_dir: Path) -> dict[str, Any]:
    """An arm's record; a directory without one is an error naming the stage to run."""
    path = Path(out_dir) / ARM_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DpsrganError(f"{path}: unreadable baseline record ({error}); run dvc repro") from None


def params_or_stand_down(params: Params, arm: str | None, out: Path, metrics: Path) -> Params | None:
    """A training stage's params: DPSRGAN's (``arm`` None), the arm's, or None for a baseline arm
    with ``baselines.enabled: false``, after writing its 'off' record and metrics (nothing trains)."""
    if arm is None:
        return params
    if not params.baselines.enabled:
        write_arm_record(Path(out).parent, arm, trained=False)
        write_json_atomic(metrics, {"trained": False})
        return None
    return arm_params(params, arm)
