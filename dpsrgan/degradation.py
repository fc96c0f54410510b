"""HR → LR degradation: MATLAB-compatible bicubic downscaling, optionally with real-world noise.

The SR literature (SRCNN onwards, SRGAN, DPSRGAN) makes its LR images with MATLAB's
``imresize(hr, 1/scale, 'bicubic')``: a Keys cubic kernel (a = -0.5) that is *stretched* by the
scale factor when downscaling (antialiasing), with symmetric padding at the borders. OpenCV has
no antialiasing and a = -0.75; Pillow uses MATLAB's kernel but renormalises it at the borders
instead of mirroring and computes in 8-bit fixed point. A model trained on one kernel loses dB
when tested on another, so we re-implement MATLAB's ``imresize`` (after its ``contributions``
function) as one dense weight matrix per axis, ``out = W_h @ image @ W_w.T``, cached per
(length, size): CelebA-scale degradation is two small matrix products per image. For uint8
images MATLAB rounds to uint8 after each axis; :func:`imresize_uint8` (and so
:func:`bicubic_downscale`) does the same and reproduces MATLAB's uint8 output bit for bit (tests/test_degradation.py checks MATLAB's
published numbers).

The optional real-world branch (``degrade.real_world`` in params.yaml; the paper's named future work)
blurs HR with a random Gaussian, downscales, adds Gaussian noise and JPEG-compresses, each
strength drawn from a range with a per-image seed so a dataset rebuild is byte-identical.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from dpsrgan.errors import DpsrganError

if TYPE_CHECKING:
    from dpsrgan.config import DegradeParams

_KERNEL_WIDTH = 4.0  # support of the bicubic kernel, in input pixels, before antialias stretch


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _weight_matrix(in_length: int, out_length: int, scale: float) -> np.ndarray:
    """Dense ``(out_length, in_length)`` resampling matrix equal to MATLAB's ``contributions``.

    Output pixel ``i`` (1-based) sits at input coordinate ``u = i/scale + 0.5(1 - 1/scale)``
    (pixel centres aligned). Taps that fall outside the image are folded back with MATLAB's
    symmetric padding (``aux = [1:n, n:-1:1]``, periodic), so their weights add onto edge pixels.
    The result is read-only because it is shared through the cache.
    """
    antialias = scale < 1
    width = _KERNEL_WIDTH / scale if antialias else _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based input positions
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    folded = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], folded.shape)
    np.add.at(matrix, (rows, folded), weights)
    matrix.setflags(write=False)
    return matrix


def _output_plan(
    shape: tuple[int, ...], scale: float | None, output_shape: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """MATLAB's size rules: ``ceil(scale * size)`` from a scale, ``output / input`` from a size."""
    height, width = shape[:2]
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of scale or output_shape")
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"imresize scale must be > 0, got {scale}")
        return (math.ceil(scale * height), math.ceil(scale * width)), (float(scale), float(scale))
    out_h, out_w = (int(n) for n in output_shape)  # type: ignore[union-attr]
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"imresize output_shape must be positive, got {output_shape}")
    return (out_h, out_w), (out_h / height, out_w / width)


def _round_clip(data: np.ndarray) -> np.ndarray:
    """Clip to 0–255 and round half up (MATLAB rounds half away from zero; all values are >= 0)."""
    return np.floor(np.clip(data, 0, 255) + 0.5)


