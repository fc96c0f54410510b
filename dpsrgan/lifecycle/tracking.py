"""MLflow tracking of the training stages: one run per stage, logged from the driver and rank 0;
and of the evaluation: one parent run with a nested run per compared arm (:func:`log_comparison`).

- The *driver* resolves the tracking URI (``MLFLOW_TRACKING_URI``, else MLflow's default local
  sqlite file, made absolute here because Ray workers run in another directory), opens the run
  (:func:`start_stage_run`), logs params and lineage tags, and closes it.
- *Rank 0* logs per-step and per-epoch metrics and the image grids through a :class:`RunLogger`
  bound to that run id; other ranks log nothing.

A stage re-run that resumes a Ray Train run (same run name) continues the same MLflow run,
found by its ``dpsrgan.ray_run`` tag, instead of opening a second one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import check_reachable
from dpsrgan.provenance import commit_tag

logger = logging.getLogger(__name__)

RAY_RUN_TAG = "dpsrgan.ray_run"
FLUSH_INTERVAL_S = 5.0
MAX_BATCH_METRICS = 1000  # MLflow's log_batch limit


def resolve_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or MLflow's default, with a relative sqlite/file path made absolute."""
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    for prefix in ("sqlite:///", "file:"):
        if uri.startswith(prefix):
            path = uri[len(prefix) :]
            if path and not path.startswith("/"):
                return prefix + str(Path(path).resolve())
    if "://" not in uri and not uri.startswith("databricks"):
        return str(Path(uri).resolve())
    return uri


@dataclass(frozen=True)
class StageRun:
    """An open MLflow run of a training stage."""

    tracking_uri: str
    run_id: str
    experiment_id: str
    resumed: bool


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    check_reachable(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params → ``section.key`` strings, the shape MLflow params and tags take."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def start_stage_run(
    experiment: str,
    ray_run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    tracking_uri: str | None = None,
) -> StageRun:
    """Open (or reopen, when the Ray run resumes) the stage's MLflow run and log params + tags.

    ``params`` is nested (flattened to ``section.key``); ``tags`` are plain strings (lineage).
    """
    from mlflow.entities import Param, RunTag
    from mlflow.exceptions import MlflowException

    uri = tracking_uri or resolve_tracking_uri()
    client = _client(uri)
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        previous = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RAY_RUN_TAG}` = '{ray_run_name}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if previous and previous[0].info.status != "FINISHED":
            run_id, resumed = previous[0].info.run_id, True
            client.update_run(run_id, status="RUNNING")
        else:
            run = client.create_run(experiment_id, run_name=ray_run_name, tags={RAY_RUN_TAG: ray_run_name})
            run_id, resumed = run.info.run_id, False
        all_tags = {"lineage.git_commit": commit_tag(Path.cwd()), **tags}
        flat = flatten(params)
        client.log_batch(
            run_id,
            params=[Param(key, value[:6000]) for key, value in flat.items()] if not resumed else [],
            tags=[RunTag(key, str(value)) for key, value in all_tags.items()],
        )
    except MlflowException as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DpsrganError(f"MLflow ({uri}): {first[:300]}; check MLFLOW_TRACKING_URI") from None
    return StageRun(uri, run_id, experiment_id, resumed)


def end_stage_run(run: StageRun, status: str = "FINISHED") -> None:
    """Close the run as FINISHED, FAILED or KILLED."""
    _client(run.tracking_uri).set_terminated(run.run_id, status=status)


class RunLogger:
    """Buffered metric logging, images and artifacts for one run (rank 0 or the driver).

    Metrics are batched and sent at most every ``flush_interval_s`` (and on :meth:`flush`), so
    per-step logging costs one request every few seconds, not one per step.
    """

    def __init__(self, tracking_uri: str, run_id: str, flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        self._pending.extend(Metric(key, float(value), now_ms, step) for key, value in metrics.items())
        if (
            time.monotonic() - self._last_flush >= self.flush_interval_s
            or len(self._pending) >= MAX_BATCH_METRICS
        ):
            self.flush()

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH_METRICS], self._pending[MAX_BATCH_METRICS:]
            self.client.log_batch(self.run_id, metrics=batch)
        self._last_flush = time.monotonic()

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def log_png(self, png: bytes, artifact_file: str) -> None:
        """Log PNG bytes as ``artifact_file`` (e.g. ``grids/epoch_003.png``)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dpsrgan-mlflow-") as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_bytes(png)
            directory = str(Path(artifact_file).parent)
            self.client.log_artifact(
                self.run_id, str(path), artifact_path=None if directory == "." else directory
            )

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)


ARM_TAGS = {"gan": "dpsrgan"}
"""Evaluation method → the ``arm`` tag of its MLflow run (the others keep their names)."""


def log_comparison(
    experiment: str,
    summary: Mapping[str, Any],
    reports: Sequence[Path],
    arm_artifacts: Mapping[str, Sequence[Path]],
    tags: Mapping[str, str],
    tracking_uri: str | None = None,
) -> str:
    """The evaluation in MLflow: one parent run ``evaluate`` (``reports`` as artefacts under
    ``evaluation/``) and one nested run per evaluated method, tagged ``arm=<method>``
    (``dpsrgan`` for the GAN generator) with its summary numbers as metrics, so the compare view
    shows the arms side by side. ``arm_artifacts``: method → files logged on its run (the
    baselines' checkpoints; DPSRGAN's generator is registered by the register stage instead).
    Methods that were not trained (``status`` only) get no run. Returns the parent run id."""
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    uri = tracking_uri or resolve_tracking_uri()
    client = _client(uri)
    now_ms = int(time.time() * 1000)
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        base_tags = {"lineage.git_commit": commit_tag(Path.cwd()), "stage": "evaluate", **tags}
        parent = client.create_run(experiment_id, run_name="evaluate", tags=base_tags)
        parent_id = parent.info.run_id
        for path in reports:
            client.log_artifact(parent_id, str(path), artifact_path="evaluation")
        for method, values in summary.items():
            if not isinstance(values, Mapping) or "psnr_y" not in values:
                continue  # test_images, notes, and arms that were not trained
            arm = ARM_TAGS.get(method, method)
            child = client.create_run(
                experiment_id,
                run_name=arm,
                tags={**base_tags, MLFLOW_PARENT_RUN_ID: parent_id, "arm": arm},
            )
            metrics = [
                Metric(key, float(value), now_ms, 0)
                for key, value in values.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
            client.log_batch(child.info.run_id, metrics=metrics, tags=[RunTag("method", method)])
            for path in arm_artifacts.get(method, ()):
                client.log_artifact(child.info.run_id, str(path), artifact_path=f"baseline/{arm}")
            client.set_terminated(child.info.run_id, status="FINISHED")
        client.set_terminated(parent_id, status="FINISHED")
    except MlflowException as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DpsrganError(f"MLflow ({uri}): {first[:300]}; check MLFLOW_TRACKING_URI") from None
    return parent_id
