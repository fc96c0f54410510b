"""The GAN stage from a pretrained generator: its first steps do not jolt the generator, and its
discriminator learns to tell SR from HR. The stage's own pieces (gan_step, its learning-rate
schedule, its generator mode, params.yaml's gan.* / loss.* / model.*) on real photographs; no Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dpsrgan.config import Params, load_params
from dpsrgan.losses import PerceptualLoss
from dpsrgan.models.discriminator import Discriminator
from dpsrgan.models.vgg import VGG19Features
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.schedule import stage_learning_rates
from dpsrgan.training.steps import freeze_batch_norm_statistics, gan_step
from tests._photo_pretrain import held_out_color_shift, photo_batch, pretrained_generator

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
CROP = 64


def gan_batches(count: int, batch: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng, torch_rng = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    return [random_dihedral(*random_crop(*photo_batch(rng, batch=batch), CROP, torch_rng), torch_rng) for _ in range(count)]


def discriminator(params: Params, residual_input: bool) -> Discriminator:
    torch.manual_seed(0)
    return Discriminator(channels=params.model.d_channels, residual_input=residual_input)


def colour_shifts_of_first_steps(params: Params, steps: int) -> list[float]:
    """The held-out photo's colour shift (0–255) after each of the stage's first GAN steps."""
    gan, loss = params.gan, params.loss
    generator = freeze_batch_norm_statistics(pretrained_generator())
    critic = discriminator(params, params.model.d_residual_input)
    perceptual = PerceptualLoss(VGG19Features(loss.vgg_layer, loss.vgg_weights), normalized=loss.perceptual_normalized)
    opt_g = torch.optim.Adam(generator.parameters(), lr=gan.lr_g, betas=tuple(gan.betas))
    opt_d = torch.optim.Adam(critic.parameters(), lr=gan.lr_d, betas=tuple(gan.betas))
    shifts = []
    for step, (lr, hr) in enumerate(gan_batches(steps, gan.batch_size)):
        rates = stage_learning_rates(step, lr_g=gan.lr_g, lr_d=gan.lr_d, schedule=gan.lr_schedule,
                                     total_steps=gan.epochs * gan.steps_per_epoch, warmup_steps=gan.warmup_steps,
                                     d_warmup_steps=gan.d_warmup_steps)
        for optimizer, rate in ((opt_g, rates["g"]), (opt_d, rates["d"])):
            optimizer.param_groups[0]["lr"] = rate
        gan_step(generator, critic, perceptual, opt_g, opt_d, lr, hr, adv_weight=loss.adv_weight,
                 pixel_weight=loss.pixel_weight, real_label_range=loss.real_label_range,
                 fake_label_range=loss.fake_label_range, train_generator=step >= gan.d_warmup_steps)
        shifts.append(held_out_color_shift(generator))
    return shifts


@pytest.mark.slow
def test_the_first_gan_steps_keep_the_pretrained_colour():
    start = held_out_color_shift(pretrained_generator())
    shifts = colour_shifts_of_first_steps(PARAMS, 10)
    assert start < 0.5 and max(shifts) <= 1.0, shifts
    # The same steps without the warm-ups (Adam's first updates at full rate) do jolt it.
    cold = PARAMS.model_copy(update={"gan": PARAMS.gan.model_copy(update={"warmup_steps": 0, "d_warmup_steps": 0})})
    assert max(colour_shifts_of_first_steps(cold, 10)) > 1.0


def mean_gap_of_d_alone(steps: int) -> float:
    """Mean D(real) − D(fake) over the last 25 of ``steps`` discriminator-only steps of the stage's
    own step function, against the frozen pretrained generator (D's task does not move)."""
    generator = freeze_batch_norm_statistics(pretrained_generator()).requires_grad_(False)
    critic = discriminator(PARAMS, PARAMS.model.d_residual_input)
    optimizer = torch.optim.Adam(critic.parameters(), lr=PARAMS.gan.lr_d, betas=tuple(PARAMS.gan.betas))
    loss, gaps = PARAMS.loss, []
    torch.manual_seed(0)
    for lr, hr in gan_batches(steps, PARAMS.gan.batch_size, seed=1):
        out = gan_step(generator, critic, None, None, optimizer, lr, hr, adv_weight=0.0,
                       real_label_range=loss.real_label_range, fake_label_range=loss.fake_label_range,
                       train_generator=False)
        gaps.append(out["d/real_mean"] - out["d/fake_mean"])
    return float(np.mean(gaps[-25:]))


@pytest.mark.slow
def test_the_stage_step_trains_a_discriminator_that_parts_real_from_fake():
    assert mean_gap_of_d_alone(steps=100) >= 0.10


def test_a_discriminator_only_step_leaves_the_generator_alone():
    generator = pretrained_generator()
    before = {key: value.clone() for key, value in generator.state_dict().items()}
    critic = discriminator(PARAMS, True)
    opt_d = torch.optim.Adam(critic.parameters(), lr=1e-3)
    d_before = [p.clone() for p in critic.parameters()]
    lr, hr = gan_batches(1, 2)[0]
    out = gan_step(generator, critic, None, None, opt_d, lr, hr, adv_weight=0.01, train_generator=False)
    assert set(out) == {"loss/g_mse", "loss/d_real", "loss/d_fake", "d/real_mean", "d/fake_mean"}
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, critic.parameters(), strict=True))
    assert all(p.grad is None for p in generator.parameters())