def _resize(
    image: np.ndarray, size: tuple[int, int], scales: tuple[float, float], quantise: bool
) -> np.ndarray:
    """Resize an HW/HWC array one axis at a time, in MATLAB's order (smaller scale first).

    Each pass is a single GEMM over the leading axis (the column pass swaps axes around it),
    about 2.5x faster than a batched matmul over rows. With ``quantise`` every pass
    ends in round-and-clip to uint8 values, as MATLAB does for uint8 input; that intermediate
    rounding is what makes our uint8 output bit-identical to MATLAB's.
    """
    rows = _weight_matrix(image.shape[0], size[0], scales[0])
    cols = _weight_matrix(image.shape[1], size[1], scales[1])

    def leading(data: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        out = (matrix @ data.reshape(data.shape[0], -1)).reshape(matrix.shape[0], *data.shape[1:])
        return _round_clip(out) if quantise else out

    def along_rows(data: np.ndarray) -> np.ndarray:
        return leading(data, rows)

    def along_cols(data: np.ndarray) -> np.ndarray:
        return leading(data.swapaxes(0, 1), cols).swapaxes(0, 1)

    data = image.astype(np.float64)
    first, second = (along_rows, along_cols) if scales[0] <= scales[1] else (along_cols, along_rows)
    return np.ascontiguousarray(second(first(data)))


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(double(image), scale, 'bicubic')`` (antialiased when shrinking).

    ``image`` is HW or HWC, uint8 or float, in whatever value range (the operation is linear).
    Give ``scale`` (output size = ``ceil(scale * size)``, as MATLAB) or ``output_shape``
    ``(height, width)`` (per-axis scales = output / input, as MATLAB). Returns float64, neither
    rounded nor clipped: bicubic overshoots near edges and callers decide. For uint8 → uint8
    exactly as MATLAB does it on uint8 images, use :func:`imresize_uint8`.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects an HW or HWC array, got shape {image.shape}")
    size, scales = _output_plan(image.shape, scale, output_shape)
    return _resize(image, size, scales, quantise=False)


def imresize_uint8(
    image: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB ``imresize(image, ...)`` on a uint8 image, bit for bit: uint8 in, uint8 out.

    MATLAB rounds (half away from zero) and clips to uint8 after *each* axis; rounding
    :func:`imresize`'s float result once instead differs by 1 on a few pixels. Size rules as
    :func:`imresize`.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"imresize_uint8 expects a uint8 HW or HWC array, got {image.dtype} {image.shape}")
    size, scales = _output_plan(image.shape, scale, output_shape)
    return _resize(image, size, scales, quantise=True).astype(np.uint8)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The SR baseline every table compares against: uint8 LR → uint8 ×``scale`` by MATLAB-style
    bicubic (:func:`imresize` in float, rounded and clipped once, like a saved image)."""
    return np.clip(np.rint(imresize(lr, scale=scale)), 0, 255).astype(np.uint8)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """uint8 HR (HWC or HW) → uint8 LR of exactly ``size / scale``: MATLAB's uint8 ``imresize``.

    Bit-identical to MATLAB ``imresize(hr, 1/scale, 'bicubic')`` on a uint8 image (see
    :func:`imresize_uint8`). H and W must be divisible by ``scale`` so that SR output and HR
    line up pixel for pixel.
    """
    _check_hr(hr, scale)
    return imresize_uint8(hr, output_shape=(hr.shape[0] // scale, hr.shape[1] // scale))


def _check_hr(hr: np.ndarray, scale: int) -> None:
    """uint8, HW or HWC, sides divisible by ``scale``: else one line that says how to fix it."""
    if hr.dtype != np.uint8 or hr.ndim not in (2, 3):
        raise DpsrganError(f"expected a uint8 HW or HWC image, got {hr.dtype} {hr.shape}; convert first")
    height, width = hr.shape[:2]
    if scale < 1 or height % scale or width % scale:
        raise DpsrganError(
            f"HR size {height}x{width} is not divisible by scale {scale}; "
            f"crop it to {height - height % scale}x{width - width % scale} first"
        )


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an HW/HWC float image, radius ceil(3 sigma).

    Symmetric (half-sample) padding, the same border rule as imresize.
    """
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    pad = ((radius, radius), (radius, radius)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="symmetric")
    height, width = image.shape[:2]
    rows = sum(weight * padded[i : i + height] for i, weight in enumerate(kernel))
    return sum(weight * rows[:, i : i + width] for i, weight in enumerate(kernel))


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip a uint8 image through an in-memory JPEG at ``quality`` (Pillow, 4:2:0)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded)


def degrade(hr: np.ndarray, config: DegradeParams, seed: int) -> np.ndarray:
    """uint8 HR (HWC or HW, sides divisible by ``config.scale``) → uint8 LR.

    Plain mode is :func:`bicubic_downscale` and ignores ``seed``. Real-world mode draws blur,
    noise and JPEG quality from ``np.random.default_rng(seed)``, so the same (image, seed) gives
    the same bytes on every run and machine with the same libjpeg; pass a per-image seed (e.g.
    derived from the image id) so images differ but rebuilds do not. ``seed`` must be >= 0.
    """
    if not config.real_world:
        return bicubic_downscale(hr, config.scale)
    _check_hr(hr, config.scale)
    rng = np.random.default_rng(seed)
    blur = rng.uniform(*config.blur_sigma)
    noise = rng.uniform(*config.noise_sigma)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    height, width = hr.shape[:2]
    blurred = _gaussian_blur(hr.astype(np.float64), blur)
    lr = imresize(blurred, output_shape=(height // config.scale, width // config.scale))
    lr = lr + rng.normal(0.0, noise, size=lr.shape) if noise > 0 else lr
    return _jpeg(_round_clip(lr).astype(np.uint8), quality)
