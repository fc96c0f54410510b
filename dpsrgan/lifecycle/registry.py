"""MLflow model registry: register the GAN generator as a new version with lineage, and the
small client helpers that promotion and loading share.

Registration logs, on one run of the tracking experiment, everything needed to judge and trace
the version later: the evaluation metrics (the promotion gate reads them from this run), the
params, and lineage tags (git commit, the data/model hashes DVC recorded in ``dvc.lock``). The
model itself is the pyfunc of :mod:`dpsrgan.lifecycle.serving`. A new version gets the ``challenger``
alias; only ``dpsrgan promote`` (:mod:`dpsrgan.lifecycle.promotion`) moves ``champion``.

Works against any tracking URI (``MLFLOW_TRACKING_URI``: a server, or MLflow 3's default local
sqlite file). An unreachable server is a one-line :class:`DpsrganError`, found by a short
``/health`` probe before MLflow's own retry loop would spend a minute on it; the commands that
talk to a server also bound MLflow's own requests (:func:`apply_client_limits`), so a server that
answers ``/health`` but fails or hangs on the API costs seconds, not minutes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from dpsrgan.errors import DpsrganError
from dpsrgan.provenance import commit_tag

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HEALTH_TIMEOUT_S = 5.0
CLIENT_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
"""MLflow's HTTP settings for our commands, unless set in the environment. MLflow's defaults
(120 s read timeout, 7 retries with backoff factor 2) make a half-working server cost 4-15
minutes; these bound it: a 5xx fails after 3 attempts in about 2 s, a hung API after about
3 × 4 + 2 s. The read timeout is per socket read, so large artifact downloads still work."""

T = TypeVar("T")


def apply_client_limits(environ: MutableMapping[str, str] = os.environ) -> None:
    """Bound MLflow's request timeout and retries for this process (:data:`CLIENT_LIMITS`);
    a value already in the environment wins, so a slow server can be given more."""
    for key, value in CLIENT_LIMITS.items():
        environ.setdefault(key, value)
    # urllib3 logs a WARNING per retry; the command's one error line says what happened.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def check_reachable(tracking_uri: str, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Fail fast with one line when an HTTP tracking server does not answer ``/health``.

    Non-HTTP URIs (sqlite, file stores, databricks) are left to MLflow.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        kind = type(error).__name__
        raise DpsrganError(
            f"MLflow tracking server {tracking_uri} is unreachable ({kind}); start it or set "
            "MLFLOW_TRACKING_URI / --tracking-uri to a running server"
        ) from None
    if response.status_code != 200:
        raise DpsrganError(
            f"MLflow tracking server {tracking_uri} answered /health with HTTP {response.status_code}; "
            "check the server's logs"
        )


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """An :class:`MlflowClient` for ``tracking_uri`` (default: MLflow's resolution, env first)."""
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    check_reachable(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_call(call: Callable[[], T], what: str) -> T:
    """Run one registry call; turn "not found" and transport failures into one-line errors."""
    try:
        return call()
    except MlflowException as error:
        code = getattr(error, "error_code", "")
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise DpsrganError(f"{what}: not found in the registry ({first_line})") from None
        if "API request to" in first_line:
            raise DpsrganError(f"{what}: {_transport_failure(str(error))}") from None
        raise DpsrganError(f"{what}: {first_line}") from None


def _transport_failure(message: str) -> str:
    """MLflow's "API request to URL failed with exception ..." (urllib3's retry report) in a few
    words: which endpoint, and whether it answered 5xx or nothing."""
    endpoint = re.search(r"API request to (\S+)", message)
    where = f"the tracking server ({endpoint.group(1)})" if endpoint else "the tracking server"
    attempts = 1 + int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7"))
    status = re.search(r"too many (\d{3}) error responses", message)
    if status:
        return f"{where} answered HTTP {status.group(1)} {attempts} times; check the server's logs"
    timeout = re.search(r"read timeout=([\d.]+)", message)
    if timeout:
        return (
            f"{where} did not answer within {timeout.group(1)} s, {attempts} times; check the server "
            "(MLFLOW_HTTP_REQUEST_TIMEOUT allows a slower one)"
        )
    return f"request to {where} failed ({message.splitlines()[0][:160]}); is the server up?"


def alias_version(client: MlflowClient, name: str, alias: str, *, required: bool) -> ModelVersion | None:
    """The version ``alias`` points at, or None (``required=False``) when the alias is unset."""
    model = registry_call(lambda: client.get_registered_model(name), f"registered model {name!r}")
    version = model.aliases.get(alias)
    if version is None:
        if required:
            hint = (
                "run the register stage (dvc repro register)"
                if alias == CHALLENGER
                else "promote a version first"
            )
            raise DpsrganError(f"registered model {name!r} has no {alias!r} alias; {hint}")
        return None
    return registry_call(lambda: client.get_model_version(name, str(version)), f"{name}@{alias}")


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


@dataclass(frozen=True)
class RegisteredVersion:
    """What the register stage reports: where the model is and which version it became."""

    name: str
    version: str
    run_id: str
    model_uri: str

    @property
    def challenger_uri(self) -> str:
        return f"models:/{self.name}@{CHALLENGER}"


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


@contextmanager
def _no_download_progress_bars() -> Iterator[None]:
    """Two small files do not need MLflow's tqdm bars on the user's terminal (unless asked for)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    saved = os.environ.get(key)
    os.environ.setdefault(key, "false")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)


def download_registered_artifact(uri: str, key: str, dst_dir: str | Path) -> Path:
    """Download one pyfunc artifact (``weights``: the checkpoint; ``onnx``: the exported model)
    of ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``) into ``dst_dir``; only the
    ``MLmodel`` file and that artifact are fetched, and nothing from the registry is executed."""
    import mlflow

    check_reachable(mlflow.get_tracking_uri())
    with _no_download_progress_bars():
        mlmodel = registry_call(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri.rstrip('/')}/MLmodel", dst_path=str(dst_dir)
            ),
            uri,
        )
        spec = yaml.safe_load(Path(mlmodel).read_text()) or {}
        try:
            relative = spec["flavors"]["python_function"]["artifacts"][key]["path"]
        except (KeyError, TypeError):
            raise DpsrganError(
                f"{uri}: not a DPSRGAN pyfunc model with a {key!r} artifact in its MLmodel"
                + (
                    "; register it again with the onnx extra installed (pip install '.[onnx]'; "
                    "dvc repro register) to add the ONNX file"
                    if key != "weights"
                    else ""
                )
            ) from None
        return Path(
            registry_call(
                lambda: mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{uri.rstrip('/')}/{relative}", dst_path=str(dst_dir)
                ),
                uri,
            )
        )


def load_registered_generator(uri: str, device: str | Any = "cpu") -> Any:
    """The generator behind ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``).

    Downloads only the model's ``MLmodel`` and weights file and loads the weights with
    :func:`dpsrgan.load_generator` (``weights_only``): no code from the registry runs here.
    """
    import tempfile

    from dpsrgan.checkpoint import load_generator
    from dpsrgan.lifecycle.serving import WEIGHTS_KEY

    with tempfile.TemporaryDirectory(prefix="dpsrgan-registry-") as tmp:
        return load_generator(download_registered_artifact(uri, WEIGHTS_KEY, tmp), map_location=str(device))
