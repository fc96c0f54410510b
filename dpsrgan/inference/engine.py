"""The upscaling engine: one prepared model plus the settings every image shares, and the two
retry policies around the tiled forward pass (CUDA out-of-memory → halve the tile; a bad
reduced-precision output → fp32 with a warning). Both are sticky for the rest of a run, so a
folder of similar images pays for a failure once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.image_tensors import images_to_tensor
from dpsrgan.inference.fast import fast_inference_model
from dpsrgan.inference.planes import LUMA, Planes, full_scale, upscale_alpha
from dpsrgan.inference.runtime import (
    DTYPES,
    Precision,
    ReducedPrecisionFailure,
    check_reduced_output,
    resolve_device,
    resolve_precision,
)
from dpsrgan.inference.tiling import effective_overlap, tile_settings, tiled_forward

logger = logging.getLogger(__name__)

FALLBACK_PAD = 32
"""Tile pad for a model that does not state ``receptive_radius`` (a guess, logged)."""
MIN_TILE = 16
"""Below this many LR pixels a tile is mostly pad; out-of-memory halving stops here."""

Sink = Callable[[int, torch.Tensor], None]


def model_scale(model: nn.Module, device: torch.device) -> int:
    """The model's ``scale`` attribute, or measured on an 8×8 probe for any other module."""
    scale = getattr(model, "scale", None)
    if isinstance(scale, int):
        return scale
    with torch.inference_mode():
        probe = model(torch.zeros(1, 3, 8, 8, device=device))
    height, width = probe.shape[-2:]
    if height != width or height % 8:
        raise DpsrganError(f"model maps an 8x8 input to {height}x{width}; expected an integer upscaling")
    return height // 8


def model_receptive_radius(model: nn.Module) -> int:
    """LR pixels of context an output pixel needs per side (the Generator states it)."""
    radius = getattr(model, "receptive_radius", None)
    if isinstance(radius, int):
        return radius
    logger.info("model does not state receptive_radius; using tile pad %d", FALLBACK_PAD)
    return FALLBACK_PAD


@contextmanager
def restored_mode(model: nn.Module) -> Iterator[None]:
    """Give the model back in the train/eval mode it came in (callers may be mid-training)."""
    was_training = model.training
    try:
        yield
    finally:
        model.train(was_training)


