"""PSNR and SSIM the way the SR literature reports them, in numpy (evaluation) and torch (validation).

Convention (BasicSR / the MATLAB scripts behind SRCNN, SRGAN, DPSRGAN's tables):

- **Y channel**: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for RGB in 0–255, i.e.
  MATLAB's ``rgb2ycbcr`` (BT.601, studio range 16–235) — but *not* rounded to integers, as in
  BasicSR. Grayscale (HW) inputs are compared as they are.
- **Border crop**: ``crop_border`` pixels are dropped from every side of both images first; the
  convention is ``crop_border = scale`` (resampling makes the outermost pixels unreliable).
- **Data range** 255 for both Y and RGB; PSNR of RGB uses the MSE over all three channels.
- **SSIM**: Wang et al. 2004 with an 11×11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  averaged over the positions where the window fits inside the (cropped) image ("valid"), and
  over channels for RGB. This equals ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``.
- PSNR of identical images is ``float('inf')``; the ``dpsrgan metrics`` JSON writes it as
  ``null``.

The torch versions (:func:`batch_psnr_y`, :func:`batch_ssim_y`) compute the same numbers for a
float NCHW batch in [0, 1] on whatever device it lives on, so validation during training is
comparable with the final evaluation. torch is imported lazily so the numpy side (data stage,
``dpsrgan metrics``) stays light.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dpsrgan.errors import DpsrganError

if TYPE_CHECKING:
    import pandas as pd
    import torch

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])  # BT.601 luma, scaled to 16–235 over 0–255
_DATA_RANGE = 255.0
_WINDOW = 11
_SIGMA = 1.5
_C1 = (0.01 * _DATA_RANGE) ** 2
_C2 = (0.03 * _DATA_RANGE) ** 2
METRIC_NAMES = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def _gaussian_window() -> np.ndarray:
    """The 1-D 11-tap Gaussian (sigma 1.5), normalised: SSIM's separable window."""
    taps = np.arange(_WINDOW, dtype=np.float64) - _WINDOW // 2
    window = np.exp(-(taps**2) / (2 * _SIGMA**2))
    return window / window.sum()


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HWC RGB (uint8, or float in 0–255) → float64 HW luma Y in 16–235 units (BT.601)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects an HWC RGB image, got shape {image.shape}")
    return 16.0 + image.astype(np.float64) @ _Y_WEIGHTS / 255.0


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, crop borders, convert to float64 (Y when asked and the image is RGB)."""
    if a.shape != b.shape:
        raise DpsrganError(f"images differ in size: {a.shape} vs {b.shape}; compare same-sized images")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise DpsrganError(f"expected HW or HWC (1 or 3 channels) images, got shape {a.shape}")
    height, width = a.shape[:2]
    if crop_border < 0 or 2 * crop_border >= min(height, width):
        raise DpsrganError(f"crop_border {crop_border} leaves nothing of a {height}x{width} image")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and a.ndim == 3 and a.shape[2] == 3:
        return rgb_to_y(a), rgb_to_y(b)
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB of uint8 HWC RGB (or HW gray) images, data range 255; ``inf`` if identical."""
    x, y = _prepare(a, b, crop_border, y_channel)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_DATA_RANGE**2 / mse)


