"""The driver side of a training stage: the one module that owns TorchTrainer, ScalingConfig and
RunConfig.

:func:`train_stage` checks and hashes the inputs and names the run (:mod:`.inputs`), connects to
Ray (``ray.address`` / ``RAY_ADDRESS``, else a local Ray started for the stage and stopped after
it), opens the MLflow run, runs the per-worker loop of :mod:`.loop` and returns the final state.
A run whose name (a hash of its inputs and params) and storage path were used before resumes
from its last checkpoint; one that had already finished returns its final checkpoint at once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dpsrgan.cluster.runtime import Mode, check_resources, ray_session
from dpsrgan.config import Params, RayParams
from dpsrgan.errors import DpsrganError
from dpsrgan.training.inputs import StageInputs, inspect_inputs, run_name, steps_per_epoch
from dpsrgan.training.spec import RunHandles, Stage, WorkerSpec

logger = logging.getLogger("dpsrgan.training")


# --- Ray ---------------------------------------------------------------------------------------


def check_stage_resources(ray_params: RayParams, mode: Mode) -> dict[str, float]:
    """:func:`~dpsrgan.cluster.runtime.check_resources` for a stage's ``ray.*`` sizing."""
    gpus = ray_params.gpus_per_worker if ray_params.use_gpu else None
    return check_resources(
        ray_params.num_workers, ray_params.cpus_per_worker, ray_params.cpus_per_data_task, gpus, mode
    )


def storage_target(ray_params: RayParams) -> tuple[str, Any]:
    """(storage_path, storage_filesystem) for RunConfig: a local path made absolute, ``s3://…``
    as is, or with ``ray.s3_endpoint_url`` an S3FileSystem on that endpoint (credentials from
    the environment only)."""
    path = ray_params.storage_path
    if path.startswith("s3://") and ray_params.s3_endpoint_url:
        from pyarrow.fs import S3FileSystem

        endpoint = urlparse(ray_params.s3_endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise DpsrganError(
                f"ray.s3_endpoint_url {ray_params.s3_endpoint_url!r}: expected http(s)://host:port"
            )
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        filesystem = S3FileSystem(endpoint_override=endpoint.netloc, scheme=endpoint.scheme, region=region)
        return path.removeprefix("s3://"), filesystem
    if "://" in path:
        return path, None
    return str(Path(path).resolve()), None


# --- the stage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its final training state (state.py's dict) and where it lives."""

    stage: Stage
    run_name: str
    state: dict[str, Any]
    checkpoint_path: str
    mlflow_run_id: str
    tracking_uri: str
    input_hashes: dict[str, str]

    def provenance(self) -> dict[str, str | int]:
        """Plain-data lineage for the exported checkpoints."""
        progress = self.state["progress"]
        return {
            "stage": self.stage,
            "ray_run": self.run_name,
            "mlflow_run_id": self.mlflow_run_id,
            "steps": progress["global_step"],
            "epochs": progress["epoch"],
            **{f"{key}_sha256": value for key, value in self.input_hashes.items()},
        }


def worker_spec(stage: Stage, params: Params, inputs: StageInputs, name: str, handles: RunHandles | None = None) -> WorkerSpec:
    """What every worker of the run ``name`` receives; ``handles`` carries refs, sinks and run ids
    (their ``meta``: stage, run name and architectures, saved in every checkpoint)."""
    section = params.pretrain if stage == "pretrain" else params.gan
    generator = inputs.pretrained_config or {
        "scale": params.degrade.scale,
        "channels": params.model.channels,
        "num_blocks": params.model.num_blocks,
        "dilation": params.model.dilation,
        "in_channels": 3,
        "bicubic_skip": params.model.bicubic_skip,
    }
    spec = WorkerSpec(
        stage,
        params,
        generator,
        steps_per_epoch(inputs.train_rows, section.batch_size, params.ray.num_workers, section.steps_per_epoch, stage),
        grid_ids=tuple(inputs.valid_ids[: params.evaluate.grid_images]),
        validate=bool(inputs.valid_ids),
    )
    meta = {"stage": stage, "run_name": name, "generator": generator}
    if stage == "gan":
        meta["discriminator"] = spec.discriminator
    handles = handles or RunHandles()
    return replace(spec, handles=replace(handles, meta={**meta, **handles.meta}))


def _mlflow_params(stage: Stage, params: Params) -> dict[str, Any]:
    dumped = params.model_dump(mode="json")
    keep = ["model", "ray", "pretrain" if stage == "pretrain" else "gan"] + (
        ["loss"] if stage == "gan" else []
    )
    flat = {key: dumped[key] for key in keep}
    flat["degrade"] = {"scale": params.degrade.scale}
    return flat


def build_trainer(
    spec: WorkerSpec,
    ray_params: RayParams,
    name: str,
    datasets: dict[str, Any],
    callbacks: Sequence[Any] | None = None,
):
    """The TorchTrainer of a stage (also what a Tune trial builds, with its own name/callbacks)."""
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from dpsrgan.training.loop import train_loop_per_worker

    resources = {"CPU": ray_params.cpus_per_worker}
    if ray_params.use_gpu:
        resources["GPU"] = ray_params.gpus_per_worker
    storage_path, filesystem = storage_target(ray_params)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec},
        scaling_config=ScalingConfig(
            num_workers=ray_params.num_workers, use_gpu=ray_params.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=ray_params.max_failures),
            logging_config=LoggingConfig(log_level="DEBUG" if ray_params.log_to_driver else "WARNING"),
            callbacks=list(callbacks or []),
        ),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )


def stage_datasets(inputs: StageInputs, ray_params: RayParams) -> dict[str, Any]:
    """The train (split across workers) and valid (whole, materialised) Ray Datasets."""
    import ray.data

    from dpsrgan.data.loading import train_dataset, valid_dataset

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    placement = {"node_id": inputs.data_node, "num_cpus": ray_params.cpus_per_data_task}
    datasets = {"train": train_dataset(inputs.data_dir / "train", **placement)}
    if inputs.valid_ids:
        capped = list(inputs.valid_ids) if inputs.valid_capped else None
        # Small and read every epoch by every worker: execute it once, keep the blocks.
        datasets["valid"] = valid_dataset(inputs.data_dir / "valid", capped, **placement).materialize()
    return datasets


def train_stage(
    stage: Stage, params: Params, data_dir: Path, pretrained: Path | None = None, arm: str = "dpsrgan"
) -> StageResult:
    """Run (or resume) one training stage on Ray Train; returns its final state. ``arm`` tags the
    MLflow run (``dpsrgan``, or a baseline of :mod:`dpsrgan.baselines` with its params applied)."""
    import ray

    from dpsrgan.data.placement import this_node
    from dpsrgan.lifecycle.tracking import end_stage_run, start_stage_run
    from dpsrgan.training.faults import FaultInjection
    from dpsrgan.training.progress import ProgressSink

    inputs = inspect_inputs(stage, params, data_dir, pretrained)
    name = run_name(stage, params, inputs.hashes)
    with ray_session(params.ray.address, log_to_driver=params.ray.log_to_driver) as mode:
        resources = check_stage_resources(params.ray, mode)
        inputs = replace(inputs, data_node=this_node())
        run = start_stage_run(params.mlflow.experiment, name, _mlflow_params(stage, params),
                              _lineage_tags(stage, arm, name, mode, params, resources, inputs))
        logger.info(
            "%s: Ray Train run %s (%s Ray, %d workers), MLflow run %s%s",
            stage, name, mode, params.ray.num_workers, run.run_id, " (resumed)" if run.resumed else "",
        )
        sink = ProgressSink.remote()
        pretrained_ref = ray.put(inputs.pretrained_state) if inputs.pretrained_state is not None else None
        handles = RunHandles(pretrained_ref, run.tracking_uri, run.run_id, sink, FaultInjection.from_env())
        trainer = build_trainer(worker_spec(stage, params, inputs, name, handles), params.ray, name,
                                stage_datasets(inputs, params.ray))
        status = "FAILED"
        try:
            state, checkpoint_path = _fit(trainer, sink, stage, name, params.ray.max_failures)
            _log_summary(run, state)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            end_stage_run(run, status)
    return StageResult(stage, name, state, checkpoint_path, run.run_id, run.tracking_uri, inputs.hashes)


def _lineage_tags(
    stage: Stage, arm: str, name: str, mode: str, params: Params, resources: dict[str, float], inputs: StageInputs
) -> dict[str, str]:
    """The MLflow run's tags: what ran where, and the hashes of what it read."""
    return {
        "stage": stage,
        "arm": arm,
        "ray.run_name": name,
        "ray.mode": mode,
        "ray.storage_path": params.ray.storage_path,
        "ray.cluster_resources": json.dumps(resources, sort_keys=True),
        **{f"lineage.{key}_sha256": value for key, value in inputs.hashes.items()},
    }


def _fit(trainer: Any, sink: Any, stage: Stage, name: str, max_failures: int) -> tuple[dict[str, Any], str]:
    """Run the trainer with the workers' progress printed here; the final state and its checkpoint
    path, or one-line errors (the instability guard's verdict, retries spent, no checkpoint)."""
    import ray

    from dpsrgan.training.progress import ProgressPrinter
    from dpsrgan.training.state import load_state

    try:
        with ProgressPrinter(sink) as printer:
            result = trainer.fit()
    except ray.train.TrainingFailedError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DpsrganError(
            f"{stage}: training failed after ray.max_failures={max_failures} restarts "
            f"({first[:300]}); Ray's worker logs: <ray temp dir>/session_latest/logs"
        ) from error
    if printer.failure:
        raise DpsrganError(printer.failure)
    if result.checkpoint is None:
        raise DpsrganError(f"{stage}: the run {name} finished without a checkpoint; see Ray's logs")
    with result.checkpoint.as_directory() as directory:
        return load_state(Path(directory)), result.checkpoint.path


def _log_summary(run: Any, state: dict[str, Any]) -> None:
    """The history plot on the MLflow run; a last log line with the result."""
    from dpsrgan.lifecycle.tracking import RunLogger
    from dpsrgan.training.outputs import final_metrics
    from dpsrgan.visualize import history_plot

    history = state["progress"]["history"]
    if history:
        RunLogger(run.tracking_uri, run.run_id).log_png(
            history_plot(history, state["meta"]["run_name"]), "plots/history.png"
        )
    logger.info("%s finished: %s", state["meta"]["stage"], json.dumps(final_metrics(state), sort_keys=True))
