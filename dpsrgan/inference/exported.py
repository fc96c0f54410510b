"""Upscale with an exported model (ONNX Runtime or OpenVINO) exactly as the torch engine does:
same tiling (:mod:`dpsrgan.inference.tiling` on numpy arrays), same image modes and rounding,
no torch import. ``dpsrgan upscale --backend onnxruntime|openvino`` runs this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpsrgan.export.runtime import ExportedModel, load_exported
from dpsrgan.inference.planes import LUMA, Planes, full_scale, upscale_alpha
from dpsrgan.inference.tiling import effective_overlap, tile_settings, tiled_forward

logger = logging.getLogger(__name__)


@dataclass
class ExportedUpscaler:
    """The :class:`~dpsrgan.inference.engine.Upscaler` interface batch.py uses, over an
    :class:`~dpsrgan.export.runtime.ExportedModel` (CPU)."""

    model: ExportedModel
    scale: int
    tile: int
    pad: int
    overlap: int
    device: str = "cpu"

    @classmethod
    def prepare(
        cls, path: str, backend: str, *, tile: int = 0, tile_pad: int | None = None,
        overlap: int | None = None, precision: str = "auto",
    ) -> ExportedUpscaler:
        """Load ``path`` for ``backend``; pad defaults to the receptive radius in its metadata
        (exact tiling), as for the torch engine (:func:`~dpsrgan.inference.tiling.tile_settings`)."""
        model = load_exported(path, backend, precision)
        pad, overlap = tile_settings(tile, tile_pad, overlap, model.receptive_radius)
        return cls(model, model.scale, tile, pad, overlap)

    @property
    def precision(self) -> str:
        stored = self.model.metadata.get("precision", "fp32")
        return f"{self.model.backend} {stored if stored == 'int8' else self.model.precision}"

    def run(self, lr: np.ndarray, sink: Callable[[int, np.ndarray], None]) -> None:
        """Upscale ``lr`` (float32 N×3×H×W in [0, 1]); hand each finished band of clamped
        float32 rows to ``sink(first_row, rows)``, top to bottom."""
        overlap = effective_overlap(self.tile, self.pad, self.overlap)
        for row, band in tiled_forward(lr, self.model, scale=self.scale, tile=self.tile, pad=self.pad, overlap=overlap):
            sink(row, np.clip(band, 0, 1, out=band))

    def upscale_tensor(self, lr: np.ndarray) -> np.ndarray:
        """N×3×H×W float in [0, 1] → N×3×sH×sW float32 in [0, 1]."""
        height, width = lr.shape[-2:]
        out = np.empty((*lr.shape[:-2], height * self.scale, width * self.scale), np.float32)

        def sink(row: int, band: np.ndarray) -> None:
            out[..., row : row + band.shape[-2], :] = band

        self.run(np.asarray(lr, np.float32), sink)
        return out

    def upscale_planes(self, planes: Planes) -> Planes:
        """As :meth:`Upscaler.upscale_planes`: gray through the model as RGB and back to BT.601
        luma, alpha bicubic, output in the input's dtype."""
        color = planes.color
        dtype, top = color.dtype, full_scale(color.dtype)
        height, width, channels = color.shape
        lr = (color.astype(np.float32) / np.float32(top)).transpose(2, 0, 1)[None]
        if channels == 1:
            lr = np.repeat(lr, 3, axis=1)
        out = np.empty((height * self.scale, width * self.scale, channels), dtype=dtype)
        luma = np.asarray(LUMA, np.float32).reshape(1, 3, 1, 1)

        def sink(row: int, band: np.ndarray) -> None:
            if channels == 1:
                band = (band * luma).sum(1, keepdims=True)
            rows = band[0].transpose(1, 2, 0)
            out[row : row + rows.shape[0]] = rows.astype(dtype) if top == 1.0 else np.round(rows * np.float32(top))

        self.run(np.ascontiguousarray(lr), sink)
        alpha = None if planes.alpha is None else upscale_alpha(planes.alpha, self.scale)
        return Planes(out, alpha)
