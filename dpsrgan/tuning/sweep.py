"""The tune stage's orchestration: measure the bar (the pretrained generator on the valid split),
run the Ray Tune search (ASHA over GAN fine-tune trials on Ray Train) and pick the best trial.

With ``tune.enabled: false`` nothing runs: the params' own knobs are the choice (best.py)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError
from dpsrgan.tuning.best import BestConfig, params_choice
from dpsrgan.tuning.objective import Bounds, Reference
from dpsrgan.tuning.report import TABLE_COLUMNS, finish_child_runs, log_sweep, objective_plot, trial_rows
from dpsrgan.tuning.trial import TIME_ATTR, TrialContext, run_trial

logger = logging.getLogger("dpsrgan.tuning")


@dataclass(frozen=True)
class SweepResult:
    """Everything the tune stage writes (with the sweep off: no rows, a plot that says so, no run)."""

    best: BestConfig
    table: pd.DataFrame
    plot_png: bytes
    parent_run_id: str | None


def trial_params(params: Params) -> Params:
    """The params a trial trains with: ``tune.workers_per_trial`` workers for ``tune.epochs`` epochs."""
    return params.model_copy(
        update={
            "ray": params.ray.model_copy(update={"num_workers": params.tune.workers_per_trial}),
            "gan": params.gan.model_copy(update={"epochs": params.tune.epochs}),
        }
    )


def run_sweep(params: Params, data_dir: Path, pretrained: Path) -> SweepResult:
    """Run the whole search and pick the trial with the lowest final objective."""
    if not params.tune.enabled:
        note = "tune.enabled: false, no sweep: train_gan uses loss.adv_weight, gan.lr_g and gan.lr_d as set"
        logger.info("tune: %s", note)
        return SweepResult(params_choice(params), pd.DataFrame(columns=TABLE_COLUMNS), objective_plot(pd.DataFrame(), note), None)

    from dpsrgan.cluster.runtime import ray_session
    from dpsrgan.lifecycle.tracking import end_stage_run, start_stage_run
    from dpsrgan.training.inputs import inspect_inputs
    from dpsrgan.training.trainer import check_stage_resources
    from dpsrgan.tuning.reference import reference_metrics
    from dpsrgan.tuning.space import sweep_name, trial_concurrency

    tp, per_trial = params.tune, trial_params(params)
    inputs = inspect_inputs("gan", per_trial, data_dir, pretrained)
    if not inputs.valid_ids:
        raise DpsrganError(f"{data_dir}/valid: no validation images; the tune objective is measured on them")
    crop = params.evaluate.crop_border if params.evaluate.crop_border is not None else params.degrade.scale
    reference = reference_metrics(pretrained, inputs.data_dir / "valid", inputs.valid_ids, params.degrade.scale, crop)
    bounds = Bounds(tp.psnr_floor_db, tp.max_color_shift, tp.min_hf_gain)
    name = sweep_name(params, inputs.hashes)
    logger.info(
        "tune %s: the pretrained generator on the valid split: PSNR-Y %.3f dB, HF energy %.3f",
        name, reference.psnr_y, reference.hf_ratio,
    )
    with ray_session(params.ray.address, log_to_driver=params.ray.log_to_driver) as mode:
        resources = check_stage_resources(per_trial.ray, mode)
        concurrency = trial_concurrency(params, resources.get("CPU", 0.0))
        run = start_stage_run(
            params.mlflow.experiment,
            name,
            {key: getattr(params, key).model_dump(mode="json") for key in ("tune", "gan", "loss", "model")},
            {
                "stage": "tune",
                "tune.reference_psnr_y": f"{reference.psnr_y:.4f}",
                "tune.reference_hf_ratio": f"{reference.hf_ratio:.4f}",
                "tune.concurrency": str(concurrency),
                **{f"input.{key}_sha256": value for key, value in inputs.hashes.items()},
            },
        )
        status = "FAILED"
        try:
            context = _trial_context(params, per_trial, inputs, name, reference, bounds, run)
            results = _fit(params, context, concurrency)
            table = trial_rows(results, params)
            finish_child_runs(run.tracking_uri, run.experiment_id, run.run_id, results, table)
            best = choose(table, name, tp.objective, reference)
            plot = objective_plot(table, tp.objective)
            log_sweep(run, best, table, plot)
            status = "FINISHED"
        finally:
            end_stage_run(run, status)
    logger.info(
        "tune %s: best adv_weight %.3g (objective %.4g, trial %s, within bounds: %s; spread %s)",
        name, best.adv_weight, best.objective, best.trial, best.within_bounds,
        "n/a" if best.objective_spread is None else f"{best.objective_spread:.4g}",
    )
    return SweepResult(best, table, plot, run.run_id)


def _trial_context(
    params: Params, per_trial: Params, inputs: Any, name: str, reference: Reference, bounds: Bounds, run: Any
) -> TrialContext:
    """What every trial shares: the GAN stage's worker spec (pretrained weights put once in the
    object store), the trials' own storage folder, the bar and the MLflow parent run."""
    import ray

    from dpsrgan.data.placement import this_node
    from dpsrgan.training.spec import RunHandles
    from dpsrgan.training.trainer import worker_spec

    spec = worker_spec("gan", per_trial, inputs, name, RunHandles(pretrained=ray.put(inputs.pretrained_state)))
    return TrialContext(
        sweep=name,
        spec=spec,
        ray_params=per_trial.ray.model_copy(
            update={"storage_path": f"{params.ray.storage_path.rstrip('/')}/{name}-trials"}
        ),
        inputs=replace(inputs, pretrained_state=None, data_node=this_node()),
        objective=params.tune.objective,
        reference=reference,
        bounds=bounds,
        tracking_uri=run.tracking_uri,
        experiment_id=run.experiment_id,
        parent_run_id=run.run_id,
    )