def _valid_filter(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable correlation over axes 0 and 1 keeping only positions where the window fits."""
    n = len(window)
    height, width = image.shape[:2]
    rows = sum(w * image[i : height - n + 1 + i] for i, w in enumerate(window))
    return sum(w * rows[:, i : width - n + 1 + i] for i, w in enumerate(window))


def _ssim_map_mean(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two float64 HW or HWC images (per-channel maps averaged together)."""
    if min(x.shape[:2]) < _WINDOW:
        raise DpsrganError(f"SSIM needs at least {_WINDOW}x{_WINDOW} pixels after cropping, got {x.shape[:2]}")
    window = _gaussian_window()
    mu_x, mu_y = _valid_filter(x, window), _valid_filter(y, window)
    var_x = _valid_filter(x * x, window) - mu_x**2
    var_y = _valid_filter(y * y, window) - mu_y**2
    cov = _valid_filter(x * y, window) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float(np.mean(numerator / denominator))


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM of uint8 HWC RGB (or HW gray) images: Gaussian 11×11, sigma 1.5, data range 255."""
    x, y = _prepare(a, b, crop_border, y_channel)
    return _ssim_map_mean(x, y)


def image_metrics(sr: np.ndarray, hr: np.ndarray, crop_border: int) -> dict[str, float]:
    """All four numbers for one SR/HR pair: ``psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb``."""
    return {
        "psnr_y": psnr(sr, hr, crop_border, y_channel=True),
        "ssim_y": ssim(sr, hr, crop_border, y_channel=True),
        "psnr_rgb": psnr(sr, hr, crop_border, y_channel=False),
        "ssim_rgb": ssim(sr, hr, crop_border, y_channel=False),
    }


# --- what PSNR/SSIM do not show: sharpness and colour ---------------------------------------------


def high_frequency_ratio(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """Energy of the Laplacian of SR's luma relative to HR's (1 = as much fine detail as HR).

    A measure of sharpness beside PSNR: blur (bicubic, an MSE-trained generator) sits below 1,
    invented texture or ringing above it. Y channel, the same border crop as PSNR.
    """
    x, y = _prepare(sr, hr, crop_border, y_channel=True)
    if x.ndim == 3:
        x, y = x.mean(axis=2), y.mean(axis=2)

    def energy(image: np.ndarray) -> float:
        laplacian = (
            image[1:-1, :-2] + image[1:-1, 2:] + image[:-2, 1:-1] + image[2:, 1:-1] - 4 * image[1:-1, 1:-1]
        )
        return float(np.mean(laplacian**2))

    reference = energy(y)
    return math.nan if reference == 0 else energy(x) / reference


def color_shift(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """Largest per-channel difference of mean value, SR − HR, in 0–255 units (a colour cast
    shows here long before it costs PSNR; well-behaved SR stays below 1)."""
    x, y = _prepare(sr, hr, crop_border, y_channel=False)
    if x.ndim == 2:
        return abs(float(x.mean() - y.mean()))
    return float(np.max(np.abs(x.mean(axis=(0, 1)) - y.mean(axis=(0, 1)))))


# --- folders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderMatch:
    """SR/HR files paired by name; ``sr_only``/``hr_only`` are the files left without a partner."""

    pairs: list[tuple[Path, Path]]
    sr_only: list[Path]
    hr_only: list[Path]


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DpsrganError(f"{folder}: not a directory; pass a folder of images")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def match_folders(sr_dir: str | Path, hr_dir: str | Path) -> FolderMatch:
    """Pair images by identical file name first, then the rest by stem (``x.png`` ↔ ``x.jpg``).

    Among the files left after exact matching, a stem shared by two files of one folder is
    ambiguous and raises, naming both.
    """
    sr_files, hr_files = _image_files(Path(sr_dir)), _image_files(Path(hr_dir))
    hr_by_name = {p.name: p for p in hr_files}
    pairs = [(p, hr_by_name[p.name]) for p in sr_files if p.name in hr_by_name]
    paired = {p.name for p, _ in pairs}
    sr_by_stem = _by_stem([p for p in sr_files if p.name not in paired], sr_dir)
    hr_by_stem = _by_stem([p for p in hr_files if p.name not in paired], hr_dir)
    pairs += [(sr_by_stem[stem], hr_by_stem[stem]) for stem in sr_by_stem.keys() & hr_by_stem.keys()]
    return FolderMatch(
        pairs=sorted(pairs),
        sr_only=[p for stem, p in sorted(sr_by_stem.items()) if stem not in hr_by_stem],
        hr_only=[p for stem, p in sorted(hr_by_stem.items()) if stem not in sr_by_stem],
    )


def _by_stem(files: Iterable[Path], folder: str | Path) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise DpsrganError(
                f"{folder}: {by_stem[path.stem].name} and {path.name} share the stem '{path.stem}'; "
                "keep one of them so images pair unambiguously"
            )
        by_stem[path.stem] = path
    return by_stem


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit image file as uint8 HWC RGB (gray and palette expanded, alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr"):
                raise DpsrganError(f"{path}: {image.mode} images are not supported; save it as 8-bit RGB")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise DpsrganError(f"{path}: cannot read image ({error})") from None


def compare_pairs(pairs: Iterable[tuple[Path, Path]], crop_border: int) -> pd.DataFrame:
    """One row per (SR, HR) pair: ``image`` (the SR file name) + the four metrics."""
    import pandas as pd

    rows = []
    for sr_path, hr_path in pairs:
        sr, hr = read_rgb(sr_path), read_rgb(hr_path)
        if sr.shape != hr.shape:
            raise DpsrganError(
                f"{sr_path.name}: SR is {sr.shape[1]}x{sr.shape[0]} but HR {hr_path.name} is "
                f"{hr.shape[1]}x{hr.shape[0]}; crop HR to a multiple of the scale before upscaling"
            )
        rows.append({"image": sr_path.name, **image_metrics(sr, hr, crop_border)})
    return pd.DataFrame(rows, columns=["image", *METRIC_NAMES])


def compare_folders(sr_dir: str | Path, hr_dir: str | Path, crop_border: int = 4) -> pd.DataFrame:
    """Metrics of every same-named SR/HR image pair; any image without a partner is an error.

    Pairing as :func:`match_folders`. Use that plus :func:`compare_pairs` to measure the pairs
    that exist and report the rest yourself (as ``dpsrgan metrics`` does).
    """
    match = match_folders(sr_dir, hr_dir)
    if match.sr_only or match.hr_only:
        unmatched = [str(p) for p in match.sr_only + match.hr_only]
        raise DpsrganError(
            f"{len(unmatched)} image(s) have no same-named partner, e.g. {unmatched[0]}; "
            "give both folders the same file names (or stems)"
        )
    if not match.pairs:
        raise DpsrganError(f"{sr_dir} and {hr_dir}: no images to compare")
    return compare_pairs(match.pairs, crop_border)


# --- torch, for validation during training -------------------------------------------------------


def _batch_y(images: torch.Tensor, crop_border: int) -> torch.Tensor:
    """Float NCHW RGB in [0, 1] → float32 N1HW Y in 16–235 units, clamped and border-cropped."""
    import torch

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected an NCHW RGB batch, got shape {tuple(images.shape)}")
    images = images.detach().float().clamp(0, 1)
    if crop_border:
        images = images[..., crop_border:-crop_border, crop_border:-crop_border]
    weights = torch.tensor(_Y_WEIGHTS.tolist(), dtype=torch.float32, device=images.device)
    return 16.0 + torch.einsum("nchw,c->nhw", images, weights).unsqueeze(1)


def batch_psnr_y(sr: torch.Tensor, hr: torch.Tensor, crop_border: int) -> torch.Tensor:
    """Per-image Y PSNR (dB) of float NCHW batches in [0, 1] → float32 Tensor[N], ``inf`` if equal.

    Values are clamped to [0, 1] (as saving an image would); they are not rounded to 8 bits, so
    a float SR output differs from its saved PNG by quantisation noise (~0.01 dB).
    """
    import torch

    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    mse = (_batch_y(sr, crop_border) - _batch_y(hr, crop_border)).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(_DATA_RANGE**2 / mse)


def batch_ssim_y(sr: torch.Tensor, hr: torch.Tensor, crop_border: int) -> torch.Tensor:
    """Per-image Y SSIM of float NCHW batches in [0, 1] → float32 Tensor[N] (same rules as :func:`ssim`)."""
    import torch
    import torch.nn.functional as F

    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    x, y = _batch_y(sr, crop_border), _batch_y(hr, crop_border)
    if min(x.shape[-2:]) < _WINDOW:
        raise ValueError(f"SSIM needs at least {_WINDOW}x{_WINDOW} pixels after cropping, got {tuple(x.shape[-2:])}")
    g = torch.tensor(_gaussian_window().tolist(), dtype=torch.float32, device=x.device)
    window = torch.outer(g, g)[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)  # "valid": no padding, as the numpy version

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return (numerator / denominator).mean(dim=(1, 2, 3))
