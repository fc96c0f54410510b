"""Tiled upscaling equals untiled upscaling when the pad covers the receptive field, and shows
no seam when it does not (real tiny generators, CPU, fp32)."""

from __future__ import annotations

import pytest
import torch

from dpsrgan.inference import upscale_tensor
from dpsrgan.inference.tiling import effective_overlap, tiled_forward
from tests._upscale_helpers import NearestUpsample, smooth_rgb, tiny_generator, to_tensor


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


@pytest.mark.parametrize(("height", "width", "tile"), [(37, 53, 16), (33, 17, 10), (5, 3, 4), (1, 1, 8), (64, 48, 16)])
def test_tiled_equals_untiled_when_pad_covers_receptive_field(generator, height, width, tile):
    lr = to_tensor(smooth_rgb(height, width))
    whole = upscale_tensor(lr, generator, device="cpu", precision="fp32")
    tiled = upscale_tensor(lr, generator, tile, generator.receptive_radius, device="cpu", precision="fp32")
    assert tiled.shape == (1, 3, 4 * height, 4 * width)
    assert (tiled - whole).abs().max().item() <= 1 / 255


def test_small_pad_is_inexact_so_the_exactness_test_can_fail(generator):
    lr = to_tensor(smooth_rgb(37, 53))
    whole = upscale_tensor(lr, generator, device="cpu", precision="fp32")
    tiled = upscale_tensor(lr, generator, 16, 0, device="cpu", precision="fp32")
    assert (tiled - whole).abs().max().item() > 1 / 255


@pytest.mark.parametrize("overlap", [0, 1, 3, 8])
@pytest.mark.parametrize(("height", "width", "tile", "pad"), [(23, 31, 8, 4), (16, 16, 4, 2), (9, 40, 6, 8)])
def test_blend_weights_are_a_partition_of_unity(height, width, tile, pad, overlap):
    """With a pointwise model every tile agrees with the whole image, so any deviation would
    come from the weights or the band bookkeeping."""
    model = NearestUpsample().eval()
    lr = torch.rand(2, 3, height, width)
    whole = upscale_tensor(lr, model, device="cpu", precision="fp32")
    tiled = upscale_tensor(lr, model, tile, pad, overlap=overlap, device="cpu", precision="fp32")
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


def test_bands_stream_top_to_bottom_and_stay_tile_sized():
    """Peak memory follows the tile: no band is taller than (tile + 2·overlap)·scale rows, each
    output row is yielded exactly once, in order."""
    height, width, tile, pad, scale = 50, 20, 8, 4, 2
    overlap = effective_overlap(tile, pad, 2)
    model = NearestUpsample().eval()
    with torch.inference_mode():
        bands = list(tiled_forward(torch.rand(1, 3, height, width), model, scale=scale, tile=tile, pad=pad, overlap=overlap))
    starts = [start for start, _ in bands]
    heights = [band.shape[-2] for _, band in bands]
    assert starts == [sum(heights[:i]) for i in range(len(bands))]
    assert sum(heights) == height * scale
    assert max(heights) <= (tile + 2 * overlap) * scale


def _seam_score(sr: torch.Tensor, period: int) -> float:
    """Mean jump between the two output pixels straddling each tile boundary, relative to the
    mean jump 2..8 pixels to either side of it (≈1 when the boundary is not special), averaged
    over both axes."""
    scores = []
    for axis in (-1, -2):
        size = sr.shape[axis]
        boundary = torch.arange(period, size, period) - 1
        around = torch.cat([boundary + k for k in range(2, 9)] + [boundary - k for k in range(2, 9)])
        jump = (sr.narrow(axis, 1, size - 1) - sr.narrow(axis, 0, size - 1)).abs()
        scores.append((jump.index_select(axis, boundary).mean() / jump.index_select(axis, around).mean()).item())
    return sum(scores) / len(scores)


@pytest.mark.slow
def test_moderate_pad_shows_no_seam():
    """pad 4 of a receptive radius of 14: tiles disagree near their edges (by up to ~30/255 on
    these random models), yet with the blend the boundaries are no more visible than in the
    untiled output at the same places; a hard cut (overlap 0) with the same pad shows them.
    Averaged over three random generators and images, since one random net is noisy."""
    blended, hard_cut = [], []
    for seed in range(3):
        generator = tiny_generator(seed)
        lr = to_tensor(smooth_rgb(96, 96, seed=seed))
        whole = upscale_tensor(lr, generator, device="cpu", precision="fp32")
        baseline = _seam_score(whole, 64)
        soft = upscale_tensor(lr, generator, 16, 4, device="cpu", precision="fp32")
        hard = upscale_tensor(lr, generator, 16, 4, overlap=0, device="cpu", precision="fp32")
        assert (soft - whole).abs().max().item() > 1 / 255  # the pad really is too small
        blended.append(_seam_score(soft, 64) / baseline)
        hard_cut.append(_seam_score(hard, 64) / baseline)
    blended_mean, hard_mean = sum(blended) / 3, sum(hard_cut) / 3
    assert blended_mean < 1.5, (blended, hard_cut)
    assert hard_mean > 1.5 * blended_mean, (blended, hard_cut)