def _fit(params: Params, context: TrialContext, concurrency: int) -> Any:
    """Ray Tune's search: the params' own knobs first, then log-uniform samples, ASHA stopping."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from dpsrgan.cluster.runtime import keep_credentials_out_of_trial_env
    from dpsrgan.training.trainer import storage_target
    from dpsrgan.tuning.progress import trial_progress_callback
    from dpsrgan.tuning.space import first_trials, search_space

    tp = params.tune
    storage_path, filesystem = storage_target(params.ray)
    keep_credentials_out_of_trial_env()
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(run_trial, context=context), {"cpu": tp.cpus_per_trial}),
        param_space=search_space(params),
        tune_config=tune.TuneConfig(
            metric="objective",
            mode="min",
            num_samples=tp.num_samples,
            search_alg=BasicVariantGenerator(
                points_to_evaluate=first_trials(params), random_state=tp.seed, max_concurrent=concurrency
            ),
            scheduler=tune.schedulers.ASHAScheduler(
                time_attr=TIME_ATTR,
                max_t=tp.epochs,
                grace_period=min(tp.grace_period, tp.epochs),
                reduction_factor=tp.reduction_factor,
            ),
        ),
        run_config=tune.RunConfig(
            name=context.sweep,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            verbose=0,
            callbacks=[trial_progress_callback(tp.num_samples, tp.epochs, concurrency)],
        ),
    )
    return tuner.fit()


def choose(table: pd.DataFrame, name: str, objective: str, reference: Reference) -> BestConfig:
    """The trial with the lowest objective (the table is sorted by it), with its evidence and the
    spread of the objective among the trials that kept the bounds (is the search telling weights apart?)."""
    scored = table.dropna(subset=["objective"])
    if scored.empty:
        errors = "; ".join(sorted(set(table["error"]) - {""}))[:400]
        raise DpsrganError(f"tune {name}: no trial reported an objective ({errors or 'see Ray logs'})")
    top = scored.iloc[0]
    kept = scored[scored["within_bounds"]]
    spread = float(kept["objective"].max() - kept["objective"].min()) if len(kept) >= 2 else None
    val_columns = ("val_psnr_y", "val_hf_ratio", "val_color_shift_max", "val_perceptual")
    return BestConfig(
        adv_weight=float(top["adv_weight"]),
        lr_g=float(top["lr_g"]),
        lr_d=float(top["lr_d"]),
        source="sweep",
        objective_kind=objective,
        objective=float(top["objective"]),
        within_bounds=bool(top["within_bounds"]),
        trial=str(top["trial"]),
        val={column.removeprefix("val_"): float(top[column]) for column in val_columns if not math.isnan(top[column])},
        reference={"psnr_y": reference.psnr_y, "hf_ratio": reference.hf_ratio},
        objective_spread=spread,
    )
