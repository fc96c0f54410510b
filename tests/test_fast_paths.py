"""Every optimised inference path agrees with the plain fp32 generator: the inference-only form
(BN folded, polyphase tail, banded full-resolution part), channels-last, bf16, and the default
``upscale`` path that combines them. Real generators on CPU; no timings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

import dpsrgan.inference.fast as fast
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.inference import upscale
from dpsrgan.inference.fast import (
    InferenceGenerator,
    fast_inference_model,
    folded_conv,
    polyphase_conv,
    repeated_prelu,
)
from dpsrgan.inference.runtime import FAST_BF16_FLAGS, cpu_has_fast_bf16, resolve_precision
from dpsrgan.metrics import psnr
from dpsrgan.models.generator import Generator
from tests._upscale_helpers import NearestUpsample, to_tensor


def trained_looking(generator: Generator, seed: int = 0) -> Generator:
    """Eval mode with non-trivial BN statistics/affines and PReLU slopes (random init leaves
    BN the identity and every slope 0.25, which would hide folding and slope-order bugs)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.rand(module.num_features, generator=rng) * 0.4 - 0.2)
                module.running_var.copy_(torch.rand(module.num_features, generator=rng) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=rng) + 0.5)
                module.bias.copy_(torch.rand(module.num_features, generator=rng) * 0.2 - 0.1)
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(torch.rand(module.weight.shape, generator=rng) * 0.8 - 0.3)
    return generator.eval()


def small_generator(scale: int = 4, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return trained_looking(Generator(scale=scale, channels=8, num_blocks=3), seed)


@pytest.fixture(scope="module")
def paper_generator() -> Generator:
    """The default architecture (64 channels, 16 blocks), as the benchmarks run it."""
    torch.manual_seed(0)
    return trained_looking(Generator())


@pytest.fixture(scope="module")
def photo_lr() -> np.ndarray:
    """A 20×24 LR crop of a real photograph (MATLAB-bicubic ×4 downscale)."""
    return bicubic_downscale(np.ascontiguousarray(data.astronaut()[100:180, 180:276]), 4)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize(("batch", "height", "width"), [(1, 9, 13), (2, 16, 7), (1, 1, 1)])
def test_inference_form_equals_generator_fp32(scale, batch, height, width):
    generator = small_generator(scale)
    runner = fast_inference_model(generator)
    assert isinstance(runner, InferenceGenerator)
    lr = torch.rand(batch, 3, height, width)
    with torch.no_grad():
        expected, got = generator(lr), runner(lr)
    assert got.shape == expected.shape == (batch, 3, scale * height, scale * width)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_paper_generator_inference_form_channels_last_fp32(paper_generator, photo_lr):
    runner = fast_inference_model(paper_generator).to(memory_format=torch.channels_last)
    lr = to_tensor(photo_lr)
    with torch.inference_mode():
        expected = paper_generator(lr)
        got = runner(lr.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_building_the_inference_form_leaves_the_generator_alone(paper_generator):
    before = {name: value.clone() for name, value in paper_generator.state_dict().items()}
    runner = fast_inference_model(paper_generator)
    with torch.no_grad():
        runner(torch.rand(1, 3, 8, 8))
    after = paper_generator.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize("band_pixels", [1, 7 * 2 * 11, 10**9])
def test_banded_full_resolution_part_is_exact(monkeypatch, band_pixels):
    generator = small_generator(4)
    runner = fast_inference_model(generator)
    lr = torch.rand(2, 3, 23, 11)
    with torch.no_grad():
        expected = generator(lr)
        monkeypatch.setattr(fast, "BAND_PIXELS", band_pixels)
        got = runner(lr)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_band_halo_is_needed_so_the_exactness_test_can_fail(monkeypatch):
    generator = small_generator(4)
    runner = fast_inference_model(generator)
    runner.halo -= 1
    lr = torch.rand(1, 3, 23, 11)
    monkeypatch.setattr(fast, "BAND_PIXELS", 4 * 11)  # bands of 4 LR rows
    with torch.no_grad():
        assert (runner(lr) - generator(lr)).abs().max().item() > 1e-4


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_folded_conv_equals_conv_then_eval_bn(bias, affine):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=bias)
    bn = nn.BatchNorm2d(6, affine=affine).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 3)
    if affine:
        nn.init.uniform_(bn.weight, -2, 2)
        nn.init.uniform_(bn.bias, -1, 1)
    x = torch.randn(2, 4, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(folded_conv(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("kernel", "padding", "r"), [(9, 4, 2), (3, 1, 2), (5, 2, 4), (1, 0, 3)])
def test_polyphase_conv_equals_conv_after_pixel_shuffle(kernel, padding, r):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, kernel, padding=padding)
    x = torch.randn(2, 5 * r * r, 6, 7)
    shuffle = nn.PixelShuffle(r)
    with torch.no_grad():
        expected = conv(shuffle(x))
        got = shuffle(polyphase_conv(conv, r)(x))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "conv", [nn.Conv2d(4, 3, 3, stride=2, padding=1), nn.Conv2d(4, 3, 3), nn.Conv2d(4, 3, 3, padding=1, dilation=2)]
)
def test_polyphase_conv_refuses_what_it_cannot_rewrite(conv):
    with pytest.raises(ValueError, match="'same' conv"):
        polyphase_conv(conv, 2)


