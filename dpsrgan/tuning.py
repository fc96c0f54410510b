"""The tune stage: Ray Tune search over the GAN's adversarial weight (optionally its learning
rates) with ASHA, each trial a short GAN fine-tune from the pretrained generator on Ray Train.

This is the one module that owns Ray Tune's ``Tuner``. A trial is a *function* trainable that
builds the training stage's ``TorchTrainer`` (:func:`dpsrgan.training.trainer.build_trainer`)
with its own run name under the sweep's storage, and a :class:`ObjectiveReportCallback` that
forwards rank 0's per-epoch validation to Tune with the ``objective`` added. ASHA's time
attribute is ``epoch`` (completed epochs, as the loop reports them); trials only report at epoch
ends, so every result carries the objective.

**The objective** (``tune.objective``) — lower is better:

* ``perceptual_with_psnr_floor`` (default): the validation VGG-feature distance
  (``val/perceptual``, the GAN's own content loss measured on held-out images) plus a large
  penalty when validation PSNR-Y falls more than ``tune.psnr_floor_db`` below the pretrained
  generator's, or below bicubic's on the same images, whichever floor is higher. Why: a GAN trades distortion for perception. Minimising PSNR loss alone picks
  ``adv_weight → 0`` (no GAN at all); minimising perceptual distance or D-fooling alone rewards
  hallucinated texture. The paper's result is a small PSNR cost (32.24 vs SRResNet's 32.37 dB)
  for a large perceptual gain (MOS 3.91 vs 3.02), i.e. the best perceptual quality *subject to*
  fidelity close to the MSE baseline — which is this constrained objective; and a model below
  the free baseline (bicubic) is never worth shipping, whatever it looks like. The penalty
  ``PENALTY · (1 + deficit_dB)`` ranks every trial under the floor behind every trial above it,
  and the less-bad ones first.
* ``perceptual``: the VGG distance alone; ``psnr``: ``−PSNR-Y`` (a distortion-only search).

**Sizing**: a trial driver holds ``tune.cpus_per_trial`` CPUs, its Ray Train workers
``tune.workers_per_trial × ray.cpus_per_worker``; concurrency is capped so that one Ray Data
read task (``ray.cpus_per_data_task``) always fits beside the trials (a fully booked cluster
starves the reads and the sweep hangs).

**MLflow**: the sweep is a parent run; each trial a nested child run (``mlflow.parentRunId``)
that the training loop logs its epochs to; the driver closes every child with its objective
history and status once the Tuner returns.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune.integration.ray_train import TuneReportCallback

from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError
from dpsrgan.training.progress import format_duration

logger = logging.getLogger(__name__)

PENALTY = 1e6
"""Added (× (1 + deficit in dB)) to a trial's objective under the PSNR floor."""
LR_RANGE_FACTOR = 4.0
"""With ``tune.tune_lr``: learning rates searched log-uniformly in [lr / 4, lr × 4]."""
NO_MID_EPOCH_CHECKPOINTS = 1 << 40
"""Trials report only at epoch ends (every report then carries validation and the objective)."""
TIME_ATTR = "epoch"
API_SERVER_ENV = "RAY_API_SERVER_ADDRESS"


# --- the objective (pure) ------------------------------------------------------------------------


def objective_value(
    metrics: Mapping[str, float], kind: str, reference_psnr_y: float, psnr_floor_db: float
) -> float:
    """The tune objective (lower is better) of one epoch's validation metrics; see the module doc."""
    psnr = float(metrics["val/psnr_y"])
    match kind:
        case "psnr":
            return -psnr
        case "perceptual":
            return float(metrics["val/perceptual"])
        case "perceptual_with_psnr_floor":
            floor = max(reference_psnr_y - psnr_floor_db, float(metrics.get("val/psnr_y_bicubic", -math.inf)))
            deficit = floor - psnr
            penalty = PENALTY * (1.0 + deficit) if deficit > 0 else 0.0
            return float(metrics["val/perceptual"]) + penalty
    raise DpsrganError(
        f"tune.objective: unknown {kind!r}; use perceptual_with_psnr_floor, perceptual or psnr"
    )


