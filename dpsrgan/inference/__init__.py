"""Any-size upscaling: tiled with real-pixel context and blended overlaps, every image mode,
precision with a safety net, and files/folders with atomic writes.

Modules: ``tiling`` (the tiled forward pass), ``runtime`` (device and precision), ``engine``
(the prepared model and its retry policies), ``exported`` (the same for an exported ONNX /
OpenVINO model, without torch), ``planes`` and ``images`` (files and PIL modes ↔ arrays),
``batch`` (files and folders), ``resolve`` (the ``--model`` string), ``api`` (Python API).

The names below load lazily, so the exported-model path (``dpsrgan upscale --backend
onnxruntime``) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE

_LAZY = {
    "UpscaleReport": "dpsrgan.inference.batch",
    "upscale_paths": "dpsrgan.inference.batch",
    "resolve_model": "dpsrgan.inference.resolve",
    "upscale": "dpsrgan.inference.api",
    "upscale_tensor": "dpsrgan.inference.api",
}

__all__ = sorted([*_LAZY, "DEFAULT_MAX_PIXELS", "DEFAULT_TILE"])

if TYPE_CHECKING:
    from dpsrgan.inference.api import upscale, upscale_tensor
    from dpsrgan.inference.batch import UpscaleReport, upscale_paths
    from dpsrgan.inference.resolve import resolve_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpsrgan.inference' has no attribute {name!r}")
