"""What the sweep searches and how wide it runs: the search space (log-uniform adversarial weight,
optionally the learning rates, the params' own weight as the first trial), how many trials fit
the cluster beside one data read, and the sweep's name (a hash of what shapes a trial)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError

logger = logging.getLogger(__name__)

LR_RANGE_FACTOR = 4.0
"""With ``tune.tune_lr``: learning rates searched log-uniformly in [lr / 4, lr × 4]."""


def trial_concurrency(params: Params, cluster_cpus: float) -> int:
    """Concurrent trials that fit ``cluster_cpus`` with one Ray Data read task's CPUs left over.

    Reads queue behind each other in that reserve, which is enough: the trials' compute is what
    should fill the machine (on 2 CPUs: 2 trials of 0.25 + 0.5 CPUs beside one 0.5-CPU read).
    """
    reserve = params.ray.cpus_per_data_task
    per_trial = params.tune.cpus_per_trial + params.tune.workers_per_trial * params.ray.cpus_per_worker
    fits = math.floor((cluster_cpus - reserve) / per_trial + 1e-9)  # 1.5 / 0.75 is 2
    if fits < 1:
        raise DpsrganError(
            "a trial needs tune.cpus_per_trial + tune.workers_per_trial × ray.cpus_per_worker = "
            f"{per_trial:g} CPUs plus ray.cpus_per_data_task = {reserve:g} for data reads, the cluster has "
            f"{cluster_cpus:g}; lower them"
        )
    if fits < params.tune.max_concurrent_trials:
        logger.info(
            "tune: %d concurrent trial(s) fit %g CPUs (tune.max_concurrent_trials is %d)",
            fits,
            cluster_cpus,
            params.tune.max_concurrent_trials,
        )
    return min(fits, params.tune.max_concurrent_trials)


def search_space(params: Params) -> dict[str, Any]:
    from ray import tune

    space: dict[str, Any] = {
        "adv_weight": tune.loguniform(params.tune.adv_weight_min, params.tune.adv_weight_max)
    }
    if params.tune.tune_lr:
        for key in ("lr_g", "lr_d"):
            base = getattr(params.gan, key)
            space[key] = tune.loguniform(base / LR_RANGE_FACTOR, base * LR_RANGE_FACTOR)
    return space


def first_trials(params: Params) -> list[dict[str, float]]:
    """The params' own choice is evaluated first (``loss.adv_weight``, and the learning rates when
    they are searched): the sweep can only improve on what the params say."""
    point = {"adv_weight": params.loss.adv_weight}
    if params.tune.tune_lr:
        point.update(lr_g=params.gan.lr_g, lr_d=params.gan.lr_d)
    return [point]


def sweep_name(params: Params, input_hashes: Mapping[str, str]) -> str:
    """``tune-<hash>`` of the inputs and every param that shapes a trial (a new sweep per change)."""
    payload = {
        "inputs": dict(input_hashes),
        **{key: getattr(params, key).model_dump(mode="json") for key in ("tune", "gan", "loss", "model")},
        "scale": params.degrade.scale,
    }
    return "tune-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