class ObjectiveReportCallback(TuneReportCallback):
    """Ray Train → Tune forwarding of rank 0's metrics, with ``objective`` added to each report
    that has validation numbers (all of them in a trial: checkpoints only at epoch ends)."""

    def __init__(self, kind: str, reference_psnr_y: float, psnr_floor_db: float) -> None:
        super().__init__()
        self.kind, self.reference_psnr_y, self.psnr_floor_db = kind, reference_psnr_y, psnr_floor_db

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        rank0 = dict(metrics[0])
        if "val/psnr_y" in rank0:
            rank0["objective"] = objective_value(rank0, self.kind, self.reference_psnr_y, self.psnr_floor_db)
        super().after_report(run_context, [rank0, *metrics[1:]], checkpoint)


class TrialProgress:
    """The sweep's progress on the driver's console: one line per trial epoch (trial, its knobs,
    validation PSNR-Y, objective) with the sweep's elapsed time and an ETA.

    A ``ray.tune.Callback`` (built by :func:`trial_progress_callback`, so that importing this
    module does not need Ray Tune's callback machinery), called in the driver process: trials
    and their Train workers log elsewhere (``ray.log_to_driver`` is off), so without it the
    sweep is silent for minutes. The ETA assumes every remaining trial runs every epoch (ASHA
    stopping some only makes it shorter) and that concurrent trials share the time evenly.
    """

    def __init__(self, num_samples: int, epochs: int, concurrency: int) -> None:
        self.total = num_samples * epochs
        self.concurrency = max(concurrency, 1)
        self.done = 0
        self.started = time.monotonic()

    def line(self, trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
        """The progress line of one reported result, or None for a report without validation."""
        if "objective" not in result:
            return None
        self.done += 1
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - self.done, 0) * elapsed / self.done
        knobs = " ".join(
            f"{key} {config[key]:.3g}" for key in ("adv_weight", "lr_g", "lr_d") if key in config
        )
        return (
            f"tune: trial {trial_id} epoch {int(result.get(TIME_ATTR, 0))}: {knobs}, val PSNR-Y "
            f"{float(result.get('val/psnr_y', math.nan)):.2f} dB, objective {float(result['objective']):.4g} "
            f"[{self.done}/{self.total} trial-epochs, {format_duration(elapsed)} elapsed, ETA "
            f"{format_duration(remaining)} at most]"
        )


