"""HTTP in and out of the ingress: bounded body reads, one-line JSON errors, PNG responses, and
the MLflow pyfunc's JSON contract for ``POST /invocations``."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.serving import INPUT_COLUMN, OUTPUT_COLUMN, b64_to_bytes, encode_b64
from dpsrgan.serving.replies import BAD_REQUEST, TOO_LARGE, Refusal, Upscaled

MODEL_VERSION_HEADER = "X-Model-Version"
PAYLOAD_KEYS = ("dataframe_records", "dataframe_split", "inputs", "instances")


def error_response(refusal: Refusal) -> Response:
    """``{"error_code": ..., "message": ...}`` on one line (MLflow's error shape), never a trace."""
    headers = {}
    if refusal.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after_s)))
    body = json.dumps({"error_code": refusal.code, "message": refusal.message}) + "\n"
    return Response(body, status_code=refusal.status, headers=headers, media_type="application/json")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(value) + "\n", status_code=status, headers=headers, media_type="application/json")


def png_response(reply: Upscaled) -> Response:
    return Response(reply.png, media_type="image/png", headers={MODEL_VERSION_HEADER: reply.model_version})


def predictions_response(replies: list[Upscaled]) -> Response:
    """The pyfunc's answer: ``{"predictions": [{"sr_b64": ...}, ...]}``."""
    predictions = [{OUTPUT_COLUMN: encode_b64(reply.png)} for reply in replies]
    versions = ",".join(dict.fromkeys(reply.model_version for reply in replies))
    return json_response({"predictions": predictions}, headers={MODEL_VERSION_HEADER: versions})


async def read_body(request: Request, limit: int) -> bytes | Refusal:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_big = Refusal(413, TOO_LARGE, f"upload: body over {limit:,} bytes; send a smaller image")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_big
        chunks.append(chunk)
    return b"".join(chunks)


def invocation_images(body: bytes) -> list[tuple[str, bytes]] | Refusal:
    """``(row label, image file bytes)`` for each row of an MLflow scoring request
    (``dataframe_records``, ``dataframe_split``, ``inputs`` or ``instances``; column ``image_b64``)."""
    try:
        payload = json.loads(body)
        cells = _image_cells(payload)
        return [(f"row {row}", b64_to_bytes(cell, f"row {row}")) for row, cell in enumerate(cells)]
    except (ValueError, UnicodeDecodeError):
        return _bad("body is not JSON")
    except DpsrganError as error:
        return Refusal(400, BAD_REQUEST, str(error))


def _image_cells(payload: Any) -> list[Any]:
    """The ``image_b64`` cells of a pyfunc payload; a wrong shape is a one-line DpsrganError."""
    key = next((k for k in PAYLOAD_KEYS if isinstance(payload, dict) and k in payload), None)
    if key is None:
        raise DpsrganError(f"invocations: expected a JSON object with one of {', '.join(PAYLOAD_KEYS)}")
    value = payload[key]
    try:
        if key == "dataframe_split":
            column = value["columns"].index(INPUT_COLUMN)
            cells = [row[column] for row in value["data"]]
        elif isinstance(value, dict):
            cells = list(value[INPUT_COLUMN])
        else:
            cells = [record[INPUT_COLUMN] for record in value]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise DpsrganError(f"invocations: {key} needs an {INPUT_COLUMN!r} column of base64 images") from None
    if not cells:
        raise DpsrganError(f"invocations: {key} has no rows")
    return cells


def _bad(reason: str) -> Refusal:
    return Refusal(400, BAD_REQUEST, f"invocations: {reason}; send {{\"dataframe_records\": [{{\"{INPUT_COLUMN}\": \"<base64>\"}}]}}")
