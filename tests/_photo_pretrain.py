"""A small generator MSE-pretrained on real photographs (the pipeline's own step, crops and
degradation), shared by the quality regression test and the GAN-stage tests that need a
pretrained start: built once per test session (about half a minute on 2 cores)."""

from __future__ import annotations

import functools

import numpy as np
import torch
from skimage import data

from dpsrgan.degradation import bicubic_downscale, bicubic_upscale
from dpsrgan.metrics import color_shift, psnr
from dpsrgan.models.generator import Generator
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.steps import pretrain_step

SCALE, STEPS, BATCH, PATCH, CROP, WARMUP, LR = 4, 250, 8, 112, 96, 10, 3e-4


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def train_photos() -> list[np.ndarray]:
    return [data.chelsea(), data.coffee(), data.rocket()]


def photo_batch(rng: np.random.Generator, size: int = PATCH, batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (LR, HR) patches of the training photographs, LR by MATLAB bicubic."""
    photos, patches = train_photos(), []
    for _ in range(batch):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(photo.shape[0] - size), rng.integers(photo.shape[1] - size)
        patches.append(np.ascontiguousarray(photo[top : top + size, left : left + size]))
    return to_tensor([bicubic_downscale(p, SCALE) for p in patches]), to_tensor(patches)


@functools.cache
def _pretrained_state() -> tuple[dict, dict]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    generator = Generator(channels=32, num_blocks=4, bicubic_skip=True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=LR)
    for step in range(STEPS):
        lr, hr = random_dihedral(*random_crop(*photo_batch(rng), CROP))
        for group in optimizer.param_groups:
            group["lr"] = LR * min(1.0, (step + 1) / WARMUP)
        pretrain_step(generator, optimizer, lr, hr, loss="l1")
    return generator.config, {key: value.clone() for key, value in generator.state_dict().items()}


def pretrained_generator() -> Generator:
    """A fresh copy (eval mode) of the session's photo-pretrained generator."""
    config, state = _pretrained_state()
    generator = Generator.from_config(config)
    generator.load_state_dict(state)
    return generator.eval()


def held_out_photo() -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) of a photograph no step trains on (the astronaut, 256² window)."""
    hr = np.ascontiguousarray(data.astronaut()[:256, 128:384])
    return bicubic_downscale(hr, SCALE), hr


@torch.no_grad()
def super_resolve(generator: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    was_training = generator.training
    generator.eval()
    sr = generator(to_tensor([lr])).clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy()
    generator.train(was_training)
    return sr


def gain_over_bicubic(generator: torch.nn.Module) -> float:
    """PSNR-Y(G) − PSNR-Y(bicubic) on the held-out photograph."""
    lr, hr = held_out_photo()
    bicubic = bicubic_upscale(lr, SCALE)
    return psnr(super_resolve(generator, lr), hr, crop_border=SCALE) - psnr(bicubic, hr, crop_border=SCALE)


def held_out_color_shift(generator: torch.nn.Module) -> float:
    lr, hr = held_out_photo()
    return color_shift(super_resolve(generator, lr), hr, SCALE)
