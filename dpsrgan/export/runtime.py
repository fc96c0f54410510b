"""Run an exported generator with ONNX Runtime or OpenVINO: float32 N×3×H×W in, N×3×sH×sW out.

Torch-free on purpose (a server that only has ``dpsrgan[onnx]`` or ``dpsrgan[openvino]``
upscales with it). The model's scale and receptive radius come from its metadata
(:mod:`dpsrgan.export.metadata`), so the caller can tile it exactly as the torch engine does.

Precision: ONNX Runtime runs the file as stored (fp32, or int8 where quantised). OpenVINO's CPU
plugin computes in bf16 by default on CPUs with native bf16 (the same rule as the torch
engine's ``--precision auto``); ``fp32`` pins it to f32, ``bf16`` asks for bf16.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpsrgan.errors import DpsrganError
from dpsrgan.export import metadata as meta

logger = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "openvino")
SUFFIXES = {"onnxruntime": (".onnx",), "openvino": (".xml", ".onnx")}
_OV_HINTS = {"fp32": "f32", "bf16": "bf16"}
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}


@dataclass
class ExportedModel:
    """A loaded exported generator. Call it on float32 N×3×H×W arrays (any N, H, W ≥ 1)."""

    path: Path
    backend: str
    precision: str
    """What actually computes: ``fp32``/``bf16`` (OpenVINO's hint) or ``fp32`` (ONNX Runtime);
    ``int8`` files say so in :attr:`metadata` (``precision``)."""
    metadata: dict[str, str]
    _run: Callable[[np.ndarray], np.ndarray]

    @property
    def scale(self) -> int:
        return int(self.metadata["scale"])

    @property
    def receptive_radius(self) -> int:
        return int(self.metadata["receptive_radius"])

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(lr, dtype=np.float32))


def load_exported(path: str | Path, backend: str, precision: str = "auto") -> ExportedModel:
    """Load an exported file for ``backend``; one :class:`DpsrganError` line for a missing or
    wrong-kind file, a missing runtime package, or a precision the backend cannot run."""
    path = Path(path)
    if backend not in BACKENDS:
        raise DpsrganError(f"--backend must be torch or one of {', '.join(BACKENDS)}, got {backend!r}")
    if path.suffix.lower() not in SUFFIXES[backend]:
        raise DpsrganError(
            f"--model {path}: the {backend} backend runs {' or '.join(SUFFIXES[backend])} files written by "
            f"`dpsrgan export` (e.g. dpsrgan export CHECKPOINT --format "
            f"{'onnx' if backend == 'onnxruntime' else 'openvino'} -o model{SUFFIXES[backend][0]})"
        )
    if not path.is_file():
        raise DpsrganError(f"--model {path}: no such file; export one with `dpsrgan export`")
    if precision not in ("auto", "fp32", "bf16"):
        raise DpsrganError(f"--precision {precision}: the {backend} backend runs auto, fp32 or bf16")
    if backend == "onnxruntime":
        return _onnxruntime(path, precision)
    return _openvino(path, precision)


def _import(backend: str) -> Any:
    import importlib

    try:
        return importlib.import_module(backend)
    except ImportError:
        raise DpsrganError(
            f"--backend {backend} needs the {backend} package: pip install 'dpsrgan[{_EXTRAS[backend]}]'"
        ) from None


def _onnxruntime(path: Path, precision: str) -> ExportedModel:
    ort = _import("onnxruntime")
    if precision == "bf16":
        raise DpsrganError("--precision bf16: the onnxruntime backend runs fp32; use --backend openvino for bf16")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...) for bad files
        raise DpsrganError(f"--model {path}: ONNX Runtime cannot load it ({_first_line(error)})") from None
    metadata = meta.unprefixed(session.get_modelmeta().custom_metadata_map, str(path))
    name = session.get_inputs()[0].name

    def run(lr: np.ndarray) -> np.ndarray:
        return session.run(None, {name: lr})[0]

    return ExportedModel(path, "onnxruntime", "fp32", metadata, run)


def _openvino(path: Path, precision: str) -> ExportedModel:
    ov = _import("openvino")
    core = ov.Core()
    try:
        model = core.read_model(str(path))
    except RuntimeError as error:
        raise DpsrganError(f"--model {path}: OpenVINO cannot read it ({_first_line(error)})") from None
    metadata = meta.unprefixed(openvino_metadata(model), str(path))
    config: dict[str, str] = {}
    if precision in _OV_HINTS:
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise DpsrganError("--precision bf16: this CPU has no native bf16; use fp32")
        config["INFERENCE_PRECISION_HINT"] = _OV_HINTS[precision]
    compiled = core.compile_model(model, "CPU", config)
    chosen = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    output = compiled.output(0)
    request = compiled.create_infer_request()

    def run(lr: np.ndarray) -> np.ndarray:
        return request.infer([lr])[output].copy()  # the request reuses its output buffer

    return ExportedModel(path, "openvino", "bf16" if "bf16" in chosen else "fp32", metadata, run)


def openvino_metadata(model: Any) -> dict[str, str]:
    """``dpsrgan.*`` pairs of an OpenVINO model: its ``dpsrgan`` rt_info section (an IR written
    by ``dpsrgan export``) or the ONNX metadata_props OpenVINO keeps under ``framework``."""
    info = model.get_rt_info()
    pairs: Mapping[str, Any] = {}
    if "dpsrgan" in info:
        pairs = {meta.PREFIX + key: value for key, value in info["dpsrgan"].items()}
    elif "framework" in info:
        pairs = info["framework"]
    return {key: value.astype(str) if hasattr(value, "astype") else str(value) for key, value in pairs.items()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
