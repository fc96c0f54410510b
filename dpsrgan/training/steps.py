"""One optimiser step of each training stage, as pure functions (no Ray, no hidden state).

Inputs are float N×C×H×W tensors in [0, 1] (``lr`` N×C×h×w with H = scale·h); models may be
DDP-wrapped. Each step returns detached Python floats under stable names, which become the
MLflow metric keys and the columns of the per-epoch history:

- ``loss/g_mse``: pixel MSE of G(LR) against HR (logged in both stages whatever is optimised).
- ``loss/g_pixel``: the optimised pixel loss (``mse`` or ``l1``) of the pretraining step, and the
  GAN step's content-keeping pixel term (before its weight).
- ``loss/g_perceptual``, ``loss/g_adv``, ``loss/g_total`` = perceptual + w_adv · adversarial.
- ``loss/d_real``, ``loss/d_fake``: the discriminator's label-smoothed BCE on real and fake.
- ``d/real_mean``, ``d/fake_mean``: mean sigmoid(D) on real and fake patches (before the D step's
  update), what the instability guard watches.

A discriminator-only step (``gan_step(..., train_generator=False)``, D's warm-up) reports
``loss/g_mse`` and the ``loss/d_*`` and ``d/*`` entries only.

The tests call these functions directly, on CPU, without Ray.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from dpsrgan.checkpoint import unwrap
from dpsrgan.losses import PixelLoss, generator_adversarial_loss, generator_loss, pixel_loss, smoothed_bce
from dpsrgan.training.precision import PrecisionPlan

FP32 = PrecisionPlan("fp32", "cpu")


def _optimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """backward → (unscale) step → scaler update; a disabled scaler is a pass-through."""
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def _floats(named: dict[str, torch.Tensor]) -> dict[str, float]:
    """Detached floats with a single device sync."""
    values = torch.stack([value.detach().float() for value in named.values()]).tolist()
    return dict(zip(named, values, strict=True))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` with requires_grad off (gradients flow *through* it, not *into* it)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for param, flag in zip(module.parameters(), flags, strict=True):
            param.requires_grad_(flag)


def freeze_batch_norm_statistics(generator: nn.Module) -> nn.Module:
    """The GAN stage's generator mode: BatchNorm normalises with the running statistics of
    pretraining instead of each GAN batch's (eval mode; BN's affine weights, like every other
    weight, still train). G then computes in training exactly what it computes in inference, and
    small GAN batches cannot drift what pretraining measured (config.GanParams says what did)."""
    return unwrap(generator).eval()


def pretrain_step(
    generator: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr: torch.Tensor,
    hr: torch.Tensor,
    *,
    precision: PrecisionPlan = FP32,
    scaler: torch.amp.GradScaler | None = None,
    loss: PixelLoss = "mse",
) -> dict[str, float]:
    """One pixel-loss step of the generator alone (the paper's initialisation: ``mse``)."""
    scaler = scaler or precision.grad_scaler()
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        sr = generator(lr).float()
    objective = pixel_loss(sr, hr, loss)
    _optimise(objective, optimizer, scaler)
    return _floats({"loss/g_mse": F.mse_loss(sr.detach(), hr), "loss/g_pixel": objective})


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    optimizer_g: torch.optim.Optimizer | None,
    optimizer_d: torch.optim.Optimizer,
    lr: torch.Tensor,
    hr: torch.Tensor,
    *,
    adv_weight: float,
    pixel_weight: float = 0.0,
    real_label_range: tuple[float, float] = (0.7, 1.0),
    fake_label_range: tuple[float, float] = (0.0, 0.3),
    precision: PrecisionPlan = FP32,
    scaler_g: torch.amp.GradScaler | None = None,
    scaler_d: torch.amp.GradScaler | None = None,
    label_rng: torch.Generator | None = None,
    train_generator: bool = True,
) -> dict[str, float]:
    """One adversarial iteration: a discriminator step, then a generator step.

    G's loss is ``perceptual + adv_weight · adversarial + pixel_weight · L1`` (``pixel_weight`` 0
    is the paper's). G runs forward once; its output feeds the D step detached and the G step
    attached. ``train_generator=False`` is a discriminator-only step (D's warm-up against a fixed
    G: G runs without a graph, ``perceptual`` and ``optimizer_g`` are not used and may be None, and
    the ``loss/g_*`` entries other than ``loss/g_mse`` are left out).
    ``label_rng`` draws the smoothed labels (None: torch's global RNG).

    Real and fake go through D as **one batch** (HR and SR stacked, each beside its own LR): D's
    BatchNorm then normalises both with the same statistics, so the batch-wide differences that
    tell SR from HR (blur lowers the variance of every feature channel alike) are not normalised
    away as they are when each goes through D on its own. Measured with D alone against the
    quickstart's frozen pretrained G, the paper's input, batches of 8 (benchmarks/results/gan-*):
    mean D(real) − D(fake) over steps 51–75 is 0.11 in one batch against 0.03 in two passes — the
    one batch learns first (two passes catch up after ~125 steps); D's residual input
    (models/discriminator.py) is the larger lever.
    """
    scaler_g = scaler_g or precision.grad_scaler()
    scaler_d = scaler_d or precision.grad_scaler()
    lr_pair = torch.cat([lr, lr])

    # 1. Generate: SR = G(LR), graph kept for step 3.
    with torch.set_grad_enabled(train_generator), precision.autocast():
        sr = generator(lr)
    sr = sr.float()

    # 2. Discriminator step on [real (HR | LR); fake (G(LR) detached | LR)], smoothed labels.
    optimizer_d.zero_grad(set_to_none=True)
    with precision.autocast():
        real_logits, fake_logits = discriminator(torch.cat([hr, sr.detach()]), lr_pair).float().chunk(2)
    loss_d_real = smoothed_bce(real_logits, real_label_range, label_rng)
    loss_d_fake = smoothed_bce(fake_logits, fake_label_range, label_rng)
    _optimise(loss_d_real + loss_d_fake, optimizer_d, scaler_d)
    metrics = {
        "loss/g_mse": F.mse_loss(sr.detach(), hr),
        "loss/d_real": loss_d_real,
        "loss/d_fake": loss_d_fake,
        "d/real_mean": torch.sigmoid(real_logits.detach()).mean(),
        "d/fake_mean": torch.sigmoid(fake_logits.detach()).mean(),
    }
    if not train_generator:
        return _floats(metrics)
    assert perceptual is not None and optimizer_g is not None, "a generator step needs both"

    # 3. Generator step: perceptual + w_adv · adversarial (+ w_pix · L1), judged by the updated D
    #    (frozen) on the same [real; fake] batch as its own step, so its BN statistics are those D learned with.
    optimizer_g.zero_grad(set_to_none=True)
    with frozen(unwrap(discriminator)) as critic, precision.autocast():
        fake_logits_g = critic(torch.cat([hr, sr]), lr_pair).float().chunk(2)[1]
        loss_perceptual = perceptual(sr, hr).float()
    loss_adv = generator_adversarial_loss(fake_logits_g)
    loss_pixel = pixel_loss(sr, hr, "l1")
    loss_total = generator_loss(loss_perceptual, loss_adv, adv_weight) + pixel_weight * loss_pixel
    _optimise(loss_total, optimizer_g, scaler_g)
    metrics.update(
        {
            "loss/g_pixel": loss_pixel,
            "loss/g_perceptual": loss_perceptual,
            "loss/g_adv": loss_adv,
            "loss/g_total": loss_total,
        }
    )
    return _floats(metrics)
