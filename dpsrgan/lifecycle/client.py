"""The MLflow client side every command shares, and reading a registered model back.

- Talking to a server: :func:`apply_client_limits` bounds MLflow's own requests, a short
  ``/health`` probe (:func:`check_reachable`) fails fast where MLflow's retry loop would spend a
  minute, and :func:`registry_call` turns "not found" and transport failures into one
  :class:`DpsrganError` line; :func:`alias_version` reads ``champion`` / ``challenger``.
- Reading a version (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``): one pyfunc artifact
  (:func:`download_registered_artifact`) or the generator itself
  (:func:`load_registered_generator`); nothing from the registry is executed.

Writing a version (:mod:`dpsrgan.lifecycle.registry`) sits above this module, beside the export it
runs; export, inference and serving read models through this one, so no import cycle ties them.
MLflow, requests and yaml load on first use: importing :data:`REGISTRY_PREFIX` costs nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dpsrgan.errors import DpsrganError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger(__name__)

REGISTRY_PREFIX = "models:/"
"""How a model in the MLflow registry is named wherever a checkpoint path is accepted."""
WEIGHTS_KEY = "weights"
"""The pyfunc artifact holding the generator checkpoint (written by :mod:`dpsrgan.lifecycle.serving`)."""
ONNX_KEY = "onnx"
"""The pyfunc artifact holding its verified ONNX export, when the version has one."""

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
    import requests

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
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_call(call: Callable[[], T], what: str) -> T:
    """Run one registry call; turn "not found" and transport failures into one-line errors."""
    from mlflow.exceptions import MlflowException

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
    import yaml

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
                    if key != WEIGHTS_KEY
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

    with tempfile.TemporaryDirectory(prefix="dpsrgan-registry-") as tmp:
        return load_generator(download_registered_artifact(uri, WEIGHTS_KEY, tmp), map_location=str(device))

