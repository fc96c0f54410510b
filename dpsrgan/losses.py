"""DPSRGAN losses: VGG19 perceptual loss, adversarial losses on the PatchGAN logit map.

    l_G = l_perceptual + adv_weight · l_adv          (adv_weight = 1e-3, as SRGAN and DPSRGAN)
          [+ pixel_weight · L1(SR, HR)]              (ours, as ESRGAN; 0 = the paper)
    l_perceptual = MSE(Φ(SR), Φ(HR))                 Φ = VGG19 features (conv5_4, pre-activation)
                   [/ mean(Φ(HR)²)]                  (ours: a relative error, see PerceptualLoss)
    l_adv        = BCE(D(SR | LR), 1) = −log σ(D)    per patch, averaged over the logit map
    l_D          = BCE(D(HR | LR), y_real) + BCE(D(SR | LR), y_fake)
                   y_real ~ U(0.7, 1.0), y_fake ~ U(0.0, 0.3), drawn per patch (label smoothing)

All adversarial terms work on raw logits (``binary_cross_entropy_with_logits``: stable, no
sigmoid in the discriminator). Images are float NCHW in [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dpsrgan.models.vgg import VGG19Features

PixelLoss = Literal["mse", "l1"]

ADV_WEIGHT = 1e-3
REAL_LABEL_RANGE = (0.7, 1.0)
FAKE_LABEL_RANGE = (0.0, 0.3)


class PerceptualLoss(nn.Module):
    """``loss(sr, hr)``: MSE between the frozen VGG19 features of SR and HR (a scalar).
    Gradients reach ``sr`` (and so the generator), never the VGG weights; HR's features are
    computed without a graph.

    ``normalized``: divide by the mean square of HR's features (over the batch), making the loss
    a relative feature error. The raw MSE's scale is whatever the feature maps' is — it differs
    by orders of magnitude between ImageNet and random VGG weights and between layers — so a
    fixed adversarial weight (1e-3) and pixel weight would mean something else with each; the
    relative error is of order 0.1–1 for all of them."""

    def __init__(self, features: VGG19Features, normalized: bool = False) -> None:
        super().__init__()
        self.features = features
        self.normalized = normalized

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        loss = F.mse_loss(self.features(sr), target)
        if self.normalized:
            loss = loss / target.float().square().mean().clamp_min(1e-12)
        return loss


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, kind: PixelLoss) -> torch.Tensor:
    """Pixel fidelity of SR to HR: ``mse`` (SRResNet's and the paper's pretraining loss) or ``l1``
    (EDSR, ESRGAN: less swayed by the rare large errors at edges, so it trains faster to a higher
    PSNR than MSE itself on small data)."""
    match kind:
        case "mse":
            return F.mse_loss(sr, hr)
        case "l1":
            return F.l1_loss(sr, hr)
    raise ValueError(f"pixel loss must be 'mse' or 'l1', got {kind!r}")


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−log σ(D(G(LR) | LR)) averaged over batch and patches: the generator wants every patch
    judged real (non-saturating form, target 1, no smoothing)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def smoothed_bce(
    logits: torch.Tensor, label_range: tuple[float, float], generator: torch.Generator | None = None
) -> torch.Tensor:
    """BCE of ``logits`` against labels drawn uniformly from ``label_range``, one per patch.
    ``generator`` (on the logits' device) makes the draw reproducible."""
    low, high = label_range
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"label range must satisfy 0 <= low <= high <= 1, got {label_range}")
    noise = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, low + (high - low) * noise)


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_range: tuple[float, float] = REAL_LABEL_RANGE,
    fake_range: tuple[float, float] = FAKE_LABEL_RANGE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-patch BCE with smoothed labels: real patches towards U(real_range), fake ones towards
    U(fake_range); the sum of the two means. Pass ``fake_logits`` of a *detached* SR image.
    For logging the halves separately, call :func:`smoothed_bce` twice instead."""
    return smoothed_bce(real_logits, real_range, generator) + smoothed_bce(fake_logits, fake_range, generator)


def generator_loss(
    perceptual: torch.Tensor, adversarial: torch.Tensor, adv_weight: float = ADV_WEIGHT
) -> torch.Tensor:
    """l_G = perceptual + adv_weight · adversarial."""
    return perceptual + adv_weight * adversarial
