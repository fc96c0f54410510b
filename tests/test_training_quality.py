"""Regression guard for model quality: a short pretraining on real photographs must beat bicubic
on a photograph it never saw. Fixed photos, seed and step count; nothing is timed.

It runs the pipeline's own pieces — :func:`~dpsrgan.training.steps.pretrain_step`, the
augmentation of the training loop, the residual-over-bicubic generator, the MATLAB
degradation and the evaluation's PSNR-Y — so a change that breaks training (a wrong loss, a
broken skip, an initialisation that starts elsewhere than bicubic, misaligned crops) fails
here instead of surfacing as a pipeline whose models lose to bicubic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from dpsrgan.degradation import bicubic_downscale, imresize
from dpsrgan.metrics import psnr
from dpsrgan.models.generator import Generator
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.steps import pretrain_step

SCALE, STEPS, BATCH, PATCH, CROP, WARMUP = 4, 250, 8, 112, 96, 10


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def pretrain(lr_rate: float) -> Generator:
    """A small generator (32 channels, 4 blocks) trained on random 96² crops of 112² patches of
    three photographs, Adam after a short warm-up."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    photos = [data.chelsea(), data.coffee(), data.rocket()]
    generator = Generator(channels=32, num_blocks=4, bicubic_skip=True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr_rate)
    for step in range(STEPS):
        patches = []
        for _ in range(BATCH):
            photo = photos[rng.integers(len(photos))]
            top, left = rng.integers(photo.shape[0] - PATCH), rng.integers(photo.shape[1] - PATCH)
            patches.append(np.ascontiguousarray(photo[top : top + PATCH, left : left + PATCH]))
        lr, hr = random_dihedral(*random_crop(to_tensor([bicubic_downscale(p, SCALE) for p in patches]),
                                              to_tensor(patches), CROP))
        for group in optimizer.param_groups:
            group["lr"] = lr_rate * min(1.0, (step + 1) / WARMUP)
        pretrain_step(generator, optimizer, lr, hr, loss="l1")
    return generator.eval()


def gain_over_bicubic(generator: Generator) -> float:
    """PSNR-Y(G) − PSNR-Y(bicubic) on a held-out photograph (the astronaut; not trained on)."""
    hr = np.ascontiguousarray(data.astronaut()[:256, 128:384])
    lr = bicubic_downscale(hr, SCALE)
    with torch.no_grad():
        sr = generator(to_tensor([lr])).clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy()
    bicubic = np.clip(np.rint(imresize(lr, scale=SCALE)), 0, 255).astype(np.uint8)
    return psnr(sr, hr, crop_border=SCALE) - psnr(bicubic, hr, crop_border=SCALE)


@pytest.mark.slow
def test_short_pretraining_beats_bicubic_on_a_held_out_photo():
    assert gain_over_bicubic(pretrain(lr_rate=3e-4)) > 0.15


def test_an_untrained_generator_is_bicubic_so_the_quality_test_can_fail():
    generator = Generator(channels=32, num_blocks=4, bicubic_skip=True).eval()
    assert abs(gain_over_bicubic(generator)) < 0.01