def test_folded_conv_refuses_non_zero_padding():
    with pytest.raises(ValueError, match="zero padding"):
        folded_conv(nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(3).eval())


def test_repeated_prelu_commutes_with_pixel_shuffle():
    torch.manual_seed(0)
    act = nn.PReLU(5)
    nn.init.uniform_(act.weight, -1, 1)
    x = torch.randn(1, 20, 4, 3)
    shuffle = nn.PixelShuffle(2)
    with torch.no_grad():
        torch.testing.assert_close(shuffle(repeated_prelu(act, 4)(x)), act(shuffle(x)))


def test_other_models_run_as_they_are():
    model = NearestUpsample()
    assert fast_inference_model(model) is model


def test_bf16_inference_form_is_close_to_fp32_generator(paper_generator, photo_lr):
    """bf16 autocast on the inference form, channels-last — what ``auto`` runs on bf16 CPUs."""
    runner = fast_inference_model(paper_generator).to(memory_format=torch.channels_last)
    lr = to_tensor(photo_lr).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = paper_generator(lr).clamp(0, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = runner(lr).float().clamp(0, 1)
    error = (got - expected).pow(2).mean().item()
    assert 10 * np.log10(1 / error) > 40  # bf16 rounding only; a wrong layer would be ~10 dB


@pytest.mark.parametrize("tile", [0, 8])
def test_default_upscale_path_matches_plain_fp32_generator(paper_generator, photo_lr, tile):
    """``upscale(image, model)`` with every default (precision auto, inference form, tiles)
    against the untouched generator's fp32 forward, quantised the same way."""
    with torch.inference_mode():
        plain = paper_generator(to_tensor(photo_lr))[0].clamp(0, 1).permute(1, 2, 0)
    expected = (plain * 255).round().to(torch.uint8).numpy()
    got = upscale(photo_lr, paper_generator, tile=tile, device="cpu")
    assert got.shape == expected.shape and got.dtype == np.uint8
    if resolve_precision("auto", torch.device("cpu")) == "fp32":
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    else:
        assert psnr(got, expected, crop_border=0, y_channel=False) > 40


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the Linux CPU flag list")
def test_auto_precision_is_bf16_exactly_on_native_bf16_cpus():
    flags = set(Path("/proc/cpuinfo").read_text().split())
    native = any(flag in flags for flag in FAST_BF16_FLAGS)
    assert cpu_has_fast_bf16() is native
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
