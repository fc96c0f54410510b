"""The generator as an MLflow pyfunc model: base64 images in, base64 PNGs out.

Request/response contract (what ``mlflow models serve`` exposes at ``POST /invocations``)::

    {"dataframe_records": [{"image_b64": "<base64 of a PNG/JPEG/... file>"}]}
    -> {"predictions": [{"sr_b64": "<base64 of the x4 PNG>"}]}

Any image mode :mod:`dpsrgan.inference.images` supports goes in (gray stays gray, alpha is kept),
and the output is always PNG so nothing is lost on the way back. Upscaling is tiled (bounded
memory for big uploads) with the same engine as ``dpsrgan upscale``.

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
from PIL import Image, UnidentifiedImageError

from dpsrgan.errors import DpsrganError
from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE

logger = logging.getLogger(__name__)

INPUT_COLUMN = "image_b64"
OUTPUT_COLUMN = "sr_b64"
WEIGHTS_KEY = "weights"
WEIGHTS_FILE = "generator.pt"
ONNX_KEY = "onnx"
ONNX_FILE = "generator.onnx"
"""The verified ONNX export of the same weights (``dpsrgan export``), an artifact of the same
model version: promotion moves the alias, so the checkpoint and its ONNX file move together."""
MODEL_NAME = "generator"
"""The logged model's name inside its run (``runs:/<id>/generator``)."""
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", INPUT_COLUMN)]),
    outputs=Schema([ColSpec("string", OUTPUT_COLUMN)]),
)
DEFAULT_CONFIG = {"tile": DEFAULT_TILE, "device": "auto", "precision": "auto"}
"""Serving defaults (MLflow ``model_config``): the CLI's LR tile size bounds memory per request."""
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


def b64_to_image(text: str, max_pixels: int) -> Image.Image:
    """Decode a base64 image file; refuse non-images and images over ``max_pixels`` before
    decoding their pixels (decompression bombs)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DpsrganError(f"{INPUT_COLUMN}: not valid base64") from None
    try:
        image = Image.open(io.BytesIO(raw))
    except (UnidentifiedImageError, OSError):
        raise DpsrganError(f"{INPUT_COLUMN}: not an image file Pillow can read") from None
    width, height = image.size
    if width * height > max_pixels:
        raise DpsrganError(f"{INPUT_COLUMN}: {width}x{height} exceeds the {max_pixels}-pixel limit")
    image.load()
    return image


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
        self.max_pixels = int(config.get("max_pixels", DEFAULT_MAX_PIXELS))
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
        from dpsrgan.inference.images import from_planes, to_planes

        if INPUT_COLUMN not in model_input:
            raise MlflowException(
                f"input needs a {INPUT_COLUMN!r} column", error_code=INVALID_PARAMETER_VALUE
            )
        outputs = []
        for row, text in enumerate(model_input[INPUT_COLUMN]):
            try:
                image = b64_to_image(text, self.max_pixels)
                planes, mode = to_planes(image)
            except DpsrganError as error:
                raise MlflowException(f"row {row}: {error}", error_code=INVALID_PARAMETER_VALUE) from None
            upscaled = from_planes(self.upscaler.upscale_planes(planes), mode)
            outputs.append(image_to_b64(upscaled))
        return pd.DataFrame({OUTPUT_COLUMN: outputs})


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
