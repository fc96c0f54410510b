"""Training-time augmentation keeps LR/HR pairs aligned; the learning-rate schedule warms up and
decays as documented; the sharpness and colour measures of the evaluation behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from dpsrgan.degradation import bicubic_downscale, imresize
from dpsrgan.metrics import color_shift, high_frequency_ratio
from dpsrgan.models.bicubic import BicubicUpsample
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.schedule import MIN_FACTOR, warmup_cosine


def aligned_pair(n: int = 6, size: int = 32, scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """HR = exact ×scale bicubic of LR, so any misalignment of a crop or turn shows."""
    lr = torch.rand(n, 3, size // scale, size // scale)
    return lr, BicubicUpsample(scale)(lr)


def test_random_crop_keeps_pairs_aligned():
    lr, hr = aligned_pair(size=64)
    generator = torch.Generator().manual_seed(0)
    lr_crop, hr_crop = random_crop(lr, hr, 24, generator)
    assert lr_crop.shape == (6, 3, 6, 6) and hr_crop.shape == (6, 3, 24, 24)
    offsets = set()
    for i in range(6):  # locate each LR crop in its source; the HR crop must be the same window ×4
        found = [(t, l) for t in range(11) for l in range(11) if torch.equal(lr[i, :, t : t + 6, l : l + 6], lr_crop[i])]
        assert len(found) == 1
        t, l = found[0]
        offsets.add((t, l))
        assert torch.equal(hr[i, :, 4 * t : 4 * t + 24, 4 * l : 4 * l + 24], hr_crop[i])
    assert len(offsets) > 1  # per-sample offsets


def test_crop_of_the_whole_patch_is_the_patch_and_misaligned_crops_are_refused():
    lr, hr = aligned_pair()
    assert random_crop(lr, hr, 32)[1] is hr
    with pytest.raises(ValueError, match="multiple of 4"):
        random_crop(lr, hr, 30)


def test_dihedral_turns_lr_and_hr_alike_and_covers_the_group():
    lr, hr = aligned_pair(n=64)
    lr_t, hr_t = random_dihedral(lr, hr, torch.Generator().manual_seed(1))
    # the pair is still LR → its bicubic ×4 (bicubic commutes with flips and transposes)
    torch.testing.assert_close(BicubicUpsample(4)(lr_t), hr_t, atol=1e-5, rtol=0)
    unchanged = sum(torch.equal(a, b) for a, b in zip(lr_t, lr, strict=True))
    assert 0 < unchanged < 64


def test_warmup_then_cosine_to_the_floor():
    factors = [warmup_cosine(step, 100, 10) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(MIN_FACTOR, abs=1e-3)
    assert warmup_cosine(500, 100, 10) == pytest.approx(MIN_FACTOR)


def test_sharpness_ratio_orders_blur_below_hr_and_colour_shift_sees_a_cast():
    hr = np.ascontiguousarray(data.astronaut()[:256, :256])
    bicubic = np.clip(np.rint(imresize(bicubic_downscale(hr, 4), scale=4)), 0, 255).astype(np.uint8)
    assert high_frequency_ratio(hr, hr) == pytest.approx(1.0)
    assert high_frequency_ratio(bicubic, hr, 4) < 0.5
    assert color_shift(hr, hr) == 0.0
    cast = hr.copy()
    cast[..., 2] = np.clip(cast[..., 2].astype(int) + 3, 0, 255)
    assert 2.5 < color_shift(cast, hr, 4) <= 3.0
