"""One trial of the sweep: a short GAN fine-tune from the pretrained generator with the trial's
knobs, run by the training stage's own Ray Train code; its epochs' validation reaches Tune with
the objective added."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ray.tune.integration.ray_train import TuneReportCallback

from dpsrgan.config import RayParams
from dpsrgan.training.spec import WorkerSpec
from dpsrgan.training.inputs import StageInputs
from dpsrgan.tuning.best import with_gan_knobs
from dpsrgan.tuning.objective import Bounds, ObjectiveKind, Reference, objective_value

NO_MID_EPOCH_CHECKPOINTS = 1 << 40
"""Trials report only at epoch ends (every report then carries validation and the objective)."""
TIME_ATTR = "epoch"
"""ASHA's time attribute: completed epochs, as the loop reports them."""


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares (passed once through ``tune.with_parameters``)."""

    sweep: str
    spec: WorkerSpec
    """The GAN stage's worker spec for the trials' params, with the pretrained weights' ObjectRef."""
    ray_params: RayParams
    inputs: StageInputs
    """StageInputs without the weights (the workers read them from the ObjectRef)."""
    objective: ObjectiveKind
    reference: Reference
    bounds: Bounds
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


class ObjectiveReportCallback(TuneReportCallback):
    """Ray Train → Tune forwarding of rank 0's metrics, with ``objective`` added to each report
    that has validation numbers (all of them in a trial: checkpoints only at epoch ends)."""

    def __init__(self, kind: ObjectiveKind, reference: Reference, bounds: Bounds) -> None:
        super().__init__()
        self.kind, self.reference, self.bounds = kind, reference, bounds

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        rank0 = dict(metrics[0])
        if "val/psnr_y" in rank0:
            rank0["objective"] = objective_value(rank0, self.kind, self.reference, self.bounds)
        super().after_report(run_context, [rank0, *metrics[1:]], checkpoint)


def trial_knobs(config: dict[str, Any], spec: WorkerSpec) -> dict[str, float]:
    """The trial's adversarial weight and learning rates (the params' where not searched)."""
    gan = spec.params.gan
    return {"adv_weight": config["adv_weight"], "lr_g": config.get("lr_g", gan.lr_g), "lr_d": config.get("lr_d", gan.lr_d)}


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Tune's function trainable: a GAN fine-tune with this trial's knobs on Ray Train."""
    import ray.tune
    from mlflow import MlflowClient

    from dpsrgan.training.trainer import build_trainer, stage_datasets

    trial_id = ray.tune.get_context().get_trial_id()
    name = f"{context.sweep}-{trial_id}"
    knobs = trial_knobs(config, context.spec)
    client = MlflowClient(context.tracking_uri)
    tags = {"mlflow.parentRunId": context.parent_run_id, "tune.trial_id": trial_id, "stage": "tune"}
    run = client.create_run(context.experiment_id, run_name=name, tags=tags)
    for key, value in knobs.items():
        client.log_param(run.info.run_id, key, value)
    params = with_gan_knobs(context.spec.params, **knobs, checkpoint_every_steps=NO_MID_EPOCH_CHECKPOINTS)
    handles = replace(
        context.spec.handles,
        tracking_uri=context.tracking_uri,
        mlflow_run_id=run.info.run_id,
        sink=None,
        meta={**context.spec.handles.meta, "run_name": name, "tune_trial": trial_id},
    )
    spec = replace(context.spec, params=params, handles=handles)
    callback = ObjectiveReportCallback(context.objective, context.reference, context.bounds)
    datasets = stage_datasets(context.inputs, context.ray_params)
    build_trainer(spec, context.ray_params, name, datasets, callbacks=[callback]).fit()
