"""PSNR/SSIM: the SR convention, checked against scikit-image on real photographs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dpsrgan.degradation import bicubic_downscale, imresize
from dpsrgan.errors import DpsrganError
from dpsrgan.metrics import (
    batch_psnr_y,
    batch_ssim_y,
    compare_folders,
    image_metrics,
    match_folders,
    psnr,
    rgb_to_y,
    ssim,
)

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


def _hr(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return image[: image.shape[0] // 4 * 4, : image.shape[1] // 4 * 4]


def _bicubic_sr(hr: np.ndarray) -> np.ndarray:
    """The SR baseline: MATLAB bicubic down ×4 then up ×4, as uint8."""
    up = imresize(bicubic_downscale(hr, 4), 4)
    return np.floor(np.clip(up, 0, 255) + 0.5).astype(np.uint8)


def _skimage_reference(sr: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    sr, hr = sr[border:-border, border:-border], hr[border:-border, border:-border]
    # skimage's rgb2ycbcr: the same BT.601 studio-range luma, from an independent code base.
    sr_y, hr_y = color.rgb2ycbcr(sr)[..., 0], color.rgb2ycbcr(hr)[..., 0]
    options = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    return {
        "psnr_y": peak_signal_noise_ratio(hr_y, sr_y, data_range=255),
        "ssim_y": structural_similarity(hr_y, sr_y, **options),
        "psnr_rgb": peak_signal_noise_ratio(hr, sr, data_range=255),
        "ssim_rgb": structural_similarity(hr.astype(float), sr.astype(float), channel_axis=-1, **options),
    }


@pytest.mark.parametrize("name", PHOTOS)
def test_metrics_agree_with_skimage_on_photographs(name):
    hr = _hr(name)
    sr = _bicubic_sr(hr)
    ours = image_metrics(sr, hr, crop_border=4)
    reference = _skimage_reference(sr, hr, border=4)
    assert set(ours) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    for key in ("psnr_y", "psnr_rgb"):
        assert ours[key] == pytest.approx(reference[key], abs=0.01), key
    for key in ("ssim_y", "ssim_rgb"):
        assert ours[key] == pytest.approx(reference[key], abs=0.001), key
    # Bicubic ×4 on photographs: plausible numbers, and Y beats RGB as usual.
    assert 20 < ours["psnr_y"] < 40 and 0.5 < ours["ssim_y"] < 1
    assert ours["psnr_y"] > ours["psnr_rgb"]


def test_rgb_to_y_is_bt601_studio_range():
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(pixels)[0], [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966])
    photo = data.coffee()
    np.testing.assert_allclose(rgb_to_y(photo), color.rgb2ycbcr(photo)[..., 0], atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(photo.astype(np.float32)), rgb_to_y(photo), atol=1e-4)


def test_psnr_known_values_and_identical_images():
    a = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(a, a) == math.inf
    b = a + 1  # every channel off by one: MSE 1 in RGB, (219/255)^2 in Y
    assert psnr(a, b, y_channel=False) == pytest.approx(20 * math.log10(255))
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / (219 / 255)))
    assert ssim(a, a) == pytest.approx(1.0)


def test_crop_border_ignores_only_the_border():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:4] = 0
    sr[:, -4:] = 255
    assert psnr(sr, hr, crop_border=4) == math.inf
    assert ssim(sr, hr, crop_border=4) == pytest.approx(1.0)
    assert psnr(sr, hr, crop_border=3) < 30


def test_grayscale_images_are_compared_as_they_are():
    hr = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    sr = _bicubic_sr(hr)
    assert psnr(sr, hr, 4) == pytest.approx(peak_signal_noise_ratio(hr[4:-4, 4:-4], sr[4:-4, 4:-4]), abs=1e-9)
    reference = structural_similarity(
        hr[4:-4, 4:-4].astype(float), sr[4:-4, 4:-4].astype(float),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
    )  # fmt: skip
    assert ssim(sr, hr, 4) == pytest.approx(reference, abs=1e-9)


def test_bad_inputs_raise_one_line_errors():
    a = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(DpsrganError, match="differ in size"):
        psnr(a, np.zeros((32, 28, 3), np.uint8))
    with pytest.raises(DpsrganError, match="crop_border 16 leaves nothing"):
        psnr(a, a, crop_border=16)
    with pytest.raises(DpsrganError, match="at least 11x11"):
        ssim(a, a, crop_border=11)


# --- torch batch versions ------------------------------------------------------------------------


def test_torch_batch_metrics_match_numpy_on_quantised_images():
    hr_photo = _hr("astronaut")
    sr_photo = _bicubic_sr(hr_photo)
    corners = [(0, 0), (100, 180), (300, 60)]
    hr = np.stack([hr_photo[r : r + 48, c : c + 40] for r, c in corners])
    sr = np.stack([sr_photo[r : r + 48, c : c + 40] for r, c in corners])
    sr[2] = hr[2]  # one identical pair: PSNR inf, SSIM 1

    def to_tensor(batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255

    psnr_t = batch_psnr_y(to_tensor(sr), to_tensor(hr), crop_border=4)
    ssim_t = batch_ssim_y(to_tensor(sr), to_tensor(hr), crop_border=4)
    assert psnr_t.shape == (3,) and ssim_t.shape == (3,) and psnr_t.dtype == torch.float32
    for i in range(2):
        assert psnr_t[i].item() == pytest.approx(psnr(sr[i], hr[i], 4), abs=1e-3)
        assert ssim_t[i].item() == pytest.approx(ssim(sr[i], hr[i], 4), abs=1e-3)
    assert math.isinf(psnr_t[2].item()) and ssim_t[2].item() == pytest.approx(1.0, abs=1e-6)


def test_torch_batch_metrics_clamp_to_the_valid_range():
    hr = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    overshoot = hr.clone()
    overshoot[hr > 0.9] += 0.2  # values above 1 are saved as 1
    np.testing.assert_allclose(
        batch_psnr_y(overshoot, hr, 0).numpy(), batch_psnr_y(overshoot.clamp(0, 1), hr, 0).numpy()
    )


# --- folders -------------------------------------------------------------------------------------


def _save(folder: Path, name: str, image: np.ndarray, **options: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name, **options)


def test_compare_folders_pairs_by_name_then_stem(tmp_path):
    hr_a, hr_b = _hr("chelsea")[:96, :96], _hr("coffee")[:64, :80]
    _save(tmp_path / "hr", "a.png", hr_a)
    _save(tmp_path / "hr", "b.jpg", hr_b, quality=95)  # HR as JPEG, SR as PNG: pairs by stem
    hr_b_decoded = np.asarray(Image.open(tmp_path / "hr" / "b.jpg").convert("RGB"))
    _save(tmp_path / "sr", "a.png", _bicubic_sr(hr_a))
    _save(tmp_path / "sr", "b.png", _bicubic_sr(hr_b_decoded))
    (tmp_path / "sr" / "notes.txt").write_text("not an image")
    frame = compare_folders(tmp_path / "sr", tmp_path / "hr", crop_border=4)
    assert list(frame.columns) == ["image", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"]
    assert list(frame["image"]) == ["a.png", "b.png"]
    expected = image_metrics(_bicubic_sr(hr_b_decoded), hr_b_decoded, 4)
    assert frame.iloc[1]["psnr_y"] == pytest.approx(expected["psnr_y"])


def test_compare_folders_errors_name_the_file(tmp_path):
    image = _hr("rocket")[:64, :64]
    _save(tmp_path / "hr", "x.png", image)
    _save(tmp_path / "sr", "x.png", image[:60])
    with pytest.raises(DpsrganError, match=r"x\.png: SR is 64x60 but HR x\.png is 64x64"):
        compare_folders(tmp_path / "sr", tmp_path / "hr")
    _save(tmp_path / "sr", "x.png", image)
    _save(tmp_path / "hr", "lonely.png", image)
    with pytest.raises(DpsrganError, match="lonely.png"):
        compare_folders(tmp_path / "sr", tmp_path / "hr")
    _save(tmp_path / "hr", "y.bmp", image)
    _save(tmp_path / "hr", "y.tif", image)
    _save(tmp_path / "sr", "y.jpg", image)
    with pytest.raises(DpsrganError, match="y.bmp and y.tif share the stem 'y'"):
        match_folders(tmp_path / "sr", tmp_path / "hr")
    with pytest.raises(DpsrganError, match="not a directory"):
        compare_folders(tmp_path / "missing", tmp_path / "hr")
