r"""Tiled forward pass with real-pixel context and blended overlaps (no precision or device
policy: the caller passes ``forward``). Works on torch tensors and on numpy arrays alike, so the
exported-model backends (:mod:`dpsrgan.inference.exported`) tile exactly as the torch engine
does without importing torch.

Geometry, one axis, in LR pixels (``s`` = scale)::

    image   |------------------------------- H -------------------------------|
    tile i        [y0 ................. y1)                 core: tile rows, stride = tile
    input      [y0-pad ............................ y1+pad)  real neighbouring pixels as context
    kept          [y0-o ..................... y1+o)          o = overlap <= pad, <= tile/2
    weight      0 /‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\ 0   linear ramps over [b-o, b+o]

Each tile's output is cropped to its kept window and added with a separable weight that ramps
linearly across every interior boundary ``b``; the two ramps meeting at ``b`` sum to 1, so the
weights form a partition of unity and no normalisation pass is needed. Image borders get no
ramp and no context beyond the border, exactly as the untiled model sees them (its own zero
padding). Hence: with ``pad`` >= the model's receptive radius every kept pixel equals the
untiled output (up to float rounding), and with a smaller pad the residual error is blended
away over ``2·o`` output pixels instead of showing as a seam.

Memory: tiles are processed in rows; only one band of ``(tile + 2·o)·s`` output rows is held in
float, and finished rows are handed to the caller as soon as no later tile can touch them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from dpsrgan.errors import DpsrganError

if TYPE_CHECKING:
    import torch

Array: TypeAlias = "torch.Tensor | np.ndarray"
Forward = Callable[[Any], Any]


def spans(size: int, tile: int) -> list[tuple[int, int]]:
    """Half-open tile cores ``[start, end)`` covering ``range(size)`` with stride ``tile``."""
    return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def default_overlap(pad: int, radius: int) -> int:
    """Blend half-width for a model whose output needs ``radius`` LR pixels of context.

    With ``pad >= radius`` only ``pad - radius`` can be blended without losing exactness (a
    kept pixel ``o`` beyond the core has ``pad - o`` context); tiles agree there anyway, so no
    blend is needed. With a smaller pad tiles disagree a little at their cores' edges, and
    blending over ``pad // 2`` hides that while never using pixels with under half the pad.
    """
    return pad - radius if pad >= radius else pad // 2


def tile_settings(tile: int, tile_pad: int | None, overlap: int | None, radius: int) -> tuple[int, int]:
    """``(pad, overlap)`` for a model needing ``radius`` LR pixels of context, as both backends
    (torch and exported) choose them: ``tile_pad`` defaults to the radius (tiled output equals
    untiled), ``overlap`` to :func:`default_overlap`. A negative value is one error line."""
    if tile < 0 or (tile_pad is not None and tile_pad < 0) or (overlap is not None and overlap < 0):
        raise DpsrganError(f"tile ({tile}), tile pad ({tile_pad}) and overlap ({overlap}) must be >= 0")
    pad = radius if tile_pad is None else tile_pad
    return pad, default_overlap(pad, radius) if overlap is None else overlap


def effective_overlap(tile: int, pad: int, overlap: int) -> int:
    """``overlap`` limited to what the geometry allows: at most ``pad`` (kept pixels must lie
    inside the tile's input) and ``tile // 2`` (a tile's two ramps must not meet)."""
    return max(0, min(overlap, pad, tile // 2))


def _weights(start: int, stop: int, scale: int, low_edge: int | None, high_edge: int | None,
             overlap: int) -> np.ndarray:
    """Blend weights for the output pixels of the kept LR window ``[start, stop)`` (one axis).

    ``low_edge``/``high_edge`` are the interior boundaries of this tile (None at an image
    border). Weights are evaluated at output pixel centres in LR coordinates, so neighbours'
    ramps are mirror images and sum to exactly 1.
    """
    centres = start + (np.arange((stop - start) * scale, dtype=np.float32) + 0.5) / scale  # float32 throughout
    weight = np.ones_like(centres)
    if overlap > 0 and low_edge is not None:
        weight *= np.clip((centres - (low_edge - overlap)) / (2 * overlap), 0, 1)
    if overlap > 0 and high_edge is not None:
        weight *= np.clip(((high_edge + overlap) - centres) / (2 * overlap), 0, 1)
    return weight


def _like(values: np.ndarray, array: Array) -> Array:
    """``values`` as the array type of ``array`` (a tensor on its device, or numpy as is)."""
    if isinstance(array, np.ndarray):
        return values
    import torch

    return torch.from_numpy(values).to(array.device)


def _zeros(array: Array, shape: tuple[int, ...]) -> Array:
    return np.zeros(shape, array.dtype) if isinstance(array, np.ndarray) else array.new_zeros(shape)


def _copy(array: Array) -> Array:
    return array.copy() if isinstance(array, np.ndarray) else array.clone()


def tiled_forward(
    lr: Array, forward: Forward, *, scale: int, tile: int, pad: int, overlap: int
) -> Iterator[tuple[int, Array]]:
    """Run ``forward`` over ``lr`` (N×C×H×W) tile by tile; yield ``(first_output_row, rows)``
    bands of the N×C'×sH×sW float32 result, top to bottom, each row exactly once.

    ``tile <= 0`` or an image that fits one tile runs whole. ``overlap`` must already be valid
    (see :func:`effective_overlap`). ``forward`` gets CPU or device slices of ``lr`` and returns
    float32 on any device; the bands live where ``forward``'s outputs do (numpy in, numpy out).
    """
    height, width = lr.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        yield 0, forward(lr)
        return
    assert 0 <= overlap <= min(pad, tile // 2), "overlap must come from effective_overlap"
    rows, cols = spans(height, tile), spans(width, tile)
    carry: Array | None = None  # finished-by-nobody rows [y0 - o, y0 + o) of the last band
    for index, (y0, y1) in enumerate(rows):
        keep_y0, keep_y1 = max(y0 - overlap, 0), min(y1 + overlap, height)
        in_y0, in_y1 = max(y0 - pad, 0), min(y1 + pad, height)
        band: Array | None = None
        weight_y: Array | None = None
        for x0, x1 in cols:
            keep_x0, keep_x1 = max(x0 - overlap, 0), min(x1 + overlap, width)
            in_x0, in_x1 = max(x0 - pad, 0), min(x1 + pad, width)
            out = forward(lr[..., in_y0:in_y1, in_x0:in_x1])
            out = out[
                ...,
                (keep_y0 - in_y0) * scale : (keep_y1 - in_y0) * scale,
                (keep_x0 - in_x0) * scale : (keep_x1 - in_x0) * scale,
            ]
            if band is None:
                band = _zeros(out, (*out.shape[:-2], (keep_y1 - keep_y0) * scale, width * scale))
                weight_y = _like(_weights(keep_y0, keep_y1, scale, y0 if y0 > 0 else None,
                                          y1 if y1 < height else None, overlap), out)
            weight_x = _like(_weights(keep_x0, keep_x1, scale, x0 if x0 > 0 else None,
                                      x1 if x1 < width else None, overlap), out)
            band[..., keep_x0 * scale : keep_x1 * scale] += out * (weight_y[:, None] * weight_x[None, :])
            del out
        assert band is not None
        if carry is not None:
            band[..., : carry.shape[-2], :] += carry
        last = index == len(rows) - 1
        finished = (keep_y1 if last else y1 - overlap) - keep_y0
        carry = None if last else _copy(band[..., finished * scale :, :])
        yield keep_y0 * scale, band[..., : finished * scale, :]
