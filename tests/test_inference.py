"""The Python API (PIL / numpy / tensor in, same type out), precision choice and its safety net,
and model resolution — real tiny generators on CPU."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

import dpsrgan
from dpsrgan.checkpoint import save_generator
from dpsrgan.errors import DpsrganError
from dpsrgan.inference import resolve_model, upscale, upscale_tensor
from dpsrgan.inference.runtime import resolve_precision
from tests._upscale_helpers import BrokenUnderReducedPrecision, smooth_rgb, tiny_generator, to_tensor


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse)) if mse else float("inf")


def test_top_level_upscale_is_the_inference_api():
    assert dpsrgan.upscale is upscale


def test_pil_in_pil_out_matches_numpy_and_tensor_paths(generator):
    rgb = smooth_rgb(13, 19)
    from_pil = upscale(Image.fromarray(rgb), generator, device="cpu", precision="fp32")
    from_array = upscale(rgb, generator, tile=8, device="cpu", precision="fp32")
    from_tensor = upscale_tensor(to_tensor(rgb), generator, device="cpu", precision="fp32")
    assert isinstance(from_pil, Image.Image) and from_pil.mode == "RGB" and from_pil.size == (76, 52)
    assert isinstance(from_array, np.ndarray) and from_array.dtype == np.uint8 and from_array.shape == (52, 76, 3)
    expected = (from_tensor[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(from_pil), expected)
    assert np.abs(from_array.astype(int) - expected.astype(int)).max() <= 1  # tiled: within 1/255


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((9, 11), np.uint8), ((9, 11, 1), np.uint16), ((9, 11, 2), np.uint8), ((9, 11, 4), np.float32), ((9, 11, 3), np.float64)],
)
def test_array_layout_and_dtype_are_kept(generator, shape, dtype):
    rng = np.random.default_rng(0)
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1.0)
    array = (rng.random(shape) * top).astype(dtype)
    out = upscale(array, generator, device="cpu", precision="fp32")
    assert out.dtype == dtype
    assert out.shape == (36, 44, *shape[2:])
    assert out.min() >= 0 and out.max() <= top  # clamped


def test_uint16_output_uses_sixteen_bit_precision(generator):
    gray = (smooth_rgb(12, 12)[..., 0].astype(np.uint16) * 257) + 100
    out = upscale(gray, generator, device="cpu", precision="fp32")
    assert np.count_nonzero(out % 257) > out.size // 2  # not just 8-bit values scaled up


def test_tensor_batch_and_train_mode_is_restored(generator):
    lr = torch.rand(2, 3, 10, 7)
    generator.train()
    try:
        sr = upscale_tensor(lr, generator, 4, 14, device="cpu", precision="fp32")
        assert generator.training
    finally:
        generator.eval()
    assert sr.shape == (2, 3, 40, 28) and sr.dtype == torch.float32
    assert 0 <= sr.min() and sr.max() <= 1
    single = upscale_tensor(lr[1:], generator, device="cpu", precision="fp32")
    torch.testing.assert_close(sr[1:], single, rtol=0, atol=1e-5)


def test_bf16_is_close_to_fp32(generator):
    rgb = smooth_rgb(32, 32, seed=1)
    fp32 = upscale(rgb, generator, device="cpu", precision="fp32")
    bf16 = upscale(rgb, generator, device="cpu", precision="bf16")
    assert _psnr(bf16, fp32) > 40


@pytest.mark.parametrize("failure", ["nan", "blank"])
def test_bad_reduced_precision_output_falls_back_to_fp32(failure, caplog):
    model = BrokenUnderReducedPrecision(failure)
    rgb = smooth_rgb(12, 16)
    fp32 = upscale(rgb, model, device="cpu", precision="fp32")
    with caplog.at_level(logging.WARNING, logger="dpsrgan.inference"):
        fallback = upscale(rgb, model, tile=8, device="cpu", precision="bf16")
    np.testing.assert_array_equal(fallback, fp32)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "falling back to fp32" in warnings[0], warnings


def test_precision_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    with pytest.raises(DpsrganError, match="fp16 runs on CUDA only"):
        resolve_precision("fp16", cpu)
    with pytest.raises(DpsrganError, match="precision must be one of"):
        resolve_precision("int8", cpu)


def test_resolve_model_loads_checkpoints_and_names_unknown_specs(tmp_path, generator):
    path = save_generator(generator, tmp_path / "g.pt", seed=0)
    loaded = resolve_model(str(path), "cpu")
    lr = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(upscale_tensor(lr, loaded, device="cpu"), upscale_tensor(lr, generator, device="cpu"))
    with pytest.raises(DpsrganError, match="no such checkpoint file"):
        resolve_model(str(tmp_path / "missing.pt"), "cpu")
    with pytest.raises(DpsrganError, match="no such checkpoint file"):
        resolve_model(str(tmp_path), "cpu")  # a folder is not a checkpoint


def test_generic_module_scale_is_measured():
    """A model without ``scale``/``receptive_radius`` attributes still works (probe + default pad)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    out = upscale(smooth_rgb(10, 6), model, tile=4, device="cpu", precision="fp32")
    assert out.shape == (20, 12, 3)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_matches_cpu(generator, precision):
    rgb = smooth_rgb(40, 40, seed=2)
    cpu = upscale(rgb, generator, device="cpu", precision="fp32")
    gpu = upscale(rgb, generator, tile=16, device="cuda", precision=precision)
    assert _psnr(gpu, cpu) > 40


@pytest.mark.gpu
@needs_cuda
def test_cuda_auto_precision_is_bf16_on_bf16_gpus():
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == expected


@pytest.mark.gpu
@needs_cuda
def test_cuda_out_of_memory_halves_the_tile_and_retries(caplog):
    """The default generator untiled on a 1536² input needs several GiB (its full-resolution
    part runs in bands, so 512² would fit); capped at ~1.5 GiB the engine must halve the tile
    until it fits and still produce the exact tiled result."""
    torch.manual_seed(0)
    model = dpsrgan.Generator().eval()
    lr = torch.rand(1, 3, 1536, 1536)
    reference = upscale_tensor(lr, model, 128, device="cuda", precision="fp32")
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(1.5 * 2**30 / total)
    try:
        with caplog.at_level(logging.WARNING, logger="dpsrgan.inference"):
            sr = upscale_tensor(lr, model, device="cuda", precision="fp32")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    retries = [r.getMessage() for r in caplog.records if "out of memory" in r.getMessage()]
    assert retries and retries[0] == "CUDA out of memory; retrying with --tile 768", retries
    assert (sr - reference).abs().max().item() <= 1 / 255
