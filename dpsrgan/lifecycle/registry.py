"""MLflow model registry: register the GAN generator as a new version with lineage.

Registration logs, on one run of the tracking experiment, everything needed to judge and trace
the version later: the evaluation metrics (the promotion gate reads them from this run), the
params, and lineage tags (git commit, the data/model hashes DVC recorded in ``dvc.lock``). The
model itself is the pyfunc of :mod:`dpsrgan.lifecycle.serving`, with its verified ONNX export. A
new version gets the ``challenger`` alias; only ``dpsrgan promote``
(:mod:`dpsrgan.lifecycle.promotion`) moves ``champion``.

Works against any tracking URI (``MLFLOW_TRACKING_URI``: a server, or MLflow 3's default local
sqlite file). The client helpers every command shares (bounded requests, the fast ``/health``
probe, one-line errors, aliases) and reading a version back live one layer down, in
:mod:`dpsrgan.lifecycle.client`, so that export, inference and serving read registered models
without importing the registration (which runs the export); they are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import CHALLENGER, REGISTRY_PREFIX, connect, registry_call
from dpsrgan.provenance import commit_tag

logger = logging.getLogger(__name__)


def dvc_lock_hashes(lock_path: Path | str = "dvc.lock") -> dict[str, str]:
    """``<stage>:<out path>`` → content hash for every output DVC recorded (empty if no lock).

    These pin exactly which data shards and checkpoints a registered model came from: with the
    git commit, ``dvc checkout`` at that commit restores them.
    """
    path = Path(lock_path)
    if not path.is_file():
        return {}
    lock = yaml.safe_load(path.read_text()) or {}
    hashes = {}
    for stage, body in (lock.get("stages") or {}).items():
        for out in body.get("outs") or []:
            digest = out.get("md5") or out.get("etag") or out.get("checksum")
            if digest:
                hashes[f"{stage}:{out['path']}"] = str(digest)
    return hashes


def lineage_tags(repo: Path | str = ".", lock_path: Path | str | None = None) -> dict[str, str]:
    """Tags that tie a model version to code and data: git commit + every dvc.lock output hash."""
    repo = Path(repo)
    tags = {"lineage.git_commit": commit_tag(repo)}
    for key, digest in dvc_lock_hashes(lock_path or repo / "dvc.lock").items():
        # MLflow tag names allow [\w\-. :/]; foreach variants are named stage@item: '@' → '-'.
        tags[f"lineage.dvc.{key.replace(':', '.').replace('@', '-')}"] = digest
    return tags


@dataclass(frozen=True)
class RegisteredVersion:
    """What the register stage reports: where the model is and which version it became."""

    name: str
    version: str
    run_id: str
    model_uri: str

    @property
    def challenger_uri(self) -> str:
        return f"{REGISTRY_PREFIX}{self.name}@{CHALLENGER}"


def registry_metrics(summary: Mapping[str, Any], candidate: str = "gan") -> dict[str, float]:
    """Evaluation summary (the evaluate stage's metrics JSON) → MLflow metrics for the version's
    run: the candidate's own numbers unprefixed (``psnr_y``: what the promotion gate reads), the
    baselines prefixed (``pretrained.psnr_y``, ``bicubic.psnr_y``); non-numbers dropped."""
    metrics: dict[str, float] = {}
    for section, values in summary.items():
        if isinstance(values, Mapping):
            prefix = "" if section == candidate else f"{section}."
            metrics.update(
                {
                    f"{prefix}{key}": float(value)
                    for key, value in values.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                }
            )
        elif isinstance(values, int | float) and not isinstance(values, bool):
            metrics[section] = float(values)
    if not any(key in metrics for key in ("psnr_y", "ssim_y")):
        raise DpsrganError(
            f"evaluation metrics have no {candidate!r} section with psnr_y/ssim_y; rerun the evaluate stage"
        )
    return metrics


def register_generator(
    checkpoint: Path,
    *,
    registered_model: str,
    experiment: str,
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    tags: Mapping[str, str],
    artifacts: tuple[Path, ...] = (),
    tracking_uri: str | None = None,
) -> RegisteredVersion:
    """Log ``checkpoint`` as the pyfunc model on a new run and register it as a new version.

    The run carries ``metrics`` (the promotion gate reads them), ``params``, ``tags`` (lineage)
    and ``artifacts`` (evaluation reports, under ``evaluation/``); the version gets the lineage
    tags and ``eval.<metric>`` tags too, and the ``challenger`` alias. The model holds the
    checkpoint and its verified ONNX export (``artifacts/generator.onnx``), so an alias always
    names both, and ``dpsrgan upscale --backend onnxruntime --model models:/NAME@ALIAS`` works.
    Without the ``onnx`` extra the version holds the checkpoint only (:func:`onnx_artefact`).
    """
    import tempfile

    import mlflow

    from dpsrgan.lifecycle.serving import log_pyfunc

    uri = tracking_uri or mlflow.get_tracking_uri()
    client = connect(uri)
    mlflow.set_tracking_uri(uri)
    registry_call(lambda: mlflow.set_experiment(experiment), f"experiment {experiment!r}")
    with tempfile.TemporaryDirectory(prefix="dpsrgan-onnx-") as tmp, mlflow.start_run(run_name="register") as run:
        mlflow.set_tags(dict(tags))
        mlflow.log_params(dict(params))
        mlflow.log_metrics(dict(metrics))
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        onnx_model = onnx_artefact(Path(checkpoint), Path(tmp))
        info = log_pyfunc(Path(checkpoint), registered_model_name=registered_model, onnx_model=onnx_model)
    version = str(info.registered_model_version)
    version_tags = {**tags, **{f"eval.{k}": f"{v:.6g}" for k, v in metrics.items() if "." not in k}}
    for key, value in version_tags.items():
        registry_call(
            lambda k=key, v=value: client.set_model_version_tag(registered_model, version, k, v), "tagging"
        )
    registry_call(
        lambda: client.set_registered_model_alias(registered_model, CHALLENGER, version), "setting alias"
    )
    logger.info("registered %s v%s (run %s) as @%s", registered_model, version, run.info.run_id, CHALLENGER)
    return RegisteredVersion(registered_model, version, run.info.run_id, info.model_uri)


ONNX_EXTRA = ("onnx", "onnxruntime")
"""What the ONNX artefact needs beyond torch: ``onnx`` (metadata, checker) and ``onnxruntime``
(the export is verified against torch before it is stored): the ``onnx`` extra."""


def onnx_artefact(checkpoint: Path, folder: Path) -> Path | None:
    """The verified ONNX export of ``checkpoint`` in ``folder``, for the version's ``onnx``
    artifact; ``None``, with one log line saying how to get it, where the ``onnx`` extra is not
    installed (a plain ``pip install .``): the torch model is registered all the same."""
    import importlib

    missing = []
    for module in ONNX_EXTRA:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        logger.warning(
            "register: skipped the ONNX artefact (no %s); the model is registered without it. "
            "To add it: pip install '.[onnx]' and rerun the register stage",
            " or ".join(missing),
        )
        return None
    from dpsrgan.export.build import export
    from dpsrgan.lifecycle.serving import ONNX_FILE

    return export(str(checkpoint), "onnx", folder / ONNX_FILE).path