def trial_progress_callback(num_samples: int, epochs: int, concurrency: int) -> Any:
    """A ``ray.tune.Callback`` that logs :class:`TrialProgress` lines."""
    from ray.tune import Callback

    progress = TrialProgress(num_samples, epochs, concurrency)

    class _Logger(Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            line = progress.line(trial.trial_id, trial.config, result)
            if line:
                logger.info(line)

    return _Logger()


# --- the best config: what train_gan reads --------------------------------------------------------


@dataclass(frozen=True)
class BestConfig:
    """``outputs/tune/best.json``: the chosen GAN knobs and the evidence for them."""

    adv_weight: float
    lr_g: float
    lr_d: float
    objective: float
    objective_kind: str
    trial: str
    val_psnr_y: float
    val_perceptual: float | None
    reference_psnr_y: float
    psnr_floor_db: float


def read_best_config(path: str | Path) -> BestConfig:
    """Load the tune stage's best config (train_gan's ``--best-config``)."""
    try:
        raw = json.loads(Path(path).read_text())
        return BestConfig(**raw)
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise DpsrganError(
            f"{path}: not a tune best-config ({error}); re-run the tune stage (dvc repro tune)"
        ) from None


def apply_best_config(params: Params, best: BestConfig) -> Params:
    """``params`` with ``loss.adv_weight``, ``gan.lr_g`` and ``gan.lr_d`` taken from the sweep."""
    return params.model_copy(
        update={
            "loss": params.loss.model_copy(update={"adv_weight": best.adv_weight}),
            "gan": params.gan.model_copy(update={"lr_g": best.lr_g, "lr_d": best.lr_d}),
        }
    )


# --- sizing and the search space -------------------------------------------------------------------


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


def sweep_name(params: Params, input_hashes: Mapping[str, str]) -> str:
    """``tune-<hash>`` of the inputs and every param that shapes a trial (a new sweep per change)."""
    payload = {
        "inputs": dict(input_hashes),
        **{key: getattr(params, key).model_dump(mode="json") for key in ("tune", "gan", "loss", "model")},
        "scale": params.degrade.scale,
    }
    return "tune-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


# --- the reference: the pretrained generator on the same valid images -----------------------------


def reference_psnr_y(pretrained: Path, valid_dir: Path, ids: tuple[str, ...], crop_border: int) -> float:
    """Mean validation PSNR-Y of the pretrained generator, measured as the loop measures a trial
    (uint8-rounded output, Y channel, border crop), on the same capped set of valid images."""
    import torch

    from dpsrgan.checkpoint import load_generator
    from dpsrgan.data.shards import read_split
    from dpsrgan.metrics import batch_psnr_y

    generator = load_generator(pretrained)
    wanted, total, count = set(ids), 0.0, 0
    with torch.inference_mode():
        for sample in read_split(valid_dir):
            if sample.id not in wanted:
                continue
            lr = torch.tensor(sample.lr).permute(2, 0, 1)[None].float() / 255
            sr = generator(lr).clamp(0, 1).mul(255).round() / 255
            hr = torch.tensor(sample.hr).permute(2, 0, 1)[None].float() / 255
            total += float(batch_psnr_y(sr, hr, crop_border).sum())
            count += 1
    if count == 0:
        raise DpsrganError(f"{valid_dir}: no validation images; the tune objective needs a valid split")
    return total / count


# --- one trial ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares (passed once through ``tune.with_parameters``)."""

    sweep: str
    base_loop: Any
    """The GAN stage's LoopConfig (trainer.loop_config) with the pretrained weights' ObjectRef."""
    ray_params: Any
    inputs: Any
    """StageInputs without the weights (the loop reads them from the ObjectRef)."""
    objective: str
    reference_psnr_y: float
    psnr_floor_db: float
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Tune's function trainable: a short GAN fine-tune with this trial's knobs on Ray Train."""
    import ray.tune
    from mlflow import MlflowClient

    from dpsrgan.training.trainer import build_trainer, stage_datasets

    trial_id = ray.tune.get_context().get_trial_id()
    name = f"{context.sweep}-{trial_id}"
    knobs = {
        "adv_weight": config["adv_weight"],
        "lr_g": config.get("lr_g", context.base_loop.lr_g),
        "lr_d": config.get("lr_d", context.base_loop.lr_d),
    }
    client = MlflowClient(context.tracking_uri)
    run = client.create_run(
        context.experiment_id,
        run_name=name,
        tags={
            "mlflow.parentRunId": context.parent_run_id,
            "tune.trial_id": trial_id,
            "stage": "tune",
        },
    )
    for key, value in knobs.items():
        client.log_param(run.info.run_id, key, value)
    loop = replace(
        context.base_loop,
        **knobs,
        checkpoint_every_steps=NO_MID_EPOCH_CHECKPOINTS,
        tracking_uri=context.tracking_uri,
        mlflow_run_id=run.info.run_id,
        sink=None,
        meta={**context.base_loop.meta, "run_name": name, "tune_trial": trial_id},
    )
    callback = ObjectiveReportCallback(context.objective, context.reference_psnr_y, context.psnr_floor_db)
    trainer = build_trainer(
        loop, context.ray_params, name, stage_datasets(context.inputs, context.ray_params), callbacks=[callback]
    )
    trainer.fit()


# --- the sweep ------------------------------------------------------------------------------------


TUNE_COPIED_CREDENTIALS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}
)
"""What Ray Tune copies from the driver's environment into every trial actor's runtime env."""


def keep_credentials_out_of_trial_env() -> None:
    """Stop Ray Tune from putting AWS credentials into the trials' runtime env.

    Ray writes every runtime env, ``env_vars`` included, in plain text to
    ``runtime_env_agent.log`` on each node (tests/test_submit_cluster.py found the test keys
    there). Trials get credentials as every other Ray worker does: from their node (an instance
    profile, the environment of ``ray start``; a local Ray inherits this process's).
    """
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = class_cache.ENV_VARS_TO_PROPAGATE - TUNE_COPIED_CREDENTIALS


@contextmanager
def tune_ray_runtime(ray_params: Any) -> Iterator[str]:
    """:func:`dpsrgan.training.trainer.ray_runtime`, except that a *local* Ray is started here
    with a known dashboard address exported as ``RAY_API_SERVER_ADDRESS`` to all its processes.

    Why: when ASHA stops a trial, the trial's Ray Train controller dies with it and Train's
    PlacementGroupCleaner must free the workers' placement group; it finds the cluster through
    the state API, which — on a machine running other local Ray instances, none of them from
    ``ray start`` — refuses to guess ("Found multiple active Ray instances"). The leaked group
    then starves every later trial and the sweep hangs. A cluster address (``ray.address`` /
    ``RAY_ADDRESS``) or a Ray already running is used as is.
    """
    import ray

    from dpsrgan.training.trainer import QUIET_RAY_ENV, ray_runtime

    if ray.is_initialized() or ray_params.address or os.environ.get("RAY_ADDRESS"):
        with ray_runtime(ray_params) as mode:
            yield mode
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = {key: os.environ.get(key) for key in (*QUIET_RAY_ENV, "RAY_AUTH_MODE", API_SERVER_ENV)}
    os.environ.update({key: value for key, value in QUIET_RAY_ENV.items() if key not in os.environ})
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ[API_SERVER_ENV] = f"http://127.0.0.1:{port}"
    ray.init(
        dashboard_host="127.0.0.1",
        dashboard_port=port,
        logging_level=logging.WARNING,
        log_to_driver=ray_params.log_to_driver,
    )
    try:
        with ray_runtime(ray_params):
            yield "local"
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class SweepResult:
    """Everything the tune stage writes."""

    best: BestConfig
    table: pd.DataFrame
    plot_png: bytes
    parent_run_id: str


def _trial_rows(results: Any, params: Params) -> pd.DataFrame:
    rows = []
    for result in results:
        metrics = result.metrics or {}
        config = result.config or {}
        epochs = int(metrics.get(TIME_ATTR, 0) or 0)
        if result.error is not None:
            status = "error"
        elif epochs >= params.tune.epochs:
            status = "completed"
        else:
            status = "stopped by ASHA"
        rows.append(
            {
                "trial": metrics.get("trial_id") or Path(result.path).name,
                "adv_weight": config.get("adv_weight"),
                "lr_g": config.get("lr_g", params.gan.lr_g),
                "lr_d": config.get("lr_d", params.gan.lr_d),
                "epochs": epochs,
                "val_psnr_y": metrics.get("val/psnr_y", math.nan),
                "val_perceptual": metrics.get("val/perceptual", math.nan),
                "objective": metrics.get("objective", math.nan),
                "status": status,
                "error": "" if result.error is None else str(result.error).splitlines()[0][:200],
            }
        )
    return (
        pd.DataFrame(rows).sort_values("objective", na_position="last", kind="stable").reset_index(drop=True)
    )


def objective_plot(table: pd.DataFrame, kind: str) -> bytes:
    """PNG: objective against adversarial weight (log x); stopped trials hollow, the best starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    done = table[table["status"] == "completed"]
    stopped = table[table["status"] != "completed"]
    axes.scatter(done["adv_weight"], done["objective"], label="completed", color="tab:blue")
    axes.scatter(
        stopped["adv_weight"],
        stopped["objective"],
        label="stopped early / failed",
        facecolors="none",
        edgecolors="tab:gray",
    )
    best = table.dropna(subset=["objective"]).head(1)
    axes.scatter(
        best["adv_weight"], best["objective"], marker="*", s=200, color="tab:red", label="best", zorder=3
    )
    axes.set_xscale("log")
    if table["objective"].abs().max() >= PENALTY:
        axes.set_yscale("symlog")
    axes.set_xlabel("adversarial weight (loss.adv_weight)")
    axes.set_ylabel("objective (lower is better)")
    axes.set_title(f"tune.objective = {kind}", fontsize="medium")
    axes.legend(fontsize="small")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _finish_child_runs(
    tracking_uri: str, experiment_id: str, parent_run_id: str, results: Any, table: pd.DataFrame
) -> None:
    """Close each trial's MLflow run with its objective per epoch and how the trial ended."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri)
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )
    by_trial = {run.data.tags.get("tune.trial_id"): run.info.run_id for run in children}
    statuses = dict(zip(table["trial"], table["status"], strict=True))
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id")
        run_id = by_trial.get(trial_id)
        if run_id is None:
            continue
        history = result.metrics_dataframe
        if history is not None and "objective" in history:
            rows = history.dropna(subset=["objective"])
            client.log_batch(
                run_id,
                metrics=[
                    Metric("objective", float(row["objective"]), 0, int(row[TIME_ATTR]))
                    for _, row in rows.iterrows()
                ],
            )
        client.set_tag(run_id, "tune.status", statuses.get(trial_id, "unknown"))
        client.set_terminated(run_id, status="FAILED" if result.error is not None else "FINISHED")


def run_sweep(params: Params, data_dir: Path, pretrained: Path) -> SweepResult:
    """Run the whole search and pick the best trial (the lowest final objective)."""
    import ray
    from ray import tune

    from dpsrgan.data.placement import this_node
    from dpsrgan.lifecycle.tracking import end_stage_run, start_stage_run
    from dpsrgan.training.trainer import check_resources, inspect_inputs, loop_config, storage_target

    tp = params.tune
    trial_params = params.model_copy(
        update={
            "ray": params.ray.model_copy(update={"num_workers": tp.workers_per_trial}),
            "gan": params.gan.model_copy(update={"epochs": tp.epochs}),
        }
    )
    inputs = inspect_inputs("gan", trial_params, data_dir, pretrained)
    if not inputs.valid_ids:
        raise DpsrganError(f"{data_dir}/valid: no validation images; the tune objective is measured on them")
    crop = params.evaluate.crop_border if params.evaluate.crop_border is not None else params.degrade.scale
    reference = reference_psnr_y(pretrained, inputs.data_dir / "valid", inputs.valid_ids, crop)
    name = sweep_name(params, inputs.hashes)
    logger.info(
        "tune %s: pretrained generator's validation PSNR-Y %.3f dB (floor: -%g dB)",
        name,
        reference,
        tp.psnr_floor_db,
    )

    with tune_ray_runtime(params.ray) as mode:
        resources = check_resources(trial_params.ray, mode)
        concurrency = trial_concurrency(params, resources.get("CPU", 0.0))
        run = start_stage_run(
            params.mlflow.experiment,
            name,
            {key: getattr(params, key).model_dump(mode="json") for key in ("tune", "gan", "loss", "model")},
            {
                "stage": "tune",
                "tune.reference_psnr_y": f"{reference:.4f}",
                "tune.concurrency": str(concurrency),
                **{f"input.{key}_sha256": value for key, value in inputs.hashes.items()},
            },
        )
        status = "FAILED"
        try:
            base_loop = loop_config(
                "gan", trial_params, inputs, name, pretrained=ray.put(inputs.pretrained_state)
            )
            context = TrialContext(
                sweep=name,
                base_loop=base_loop,
                ray_params=trial_params.ray.model_copy(
                    update={"storage_path": f"{params.ray.storage_path.rstrip('/')}/{name}-trials"}
                ),
                inputs=replace(inputs, pretrained_state=None, data_node=this_node()),
                objective=tp.objective,
                reference_psnr_y=reference,
                psnr_floor_db=tp.psnr_floor_db,
                tracking_uri=run.tracking_uri,
                experiment_id=run.experiment_id,
                parent_run_id=run.run_id,
            )
            storage_path, filesystem = storage_target(params.ray)
            from ray.tune.search.basic_variant import BasicVariantGenerator

            keep_credentials_out_of_trial_env()
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(run_trial, context=context), {"cpu": tp.cpus_per_trial}
                ),
                param_space=search_space(params),
                tune_config=tune.TuneConfig(
                    metric="objective",
                    mode="min",
                    num_samples=tp.num_samples,
                    search_alg=BasicVariantGenerator(random_state=tp.seed, max_concurrent=concurrency),
                    scheduler=tune.schedulers.ASHAScheduler(
                        time_attr=TIME_ATTR,
                        max_t=tp.epochs,
                        grace_period=min(tp.grace_period, tp.epochs),
                        reduction_factor=tp.reduction_factor,
                    ),
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=storage_path,
                    storage_filesystem=filesystem,
                    verbose=0,
                    callbacks=[trial_progress_callback(tp.num_samples, tp.epochs, concurrency)],
                ),
            )
            results = tuner.fit()
            table = _trial_rows(results, params)
            _finish_child_runs(run.tracking_uri, run.experiment_id, run.run_id, results, table)
            scored = table.dropna(subset=["objective"])
            if scored.empty:
                errors = "; ".join(sorted(set(table["error"]) - {""}))[:400]
                raise DpsrganError(
                    f"tune {name}: no trial reported an objective ({errors or 'see Ray logs'})"
                )
            top = scored.iloc[0]
            best = BestConfig(
                adv_weight=float(top["adv_weight"]),
                lr_g=float(top["lr_g"]),
                lr_d=float(top["lr_d"]),
                objective=float(top["objective"]),
                objective_kind=tp.objective,
                trial=str(top["trial"]),
                val_psnr_y=float(top["val_psnr_y"]),
                val_perceptual=None if math.isnan(top["val_perceptual"]) else float(top["val_perceptual"]),
                reference_psnr_y=reference,
                psnr_floor_db=tp.psnr_floor_db,
            )
            plot = objective_plot(table, tp.objective)
            _log_sweep(run, best, table, plot)
            status = "FINISHED"
        finally:
            end_stage_run(run, status)
    logger.info(
        "tune %s: best adv_weight %.3g (objective %.4g, trial %s)",
        name,
        best.adv_weight,
        best.objective,
        best.trial,
    )
    return SweepResult(best, table, plot, run.run_id)


def _log_sweep(run: Any, best: BestConfig, table: pd.DataFrame, plot: bytes) -> None:
    """The parent run: best knobs and score as metrics, the table, plot and best config as files."""
    from dpsrgan.lifecycle.tracking import RunLogger

    logger_ = RunLogger(run.tracking_uri, run.run_id)
    logger_.log_metrics(
        {
            f"best/{key}": float(value)
            for key, value in asdict(best).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        step=0,
    )
    logger_.flush()
    logger_.log_png(plot, "tune/objective.png")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dpsrgan-tune-") as tmp:
        (Path(tmp) / "results.csv").write_text(table.to_csv(index=False))
        (Path(tmp) / "best.json").write_text(json.dumps(asdict(best), indent=2))
        logger_.log_artifact(Path(tmp) / "results.csv", "tune")
        logger_.log_artifact(Path(tmp) / "best.json", "tune")
