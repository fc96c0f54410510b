"""Losses: label smoothing draws, BCE-with-logits forms, gradient routing through the frozen VGG."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dpsrgan.losses import (
    PerceptualLoss,
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    pixel_loss,
    smoothed_bce,
)
from dpsrgan.models.generator import Generator
from dpsrgan.models.vgg import VGG19Features


def labels_seen(label_range: tuple[float, float], count: int = 4096) -> torch.Tensor:
    """Recover the per-patch labels smoothed_bce drew: with logits 0, BCE = log 2 per patch is
    label-independent, so use a per-patch gradient instead: d BCE / d logit = (σ(0) − y) / n."""
    logits = torch.zeros(1, 1, 64, count // 64, requires_grad=True)
    smoothed_bce(logits, label_range, torch.Generator().manual_seed(1)).backward()
    return (0.5 - logits.grad * logits.numel()).flatten()


@pytest.mark.parametrize("label_range", [(0.7, 1.0), (0.0, 0.3), (0.9, 0.9)])
def test_smoothed_labels_are_uniform_per_patch_within_range(label_range):
    low, high = label_range
    labels = labels_seen(label_range)
    assert labels.min() >= low - 1e-6 and labels.max() <= high + 1e-6
    if high > low:  # per patch, spread over the whole range
        assert labels.unique().numel() > 4000
        assert labels.mean().item() == pytest.approx((low + high) / 2, abs=0.01)
        assert labels.min() < low + 0.01 and labels.max() > high - 0.01


def test_discriminator_loss_is_real_plus_fake_smoothed_bce():
    real, fake = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    total = discriminator_loss(real, fake, generator=torch.Generator().manual_seed(3))
    draw = torch.Generator().manual_seed(3)
    real_labels = 0.7 + 0.3 * torch.rand(real.shape, generator=draw)
    fake_labels = 0.3 * torch.rand(fake.shape, generator=draw)
    expected = F.binary_cross_entropy_with_logits(real, real_labels) + F.binary_cross_entropy_with_logits(
        fake, fake_labels
    )
    torch.testing.assert_close(total, expected)
    with pytest.raises(ValueError, match="label range"):
        discriminator_loss(real, fake, real_range=(1.0, 0.7))


def test_generator_adversarial_loss_is_minus_log_sigmoid():
    logits = torch.tensor([[[[-2.0, 0.0], [1.0, 3.0]]]])
    expected = -torch.log(torch.sigmoid(logits)).mean()
    torch.testing.assert_close(generator_adversarial_loss(logits), expected)
    # Stable where a sigmoid would saturate to 0 and give log(0).
    assert math.isfinite(generator_adversarial_loss(torch.full((1, 1, 2, 2), -200.0)).item())


def test_generator_loss_weights_the_adversarial_term():
    total = generator_loss(torch.tensor(2.0), torch.tensor(5.0))
    assert total.item() == pytest.approx(2.0 + 1e-3 * 5.0)
    assert generator_loss(torch.tensor(2.0), torch.tensor(5.0), adv_weight=0.1).item() == pytest.approx(2.5)


def test_perceptual_loss_trains_the_generator_not_vgg():
    torch.manual_seed(0)
    generator = Generator(channels=8, num_blocks=2)
    loss_fn = PerceptualLoss(VGG19Features("conv2_2", weights="random"))
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    loss = loss_fn(generator(lr), hr)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None for p in loss_fn.parameters())
    assert loss_fn(hr, hr).item() == 0.0


class _Scaled(torch.nn.Module):
    """A feature extractor's output times a constant: another VGG weight set's scale."""

    def __init__(self, features: torch.nn.Module, factor: float) -> None:
        super().__init__()
        self.features, self.factor = features, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) * self.factor


def test_normalized_perceptual_loss_does_not_depend_on_the_feature_scale():
    torch.manual_seed(0)
    features = VGG19Features("conv2_2", "random")
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    raw = [PerceptualLoss(_Scaled(features, k))(sr, hr).item() for k in (1.0, 10.0)]
    normalized = [PerceptualLoss(_Scaled(features, k), normalized=True)(sr, hr).item() for k in (1.0, 10.0)]
    assert raw[1] == pytest.approx(100 * raw[0], rel=1e-4)  # the paper's MSE scales with the features
    assert normalized[1] == pytest.approx(normalized[0], rel=1e-4)
    assert 0 < normalized[0] < 10


def test_pixel_loss_kinds_and_their_error():
    sr, hr = torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 3, 4, 4)
    assert pixel_loss(sr, hr, "l1").item() == pytest.approx(0.5)
    assert pixel_loss(sr, hr, "mse").item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="'mse' or 'l1'"):
        pixel_loss(sr, hr, "l2")
