"""HR → LR degradation: MATLAB-compatible bicubic (golden numbers) and the real-world branch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from dpsrgan.config import DegradeParams
from dpsrgan.degradation import bicubic_downscale, degrade, imresize, imresize_uint8
from dpsrgan.errors import DpsrganError

# MATLAB reference results quoted in the GNU Octave image package's imresize.m (the 2022 rewrite
# by Christof Kaufmann), test block "Test bicubic interpolations against some reference results
# from matlab": imresize(uint8(IN), factor, "bicubic") with MATLAB's default antialiasing.
IN = np.array(
    [
        [116, 227, 153, 69, 146, 194, 59, 130, 139, 106],
        [2, 47, 137, 249, 90, 75, 16, 24, 158, 44],
        [155, 68, 46, 84, 166, 156, 69, 204, 32, 152],
        [71, 221, 137, 230, 210, 153, 192, 115, 30, 118],
        [107, 143, 108, 52, 51, 73, 101, 21, 175, 90],
        [54, 158, 143, 77, 26, 168, 113, 229, 165, 225],
        [9, 47, 133, 135, 130, 207, 236, 43, 19, 73],
        [129, 60, 59, 243, 64, 181, 249, 56, 32, 86],
    ],
    dtype=np.uint8,
)
MATLAB_HALF = [[105, 140, 126, 81, 109], [110, 134, 153, 114, 93], [108, 108, 94, 127, 146], [67, 126, 162, 149, 62]]
MATLAB_THIRD = [[115, 135, 97, 101], [113, 119, 124, 125], [81, 157, 118, 64]]
MATLAB_UP_1_5 = [
    [116, 187, 237, 171, 94, 61, 135, 191, 187, 75, 91, 142, 140, 124, 108],
    [43, 92, 143, 149, 164, 163, 119, 123, 118, 44, 38, 80, 151, 118, 62],
    [13, 21, 47, 107, 195, 228, 115, 81, 70, 24, 19, 56, 137, 105, 48],
    [146, 98, 49, 49, 71, 107, 148, 159, 132, 58, 124, 176, 61, 85, 146],
    [118, 139, 144, 92, 116, 168, 201, 188, 159, 140, 167, 158, 27, 69, 153],
    [61, 151, 218, 145, 174, 219, 201, 164, 146, 187, 148, 84, 48, 76, 115],
    [102, 132, 151, 119, 90, 72, 72, 72, 83, 114, 60, 31, 144, 130, 80],
    [81, 121, 154, 133, 87, 41, 19, 67, 116, 95, 108, 140, 183, 180, 163],
    [37, 95, 152, 150, 117, 73, 35, 108, 179, 130, 174, 214, 153, 176, 219],
    [3, 29, 73, 131, 136, 120, 116, 162, 214, 229, 147, 54, 35, 62, 96],
    [67, 54, 51, 83, 153, 187, 111, 141, 210, 255, 149, 22, 13, 42, 74],
    [142, 99, 53, 43, 164, 237, 77, 103, 197, 254, 159, 42, 31, 59, 91],
]


def _round(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0, 255) + 0.5).astype(int)


# --- golden values ------------------------------------------------------------------------------


def test_bicubic_downscale_reproduces_matlab_uint8_output_exactly():
    np.testing.assert_array_equal(bicubic_downscale(IN, 2), MATLAB_HALF)


@pytest.mark.parametrize(
    ("scale", "expected"), [(0.5, MATLAB_HALF), (1 / 3, MATLAB_THIRD), (1.5, MATLAB_UP_1_5)]
)
def test_imresize_uint8_reproduces_matlab_exactly(scale, expected):
    out = imresize_uint8(IN, scale)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("scale", "expected"), [(0.5, MATLAB_HALF), (1 / 3, MATLAB_THIRD), (1.5, MATLAB_UP_1_5)]
)
def test_float_imresize_is_within_one_level_of_matlab(scale, expected):
    # MATLAB rounds uint8 images after each axis, so the float path may differ by 1 (Octave's
    # own tolerance for these numbers); sizes follow MATLAB's ceil(scale * size).
    out = imresize(IN, scale)
    assert out.shape == np.shape(expected)
    assert np.abs(_round(out) - np.asarray(expected)).max() <= 1


def test_downscaling_a_linear_ramp_gives_pixel_centre_averages_in_the_interior():
    # The antialiased cubic reproduces linear functions exactly (its weights are symmetric and
    # sum to one), so away from the mirrored borders each output pixel is the mean of the
    # input pixels it covers: 2i + 0.5 for a 1/2 downscale of 0, 1, 2, ...
    ramp = np.tile(np.arange(32, dtype=np.float64), (32, 1))
    half = imresize(ramp, 0.5)
    np.testing.assert_allclose(half[:, 2:-2], np.tile(2 * np.arange(2, 14) + 0.5, (16, 1)), atol=1e-12)
    quarter = imresize(ramp, 0.25)
    np.testing.assert_allclose(quarter[:, 2:-2], np.tile(4 * np.arange(2, 6) + 1.5, (8, 1)), atol=1e-12)
    plane = 3.0 * np.arange(24)[:, None] - 2.0 * np.arange(36)[None, :] + 7.0
    out = imresize(plane, 0.25)
    i, j = np.meshgrid(np.arange(6), np.arange(9), indexing="ij")
    expected = 3.0 * (4 * i + 1.5) - 2.0 * (4 * j + 1.5) + 7.0
    np.testing.assert_allclose(out[2:-2, 2:-2], expected[2:-2, 2:-2], atol=1e-10)


def _matlab_loop_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """MATLAB imresize written pixel by pixel from its documented definition: no matrices."""

    def cubic(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    def mirror(index: int, n: int) -> int:  # 0-based symmetric padding, repeated as needed
        period = index % (2 * n)
        return period if period < n else 2 * n - 1 - period

    def resize_1d(values: list[float], out_n: int) -> list[float]:
        n = len(values)
        scale = out_n / n
        stretch = min(scale, 1.0)  # antialiasing widens the kernel when shrinking
        result = []
        for i in range(out_n):
            centre = (i + 0.5) / scale - 0.5  # 0-based input coordinate of output pixel i
            reach = 2 / stretch
            taps = range(math.floor(centre - reach) - 1, math.ceil(centre + reach) + 2)
            weights = [stretch * cubic(stretch * (centre - t)) for t in taps]
            total = sum(weights)
            result.append(sum(w * values[mirror(t, n)] for w, t in zip(weights, taps)) / total)
        return result

    rows = [resize_1d(list(column), out_h) for column in image.T]  # resize each column
    tall = np.array(rows).T  # (out_h, W)
    return np.array([resize_1d(list(row), out_w) for row in tall])


@pytest.mark.parametrize("out_shape", [(4, 5), (3, 3), (1, 2), (17, 23), (8, 10), (5, 30)])
def test_matches_a_direct_per_pixel_implementation(out_shape):
    image = np.random.default_rng(7).uniform(0, 255, size=(8, 10))
    np.testing.assert_allclose(
        imresize(image, output_shape=out_shape), _matlab_loop_reference(image, *out_shape), atol=1e-9
    )


@pytest.mark.parametrize("out_shape", [(16, 12), (32, 24), (21, 17), (128, 96)])
def test_interior_matches_pillows_independent_resampler(out_shape):
    # Pillow's BICUBIC is the same antialiased a = -0.5 kernel with another border rule (it
    # renormalises instead of mirroring), so away from the borders the two must agree.
    image = np.random.default_rng(3).uniform(0, 255, size=(64, 48)).astype(np.float32)
    pillow = np.asarray(Image.fromarray(image, mode="F").resize(out_shape[::-1], Image.Resampling.BICUBIC))
    ours = imresize(image, output_shape=out_shape)
    np.testing.assert_allclose(ours[3:-3, 3:-3], pillow[3:-3, 3:-3], atol=1e-3)


# --- sanity --------------------------------------------------------------------------------------


def test_upscaling_then_downscaling_returns_a_smooth_image():
    y, x = np.mgrid[0:32, 0:32] / 32.0
    smooth = 128 + 60 * np.cos(2 * np.pi * x) * np.sin(2 * np.pi * y)
    round_trip = imresize(imresize(smooth, 4), 0.25)
    assert round_trip.shape == smooth.shape
    assert np.abs(round_trip - smooth)[2:-2, 2:-2].max() < 0.5


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 1.0, 2.0, 4.0])
def test_constant_images_stay_constant(scale):
    np.testing.assert_allclose(imresize(np.full((12, 20), 77.0), scale), 77.0, atol=1e-12)


def test_channels_are_resized_independently_and_dtype_does_not_matter():
    rgb = np.random.default_rng(0).integers(0, 256, size=(24, 16, 3), dtype=np.uint8)
    out = imresize(rgb, 0.5)
    assert out.dtype == np.float64 and out.shape == (12, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], imresize(rgb[..., c].astype(np.float32), 0.5), atol=1e-9)


def test_output_size_rules_follow_matlab():
    image = np.zeros((218, 178))
    assert imresize(image, 0.25).shape == (55, 45)  # ceil(54.5), ceil(44.5)
    assert imresize(image, output_shape=(128, 100)).shape == (128, 100)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(image)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(image, 0.5, output_shape=(10, 10))


def test_bicubic_downscale_shapes_and_errors():
    hr = np.random.default_rng(0).integers(0, 256, size=(128, 96, 3), dtype=np.uint8)
    lr = bicubic_downscale(hr, 4)
    assert lr.dtype == np.uint8 and lr.shape == (32, 24, 3)
    assert np.abs(lr.astype(int) - _round(imresize(hr, 0.25))).max() <= 1
    with pytest.raises(DpsrganError, match=r"130x96 is not divisible by scale 4; crop it to 128x96"):
        bicubic_downscale(np.zeros((130, 96, 3), np.uint8), 4)
    with pytest.raises(DpsrganError, match="uint8"):
        bicubic_downscale(hr.astype(np.float32), 4)


# --- degrade() -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    from skimage import data

    return data.astronaut()[100:228, 180:308].copy()  # 128 x 128 RGB, a face


def test_plain_degradation_is_the_default_and_ignores_the_seed(face):
    config = DegradeParams()
    assert not config.real_world and config.scale == 4
    lr = degrade(face, config, seed=1)
    np.testing.assert_array_equal(lr, bicubic_downscale(face, 4))
    np.testing.assert_array_equal(lr, degrade(face, config, seed=2))


def test_real_world_degradation_is_deterministic_per_seed_and_differs_from_bicubic(face):
    config = DegradeParams(real_world=True)
    first = degrade(face, config, seed=123)
    assert first.dtype == np.uint8 and first.shape == (32, 32, 3)
    assert first.tobytes() == degrade(face, config, seed=123).tobytes()
    assert first.tobytes() != degrade(face, config, seed=124).tobytes()
    bicubic = bicubic_downscale(face, 4).astype(float)
    assert np.abs(first - bicubic).mean() > 1.0


def test_real_world_with_null_strengths_is_bicubic_up_to_jpeg(face):
    gray = np.asarray(Image.fromarray(face).convert("L"))
    config = DegradeParams(real_world=True, blur_sigma=(0, 0), noise_sigma=(0, 0), jpeg_quality=(100, 100))
    lr = degrade(gray, config, seed=5)
    assert lr.shape == (32, 32)
    assert np.abs(lr.astype(int) - bicubic_downscale(gray, 4)).max() <= 2


def test_real_world_blur_is_a_gaussian_applied_before_downscaling(face):
    from scipy.ndimage import gaussian_filter

    gray = np.asarray(Image.fromarray(face).convert("L"))
    config = DegradeParams(real_world=True, blur_sigma=(1.2, 1.2), noise_sigma=(0, 0), jpeg_quality=(100, 100))
    # scipy's "reflect" is the same half-sample symmetric border; truncate at radius ceil(3 sigma) = 4.
    blurred = gaussian_filter(gray.astype(np.float64), 1.2, mode="reflect", truncate=4 / 1.2)
    expected = np.floor(np.clip(imresize(blurred, 0.25), 0, 255) + 0.5)
    lr = degrade(gray, config, seed=0)
    assert np.abs(lr - expected).max() <= 2  # JPEG at quality 100
    assert np.abs(lr.astype(int) - bicubic_downscale(gray, 4)).max() > 5  # the blur did something


def test_degradation_reads_the_params_section_and_its_checks_are_the_params_checks(face):
    params = DegradeParams(scale=2, real_world=True, blur_sigma=(0.5, 1.0), noise_sigma=(1, 2), jpeg_quality=(70, 80))
    assert degrade(face, params, seed=3).shape == (64, 64, 3)
    with pytest.raises(ValidationError, match="noise_sigma"):
        DegradeParams(noise_sigma=(5.0, 1.0))
    with pytest.raises(ValidationError, match="jpeg_quality"):
        DegradeParams(jpeg_quality=(60, 101))
