"""Measuring the test split: the generators from their checkpoints (:func:`load_generators`) and
every method's per-image metrics (:func:`evaluate_split`).

The split runs through Ray Data's ``map_batches`` (a pool of actors, each building the models
once, so the work spreads over whatever cluster Ray is attached to), or in-process for tiny runs;
both paths call the same :class:`~dpsrgan.evaluation.evaluator.BatchEvaluator`. On Ray the
checkpoints are loaded here and travel to the actors as weights, and the test shards are read on
this node: both are DVC outs on this node's disk only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dpsrgan.checkpoint import load_generator
from dpsrgan.data.shards import iter_encoded_batches, shard_paths
from dpsrgan.errors import DpsrganError
from dpsrgan.evaluation.evaluator import BatchEvaluator, EvalSettings
from dpsrgan.evaluation.methods import METHODS, REQUIRED
from dpsrgan.metrics import METRIC_NAMES


def load_generators(checkpoints: Mapping[str, str], scale: int) -> dict[str, torch.nn.Module]:
    """Every method's generator (``pretrained`` and ``gan`` required, the baselines optional),
    checked against ``degrade.scale``."""
    missing = set(REQUIRED) - set(checkpoints)
    if missing:
        raise DpsrganError(f"evaluation needs checkpoints for {sorted(missing)}")
    unknown = set(checkpoints) - set(METHODS[1:])
    if unknown:
        raise DpsrganError(f"unknown evaluation methods {sorted(unknown)}; valid: {', '.join(METHODS[1:])}")
    generators = {}
    for method, path in checkpoints.items():
        generators[method] = load_generator(path)
        found = generators[method].config["scale"]
        if found != scale:
            raise DpsrganError(
                f"{method} checkpoint {path} upscales x{found}, but degrade.scale is {scale}; "
                "retrain or fix degrade.scale"
            )
    return generators


def evaluate_split(
    split_dir: Path,
    generators: Mapping[str, torch.nn.Module],
    settings: EvalSettings,
    *,
    batch_size: int,
    use_ray: bool = True,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    cpus_per_read: float = 0.5,
) -> pd.DataFrame:
    """Per-image metrics of every method on one split, long format (one row per image × method).

    ``generators``: from :func:`load_generators`. ``use_ray``: Ray Data actors (an autoscaling
    pool of up to ``actors``, ``cpus_per_actor`` each) on the Ray the caller initialised, fed by
    reads of ``cpus_per_read`` on this node; else in this process (tiny runs and tests).
    """
    shards = shard_paths(split_dir)
    if not shards:
        raise DpsrganError(f"{split_dir}: no Parquet shards; run the degrade stage (dvc repro degrade)")
    if use_ray:
        frame = _evaluate_on_ray(
            shards,
            generators,
            settings,
            batch_size=batch_size,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            cpus_per_read=cpus_per_read,
        )
    else:
        frame = _evaluate_in_process(split_dir, generators, settings, batch_size)
    return _ordered(frame, generators)


def _evaluate_on_ray(
    shards: list[Path],
    generators: Mapping[str, torch.nn.Module],
    settings: EvalSettings,
    *,
    batch_size: int,
    actors: int,
    cpus_per_actor: float,
    cpus_per_read: float,
) -> pd.DataFrame:
    """The split's rows through a pool of :class:`BatchEvaluator` actors (Ray Data)."""
    import ray.data

    from dpsrgan.data.placement import SPREAD, read_local_parquet, this_node

    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = read_local_parquet(shards, ["id", "hr", "lr"], node_id=this_node(), num_cpus=cpus_per_read)
    results = dataset.map_batches(
        BatchEvaluator,
        fn_constructor_kwargs={"generators": generators, "settings": settings},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=cpus_per_actor,
        # A lost actor fails the stage (dvc repro re-runs it) instead of being restarted:
        # Ray keeps a map actor's constructor arguments in the object store and, for a
        # restartable actor, logs an ERROR that a restart could find them gone.
        max_restarts=0,
        **SPREAD,
    )
    return results.to_pandas()


def _evaluate_in_process(
    split_dir: Path, generators: Mapping[str, torch.nn.Module], settings: EvalSettings, batch_size: int
) -> pd.DataFrame:
    """The split's rows through one :class:`BatchEvaluator` in this process."""
    evaluator = BatchEvaluator(generators, settings)
    return pd.concat(
        [pd.DataFrame(evaluator(batch)) for batch in iter_encoded_batches(split_dir, batch_size)],
        ignore_index=True,
    )


def _ordered(frame: pd.DataFrame, generators: Mapping[str, torch.nn.Module]) -> pd.DataFrame:
    """Plain numpy dtypes whichever path ran, rows sorted by method (in :data:`METHODS` order)
    then id."""
    # Ray hands back Arrow-backed columns, where NaN is a value, not a missing one.
    frame = frame.astype(
        {"id": str, **{name: np.float64 for name in (*METRIC_NAMES, "lpips", "ms_per_image")}}
    )
    present = [method for method in METHODS if method == "bicubic" or method in generators]
    frame["method"] = pd.Categorical(frame["method"].astype(str), categories=present, ordered=True)
    return frame.sort_values(["method", "id"], kind="stable").reset_index(drop=True)
