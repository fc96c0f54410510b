"""Any-size upscaling: tiled with real-pixel context and blended overlaps, every image mode,
precision with a safety net, and files/folders with atomic writes.

Modules: ``tiling`` (the tiled forward pass), ``runtime`` (device and precision), ``engine``
(the prepared model and its retry policies), ``images`` (files and PIL modes ↔ arrays),
``batch`` (files and folders), ``resolve`` (the ``--model`` string), ``api`` (Python API).
"""

from dpsrgan.inference.api import upscale, upscale_tensor
from dpsrgan.inference.batch import UpscaleReport, upscale_paths
from dpsrgan.inference.resolve import resolve_model
from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_TILE",
    "UpscaleReport",
    "resolve_model",
    "upscale",
    "upscale_paths",
    "upscale_tensor",
]