@dataclass
class Upscaler:
    """A model ready for inference (eval mode, on its device, channels-last) and the settings
    shared by every image of a run. Build with :meth:`prepare`.

    ``runner`` is what actually runs: for a :class:`~dpsrgan.models.generator.Generator` its
    faster inference-only form (:mod:`dpsrgan.inference.fast`: same output up to float
    rounding), for any other module the module itself."""

    model: nn.Module
    runner: nn.Module
    device: torch.device
    precision: Precision
    scale: int
    tile: int
    pad: int
    overlap: int

    @classmethod
    def prepare(
        cls,
        model: nn.Module,
        *,
        scale: int | None = None,
        tile: int = 0,
        tile_pad: int | None = None,
        overlap: int | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> Upscaler:
        """Resolve device and precision, move the model (in place) and fill in the defaults:
        scale from the model, pad and overlap by :func:`~dpsrgan.inference.tiling.tile_settings`
        (pad = the model's receptive radius: exact tiling)."""
        pad, overlap = tile_settings(tile, tile_pad, overlap, model_receptive_radius(model))
        torch_device = resolve_device(device)
        chosen = resolve_precision(precision, torch_device)
        model.eval().to(torch_device, memory_format=torch.channels_last)
        return cls(
            model=model,
            runner=fast_inference_model(model).to(memory_format=torch.channels_last),
            device=torch_device,
            precision=chosen,
            scale=scale if scale is not None else model_scale(model, torch_device),
            tile=tile,
            pad=pad,
            overlap=overlap,
        )

    def run(self, lr: torch.Tensor, sink: Sink) -> None:
        """Upscale ``lr`` (N×3×H×W float in [0, 1], any device) and hand each finished band of
        clamped float32 output rows to ``sink(first_row, rows)``, top to bottom.

        A failure mid-image restarts the whole image (the sink simply sees the rows again).
        """
        while True:
            try:
                with torch.inference_mode():
                    overlap = effective_overlap(self.tile, self.pad, self.overlap)
                    for row, band in tiled_forward(
                        lr, self._forward, scale=self.scale, tile=self.tile, pad=self.pad, overlap=overlap
                    ):
                        sink(row, band.clamp_(0, 1))
                return
            except ReducedPrecisionFailure as failure:
                logger.warning("%s; falling back to fp32 for this and later images", failure)
                self.precision = "fp32"
            except torch.OutOfMemoryError:
                if self.device.type != "cuda":
                    raise
                self._halve_tile(lr)

    def _forward(self, lr_tile: torch.Tensor) -> torch.Tensor:
        lr_tile = lr_tile.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        reduced = self.precision != "fp32"
        with torch.autocast(self.device.type, dtype=DTYPES.get(self.precision), enabled=reduced):
            sr = self.runner(lr_tile).float()
        if reduced:
            check_reduced_output(lr_tile, sr, self.precision)
        return sr

    def _halve_tile(self, lr: torch.Tensor) -> None:
        current = self.tile if self.tile > 0 else max(lr.shape[-2:])
        if current // 2 < MIN_TILE:
            raise DpsrganError(
                f"CUDA out of memory even with --tile {current}; use --device cpu or free GPU memory"
            )
        self.tile = current // 2
        torch.cuda.empty_cache()
        logger.warning("CUDA out of memory; retrying with --tile %d", self.tile)

    def upscale_tensor(self, lr: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float in [0, 1] → N×3×sH×sW float32 in [0, 1], on ``lr``'s device."""
        if lr.ndim != 4:
            raise DpsrganError(f"upscale_tensor expects an N×C×H×W tensor, got shape {tuple(lr.shape)}")
        height, width = lr.shape[-2:]
        out = torch.empty(*lr.shape[:-2], height * self.scale, width * self.scale, device=lr.device)

        def sink(row: int, band: torch.Tensor) -> None:
            out[..., row : row + band.shape[-2], :] = band

        self.run(lr, sink)
        return out

    def upscale_planes(self, planes: Planes) -> Planes:
        """Upscale an image's arrays; the output has the input's dtype and channel layout.

        Color goes through the model (gray replicated to RGB and brought back with BT.601
        luma). Alpha is upscaled bicubically: the model was trained on photographs, not masks,
        and would texture a flat alpha; bicubic keeps masks smooth and cut-outs clean.
        """
        return self.upscale_batch([planes])[0]

    def upscale_batch(self, batch: Sequence[Planes]) -> list[Planes]:
        """:meth:`upscale_planes` for images whose colour arrays share one shape and dtype, run
        through the model as one N×3×H×W batch (a server's dynamic batching). A convolution
        treats batch items independently, so each output equals that image upscaled alone."""
        color = batch[0].color
        if any(item.color.shape != color.shape or item.color.dtype != color.dtype for item in batch):
            raise ValueError("upscale_batch needs colour arrays of one shape and dtype")
        dtype, top = color.dtype, full_scale(color.dtype)
        height, width, channels = color.shape
        lr = images_to_tensor(np.stack([item.color for item in batch]), top)
        if channels == 1:
            lr = lr.expand(-1, 3, -1, -1)
        out = np.empty((len(batch), height * self.scale, width * self.scale, channels), dtype=dtype)
        luma = torch.tensor(LUMA, device=self.device).view(1, 3, 1, 1)

        def sink(row: int, band: torch.Tensor) -> None:
            if channels == 1:
                band = (band * luma).sum(1, keepdim=True)
            rows = band.permute(0, 2, 3, 1)
            out[:, row : row + rows.shape[1]] = _quantise(rows, dtype, top)

        self.run(lr, sink)
        return [
            Planes(out[index], None if item.alpha is None else upscale_alpha(item.alpha, self.scale))
            for index, item in enumerate(batch)
        ]


def _quantise(values: torch.Tensor, dtype: np.dtype, top: float) -> np.ndarray:
    """[0, 1] float → the image dtype, rounded to nearest (floats pass through)."""
    if top == 1.0:
        return values.cpu().numpy().astype(dtype, copy=False)
    integers = values.mul(top).round_()
    if dtype == np.uint8:  # values are in [0, 255] after the clamp: convert in torch, no int32 copy
        return integers.to(torch.uint8).cpu().numpy()
    return integers.to(torch.int32).cpu().numpy().astype(dtype)
