"""The generator as an MLflow pyfunc model: base64 images in, base64 PNGs out.

Request/response contract (what ``mlflow models serve`` exposes at ``POST /invocations``)::

    {"dataframe_records": [{"image_b64": "<base64 of a PNG/JPEG/... file>"}]}
    -> {"predictions": [{"sr_b64": "<base64 of the x4 PNG>"}]}

Any image mode :mod:`dpsrgan.inference.images` supports goes in (gray stays gray, alpha is kept),
and the output is always PNG so nothing is lost on the way back. Decoding (EXIF orientation, ICC
profile), upscaling (tiled, bounded memory) and encoding are ``dpsrgan upscale``'s own code, so a
served PNG equals the one the CLI writes byte for byte. A malformed upload (not base64, not an
image, truncated, over ``max_pixels``: a decompression bomb) is a 400 whose message is our one
line, without MLflow's echo of the input or a traceback.

The model is logged "from code" (:mod:`dpsrgan.lifecycle.pyfunc_model` is the model file) with this
package as its code path, so nothing is pickled: the registered artifact is the weights file
written by :func:`dpsrgan.save_generator` (loaded with ``weights_only=True``), this package's
source, and exact pins of the few packages it imports.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ColSpec, Schema
from PIL import Image

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import ONNX_KEY, WEIGHTS_KEY
from dpsrgan.upscale_defaults import DEFAULT_TILE, SERVE_MAX_PIXELS

logger = logging.getLogger(__name__)

INPUT_COLUMN = "image_b64"
OUTPUT_COLUMN = "sr_b64"
WEIGHTS_FILE = "generator.pt"
ONNX_FILE = "generator.onnx"
"""The verified ONNX export of the same weights (``dpsrgan export``), an artifact of the same
model version: promotion moves the alias, so the checkpoint and its ONNX file move together."""
MODEL_NAME = "generator"
"""The logged model's name inside its run (``runs:/<id>/generator``)."""
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", INPUT_COLUMN)]),
    outputs=Schema([ColSpec("string", OUTPUT_COLUMN)]),
)
DEFAULT_CONFIG = {"tile": DEFAULT_TILE, "device": "auto", "precision": "auto", "max_pixels": SERVE_MAX_PIXELS}
"""Serving defaults (MLflow ``model_config``): the CLI's LR tile size bounds memory per request;
``max_pixels`` bounds the work one request can ask for (``mlflow models serve`` has no admission
control, so this and its request timeout are what keep it answering)."""
SERVER_HINT = "send a smaller image (the server's max_pixels)"
"""The fix an over-limit upload is told (a file's message names --max-pixels instead)."""
REQUIREMENTS = ("mlflow", "torch", "numpy", "pandas", "pillow", "tqdm")
"""Distributions the model imports (itself + mlflow's pyfunc); pinned to installed versions."""


def pinned_requirements() -> list[str]:
    """``name==version`` for :data:`REQUIREMENTS`, local labels dropped (``2.13.0+cpu`` →
    ``2.13.0``, which pip matches against the CPU and CUDA builds alike)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in REQUIREMENTS]


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_to_b64(image: Image.Image, format: str = "PNG") -> str:
    """A PIL image as base64 of its encoded file (PNG by default)."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return encode_b64(buffer.getvalue())


def b64_to_bytes(text: object, label: str) -> bytes:
    """The file bytes of a base64 cell; not a string or not base64 is one DpsrganError line."""
    try:
        return base64.b64decode(text, validate=True)  # type: ignore[arg-type]
    except (binascii.Error, ValueError, TypeError):
        raise DpsrganError(f"{label}: {INPUT_COLUMN} is not valid base64") from None


class UploadRejected(MlflowException):
    """A malformed upload, answered 400 with exactly our one-line message.

    MLflow's scoring server rewrites ``message`` of an exception raised by ``predict`` to
    ``"Failed to predict data '<the input frame>'. \nError: ..."``: two lines that echo part of
    the upload back. The message here is fixed at construction, so the client reads our line.
    """

    def __init__(self, line: str) -> None:
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_line"):  # MlflowException.__init__ sets it first; later writes are MLflow's
            self._line = value


def example_frame() -> pd.DataFrame:
    """The logged input example: one 8×8 gradient PNG (tiny, so validation at log time is fast)."""
    gradient = Image.linear_gradient("L").resize((8, 8)).convert("RGB")
    return pd.DataFrame({INPUT_COLUMN: [image_to_b64(gradient)]})


class SRPyfunc(PythonModel):
    """Loads the generator checkpoint artifact; ``predict`` upscales each row's image."""

    def load_context(self, context: PythonModelContext) -> None:
        from dpsrgan.checkpoint import load_generator
        from dpsrgan.inference.engine import Upscaler

        config = {**DEFAULT_CONFIG, **(context.model_config or {})}
        self.max_pixels = int(config["max_pixels"])
        generator = load_generator(context.artifacts[WEIGHTS_KEY])
        self.upscaler = Upscaler.prepare(
            generator,
            tile=int(config["tile"]),
            device=str(config["device"]),
            precision=str(config["precision"]),
        )

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if INPUT_COLUMN not in model_input:
            raise UploadRejected(f"input needs a {INPUT_COLUMN!r} column")
        return pd.DataFrame(
            {OUTPUT_COLUMN: [self._upscale_row(f"row {row}", text) for row, text in enumerate(model_input[INPUT_COLUMN])]}
        )

    def _upscale_row(self, label: str, text: object) -> str:
        """One cell: decode as ``dpsrgan upscale`` reads a file, upscale, encode as it writes a PNG."""
        from dpsrgan.inference.images import decode_planes, encode_image, from_planes

        try:
            planes, mode, icc_profile = decode_planes(b64_to_bytes(text, label), label, self.max_pixels, SERVER_HINT)
        except DpsrganError as error:
            raise UploadRejected(str(error)) from None
        upscaled = from_planes(self.upscaler.upscale_planes(planes), mode, icc_profile)
        return encode_b64(encode_image(upscaled, "PNG"))


def log_pyfunc(
    checkpoint: Path,
    *,
    registered_model_name: str | None = None,
    model_config: dict[str, Any] | None = None,
    onnx_model: Path | None = None,
) -> ModelInfo:
    """Log ``checkpoint`` as a pyfunc model on the active run (and register it when named).
    ``onnx_model``, when given, is stored beside the weights as ``artifacts/generator.onnx``."""
    import mlflow

    import dpsrgan

    model_file = Path(__file__).with_name("pyfunc_model.py")
    with _weights_named(checkpoint) as weights:
        artifacts = {WEIGHTS_KEY: str(weights)}
        if onnx_model is not None:
            artifacts[ONNX_KEY] = str(onnx_model)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(model_file),
            code_paths=[str(Path(dpsrgan.__file__).parent)],
            artifacts=artifacts,
            signature=SIGNATURE,
            input_example=example_frame(),
            pip_requirements=pinned_requirements(),
            model_config={**DEFAULT_CONFIG, **(model_config or {})},
            registered_model_name=registered_model_name,
        )


@contextmanager
def _weights_named(checkpoint: Path) -> Iterator[Path]:
    """A temp copy of ``checkpoint`` named :data:`WEIGHTS_FILE`, so every registered model keeps
    its weights at ``artifacts/generator.pt`` whatever the checkpoint was called."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise DpsrganError(f"{checkpoint}: checkpoint not found; run train_gan first")
    with tempfile.TemporaryDirectory(prefix="dpsrgan-weights-") as tmp:
        target = Path(tmp) / WEIGHTS_FILE
        shutil.copyfile(checkpoint, target)
        yield target
