"""What a model replica answers the ingress: a PNG, or a refusal the ingress turns into one JSON
line. Plain values, so they cross between Ray processes without carrying tracebacks."""

from __future__ import annotations

from dataclasses import dataclass

BAD_REQUEST = "INVALID_PARAMETER_VALUE"
TOO_LARGE = "REQUEST_LIMIT_EXCEEDED"
UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
DEADLINE = "DEADLINE_EXCEEDED"
NOT_FOUND = "ENDPOINT_NOT_FOUND"
INTERNAL = "INTERNAL_ERROR"
"""Error codes: MLflow's names (``databricks_pb2``), so ``/invocations`` clients see its contract."""


@dataclass(frozen=True)
class Refusal:
    """An HTTP error: ``status``, an error ``code`` and a one-line ``message``."""

    status: int
    code: str
    message: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Upscaled:
    """The ×4 PNG file and the model version that made it."""

    png: bytes
    model_version: str


Reply = Upscaled | Refusal


def deadline_passed(label: str, timeout_s: float) -> Refusal:
    return Refusal(504, DEADLINE, f"{label}: not done within the {timeout_s:g} s deadline; its work was cancelled")
