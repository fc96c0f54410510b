"""The residual-over-bicubic generator (``model.bicubic_skip``): its skip is MATLAB's bicubic, an
untrained generator *is* bicubic, it trains from there, and every inference path (fast form,
tiles, bf16) keeps it exact. Real modules on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from dpsrgan.degradation import bicubic_downscale, imresize
from dpsrgan.inference import upscale_tensor
from dpsrgan.inference.fast import fast_inference_model
from dpsrgan.models.bicubic import BicubicUpsample, symmetric_pad
from dpsrgan.models.generator import Generator
from tests.test_fast_paths import trained_looking


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (7, 9), (32, 17)])
def test_bicubic_upsample_is_matlab_imresize(scale, height, width):
    image = np.random.default_rng(height * width).random((height, width, 3))
    expected = imresize(image, scale=scale)
    got = BicubicUpsample(scale)(torch.from_numpy(image).permute(2, 0, 1)[None].float())
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_symmetric_pad_mirrors_the_edge_pixel_like_numpy():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    expected = np.pad(x[0, 0].numpy(), 2, mode="symmetric")
    np.testing.assert_array_equal(symmetric_pad(x, 2)[0, 0].numpy(), expected)


def test_bicubic_upsample_stays_float32_under_autocast():
    x = torch.rand(1, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = BicubicUpsample(4)(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, BicubicUpsample(4)(x))


def test_untrained_generator_with_the_skip_is_exactly_bicubic():
    lr = bicubic_downscale(np.ascontiguousarray(data.astronaut()[64:192, 64:192]), 4)
    generator = Generator(channels=8, num_blocks=2, bicubic_skip=True).eval()
    with torch.no_grad():
        sr = generator(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
    np.testing.assert_allclose(sr[0].permute(1, 2, 0).numpy() * 255, imresize(lr, scale=4), atol=1e-3)
    assert not torch.count_nonzero(generator.tail.weight)  # zero-initialised residual branch


def test_skip_is_not_part_of_the_checkpoint_and_old_configs_load_as_the_paper_form():
    with_skip, paper = Generator(channels=8, num_blocks=2, bicubic_skip=True), Generator(channels=8, num_blocks=2)
    assert with_skip.state_dict().keys() == paper.state_dict().keys()
    old_config = {key: value for key, value in paper.config.items() if key != "bicubic_skip"}
    assert Generator.from_config(old_config).bicubic is None


def test_the_residual_branch_learns_after_the_first_step():
    torch.manual_seed(0)
    generator = Generator(channels=8, num_blocks=2, bicubic_skip=True)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.l1_loss(generator(lr), hr).backward()
        optimizer.step()
    assert torch.count_nonzero(generator.tail.weight) > 0
    assert generator.head[0].weight.grad.abs().sum() > 0  # gradients reach the body once the tail moved


@pytest.mark.parametrize(("height", "width"), [(9, 13), (1, 1), (16, 7)])
def test_fast_inference_form_keeps_the_skip(height, width):
    torch.manual_seed(0)
    generator = trained_looking(Generator(channels=8, num_blocks=3, bicubic_skip=True))
    torch.nn.init.normal_(generator.tail.weight, std=0.01)  # a trained, non-zero residual
    lr = torch.rand(2, 3, height, width)
    with torch.no_grad():
        torch.testing.assert_close(fast_inference_model(generator)(lr), generator(lr), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("height", "width", "tile"), [(37, 53, 16), (5, 3, 4)])
def test_tiled_equals_untiled_with_the_skip(height, width, tile):
    torch.manual_seed(0)
    generator = trained_looking(Generator(channels=8, num_blocks=2, bicubic_skip=True))
    torch.nn.init.normal_(generator.tail.weight, std=0.01)
    lr = torch.rand(1, 3, height, width)
    whole = upscale_tensor(lr, generator, device="cpu", precision="fp32")
    tiled = upscale_tensor(lr, generator, tile, generator.receptive_radius, device="cpu", precision="fp32")
    assert (tiled - whole).abs().max().item() <= 1e-5
