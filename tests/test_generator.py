"""Generator architecture on CPU with tiny widths: shapes, dilated blocks, ICNR, receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.models.generator import Generator


def tiny(**overrides) -> Generator:
    config = {"channels": 8, "num_blocks": 2} | overrides
    return Generator(**config).eval()


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("size", [(16, 16), (15, 17), (1, 3)])
def test_output_is_scale_times_input_for_any_size(scale, size):
    height, width = size
    out = tiny(scale=scale)(torch.rand(2, 3, height, width))
    assert out.shape == (2, 3, height * scale, width * scale)
    assert len(tiny(scale=scale).upsampler) == {2: 1, 4: 2, 8: 3}[scale]


def test_dilated_conv_sits_in_alternating_blocks():
    model = tiny(num_blocks=5, dilation=3)
    dilations = [block.dilated.dilation if block.dilated is not None else None for block in model.body]
    assert dilations == [(3, 3), None, (3, 3), None, (3, 3)]
    assert all(block.dilated.padding == (3, 3) for block in model.body[::2])


def test_default_parameter_counts():
    """Measured counts of the default model (SRResNet-16 at 64 channels is 1,550,659 here)."""
    model = Generator()
    total = sum(p.numel() for p in model.parameters())
    srresnet = sum(p.numel() for name, p in model.named_parameters() if ".dilated." not in name)
    assert srresnet == 1_550_659
    assert total == srresnet + 8 * (64 * 64 * 9 + 64) == 1_846_083


def test_icnr_upsampler_starts_without_checkerboard():
    """With ICNR every PixelShuffle stage is nearest-neighbour at init, so the sub-pixels of a
    2×2 cell are equal and a constant image stays constant inside; a plain init breaks both."""
    torch.manual_seed(0)
    model = tiny(scale=4)
    stage = model.upsampler[0]
    up = stage(torch.rand(1, 8, 5, 7))
    cells = up.unfold(2, 2, 2).unfold(3, 2, 2)  # N×C×5×7×2×2
    assert torch.equal(cells, cells[..., :1, :1].expand_as(cells))

    def interior_spread(generator: Generator) -> float:
        """Largest per-channel max − min of the output over the 8×8 LR pixels that the zero
        padding cannot reach."""
        margin = generator.receptive_radius + 1
        out = generator(torch.full((1, 3, 2 * margin + 8, 2 * margin + 8), 0.5))
        interior = out[..., margin * 4 : (margin + 8) * 4, margin * 4 : (margin + 8) * 4]
        return (interior.amax(dim=(2, 3)) - interior.amin(dim=(2, 3))).max().item()

    assert interior_spread(model) < 1e-5
    with torch.no_grad():
        for block in model.upsampler:
            nn.init.kaiming_normal_(block.conv.weight)
    assert interior_spread(model) > 1e-3


def empirical_window_sizes(model: Generator, length: int, axis: int) -> tuple[int, int]:
    """Perturb each LR pixel of one line, one at a time, and record which output pixels change;
    return (largest window, largest one-sided reach) over the output pixels of the central LR
    pixel.

    The image is zero and the biases are zeroed, so the unperturbed output is exactly zero and
    the response to the perturbed pixel is never rounded away against a large value (the far
    taps of a deep stack contribute ~1e-30). float64, eval mode: BN applies its running stats
    (mean 0, var 1 here), so the batch items stay independent.
    """
    model = model.double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.bias.zero_()
    shape = (length, 3, 1, length) if axis == 3 else (length, 3, length, 1)
    batch = torch.zeros(shape, dtype=torch.float64)
    for q in range(length):
        batch[q].view(3, length)[:, q] = 1.0
    with torch.no_grad():
        out = model(batch)
    out = out[:, :, 0, :] if axis == 3 else out[:, :, :, 0]  # first output line of the LR line
    changed = out.abs().amax(dim=1) > 0  # [perturbed pixel q, output pixel]
    centre = length // 2
    widths, reaches = [], []
    for pixel in range(centre * model.scale, (centre + 1) * model.scale):
        inputs = torch.nonzero(changed[:, pixel]).flatten()
        low, high = inputs.min().item(), inputs.max().item()
        assert len(inputs) == high - low + 1 and 0 < low and high < length - 1  # contiguous, inside
        widths.append(high - low + 1)
        reaches.append(max(centre - low, high - centre))
    return max(widths), max(reaches)


@pytest.mark.parametrize(
    "config",
    [
        {"channels": 8, "num_blocks": 2, "scale": 4},
        {"channels": 8, "num_blocks": 3, "scale": 2, "dilation": 3},
        {"channels": 8, "num_blocks": 16, "scale": 4},  # default depth: same field as the 64-ch model
    ],
)
def test_receptive_field_matches_perturbation(config):
    model = Generator(**config)
    length = 2 * model.receptive_radius + 12
    for axis in (2, 3):
        assert empirical_window_sizes(model, length, axis) == (model.receptive_field, model.receptive_radius)


def test_default_receptive_field():
    assert (Generator().receptive_field, Generator().receptive_radius) == (112, 56)


def test_config_round_trip_and_errors():
    model = tiny(scale=8, dilation=3)
    assert model.config == {
        "scale": 8, "channels": 8, "num_blocks": 2, "dilation": 3, "in_channels": 3, "bicubic_skip": False,
    }
    clone = Generator.from_config(model.config)
    assert clone.config == model.config
    clone.load_state_dict(model.state_dict())  # same keys and shapes
    with pytest.raises(DpsrganError, match="unknown keys \\['blocks'\\]"):
        Generator.from_config({"blocks": 3})
    with pytest.raises(DpsrganError, match="scale must be one of"):
        Generator(scale=3)
    with pytest.raises(DpsrganError, match="dilation"):
        Generator(dilation=0)
