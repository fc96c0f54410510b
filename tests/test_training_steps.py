"""The pure step functions on CPU, no Ray: the losses fall on a fixed batch, names are stable,
gradients go where they should, and the training state survives a save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dpsrgan.checkpoint import atomic_torch_save, read_checkpoint
from dpsrgan.losses import PerceptualLoss
from dpsrgan.models.discriminator import Discriminator
from dpsrgan.models.generator import Generator
from dpsrgan.models.vgg import VGG19Features
from dpsrgan.training.ema import EMA
from dpsrgan.training.precision import select_precision
from dpsrgan.training.state import Progress, TrainingParts, capture, restore, rng_state, set_rng_state
from dpsrgan.training.steps import gan_step, pretrain_step

GAN_KEYS = {
    "loss/g_mse",
    "loss/g_pixel",
    "loss/g_perceptual",
    "loss/g_adv",
    "loss/g_total",
    "loss/d_real",
    "loss/d_fake",
    "d/real_mean",
    "d/fake_mean",
}


def fixed_batch(n: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth HR batch and its ×4 average-pooled LR (the step functions' input layout)."""
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=generator)
    hr = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return F.avg_pool2d(hr, 4), hr


def tiny_gan():
    torch.manual_seed(0)
    generator = Generator(scale=4, channels=8, num_blocks=2)
    discriminator = Discriminator(channels=8)
    perceptual = PerceptualLoss(VGG19Features("relu2_2", "random"))
    return generator, discriminator, perceptual


def test_pretrain_step_reduces_mse_on_a_fixed_batch():
    torch.manual_seed(0)
    generator = Generator(scale=4, channels=8, num_blocks=2)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    lr, hr = fixed_batch()
    losses = [pretrain_step(generator, optimizer, lr, hr)["loss/g_mse"] for _ in range(25)]
    assert set(pretrain_step(generator, optimizer, lr, hr)) == {"loss/g_mse", "loss/g_pixel"}
    assert all(isinstance(value, float) for value in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_gan_step_reduces_generator_loss_and_trains_both_networks():
    generator, discriminator, perceptual = tiny_gan()
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    lr, hr = fixed_batch()
    vgg_before = [p.clone() for p in perceptual.parameters()]
    d_before = [p.clone() for p in discriminator.parameters()]
    history = [
        gan_step(generator, discriminator, perceptual, opt_g, opt_d, lr, hr, adv_weight=1e-3)
        for _ in range(15)
    ]
    assert set(history[0]) == GAN_KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for step in history for v in step.values())
    assert history[-1]["loss/g_perceptual"] < 0.7 * history[0]["loss/g_perceptual"]
    assert history[-1]["loss/g_total"] < history[0]["loss/g_total"]
    # D learned, the frozen VGG did not, and D is trainable again after the G step froze it.
    assert any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(vgg_before, perceptual.parameters(), strict=True))
    assert all(p.requires_grad for p in discriminator.parameters())
    assert all(p.grad is None for p in perceptual.parameters())


def test_gan_step_discriminator_learns_to_separate_on_a_fixed_batch():
    generator, discriminator, perceptual = tiny_gan()
    opt_g = torch.optim.Adam(generator.parameters(), lr=0.0)  # G frozen in place: D's task is fixed
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    lr, hr = fixed_batch()
    steps = [
        gan_step(
            generator,
            discriminator,
            perceptual,
            opt_g,
            opt_d,
            lr,
            hr,
            adv_weight=1e-3,
            label_rng=torch.Generator().manual_seed(i),
        )
        for i in range(20)
    ]
    first, last = steps[0], steps[-1]
    assert last["loss/d_real"] + last["loss/d_fake"] < first["loss/d_real"] + first["loss/d_fake"]
    assert last["d/real_mean"] > last["d/fake_mean"]


def test_bf16_autocast_steps_stay_finite():
    generator, discriminator, perceptual = tiny_gan()
    plan = select_precision("bf16", torch.device("cpu"))
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    lr, hr = fixed_batch(n=2)
    losses = gan_step(
        generator, discriminator, perceptual, opt_g, opt_d, lr, hr, adv_weight=1e-3, precision=plan
    )
    losses.update(pretrain_step(generator, opt_g, lr, hr, precision=plan))
    assert all(math.isfinite(v) for v in losses.values())


def test_training_state_round_trips_through_a_weights_only_file(tmp_path):
    generator, discriminator, perceptual = tiny_gan()
    plan = select_precision("fp32", torch.device("cpu"))
    parts = TrainingParts(
        generator,
        torch.optim.Adam(generator.parameters(), lr=1e-3),
        plan.grad_scaler(),
        discriminator,
        torch.optim.Adam(discriminator.parameters(), lr=1e-4),
        plan.grad_scaler(),
        EMA(generator, 0.9),
    )
    lr, hr = fixed_batch(n=2)
    gan_step(
        generator, discriminator, perceptual, parts.optimizer_g, parts.optimizer_d, lr, hr, adv_weight=1e-3
    )
    parts.ema.update(generator)
    progress = Progress(
        epoch=1, step_in_epoch=3, global_step=7, history=[{"epoch": 1.0, "loss/g_mse": 0.1}], starts=[0]
    )
    state = capture(parts, progress, [rng_state()], {"stage": "gan", "generator": generator.config})
    atomic_torch_save(state, tmp_path / "state.pt")
    loaded = read_checkpoint(tmp_path / "state.pt")  # weights_only=True inside

    expected_g = {k: v.clone() for k, v in generator.state_dict().items()}
    expected_ema = {k: v.clone() for k, v in parts.ema.module.state_dict().items()}
    gan_step(
        generator, discriminator, perceptual, parts.optimizer_g, parts.optimizer_d, lr, hr, adv_weight=1e-3
    )
    parts.ema.update(generator)

    restored = restore(parts, loaded)
    assert restored == progress
    assert all(torch.equal(expected_g[k], v) for k, v in generator.state_dict().items())
    assert all(torch.equal(expected_ema[k], v) for k, v in parts.ema.module.state_dict().items())
    assert parts.ema.updates == 1
    assert parts.optimizer_g.state_dict()["state"][0]["step"].item() == 1

    set_rng_state(loaded["rng"][0])
    first = torch.rand(3)
    set_rng_state(loaded["rng"][0])
    assert torch.equal(first, torch.rand(3))


def test_precision_choices_fail_with_one_line():
    from dpsrgan.errors import DpsrganError

    with pytest.raises(DpsrganError, match="fp16 needs a CUDA GPU"):
        select_precision("fp16", torch.device("cpu"))
    with pytest.raises(DpsrganError, match="choose one of"):
        select_precision("fp8", torch.device("cpu"))
    plan = select_precision("bf16", torch.device("cpu"))
    assert plan.dtype is torch.bfloat16 and not plan.needs_scaler
