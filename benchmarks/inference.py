"""Generator inference on the CPU: output megapixels/s per execution path, achieved GFLOP/s
against the same run's matmul rates, and bf16's effect on PSNR on real photographs.

All paths run the same weights on the same LR input, timed round-robin (see
:func:`benchmarks.common.interleaved`). GFLOP/s count the *generator's* conv work
(:func:`benchmarks.baselines.conv_flops_per_lr_pixel`), whatever a path computes internally, so
the numbers compare useful work per second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage import data
from torch import nn

from benchmarks.baselines import conv_flops_per_lr_pixel, matmul_rate, plain_forward, srresnet16
from benchmarks.common import interleaved, summary
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.inference import upscale
from dpsrgan.inference.engine import Planes, Upscaler
from dpsrgan.inference.fast import fast_inference_model
from dpsrgan.inference.runtime import resolve_precision
from dpsrgan.metrics import psnr
from dpsrgan.models.generator import Generator

logger = logging.getLogger(__name__)

CL = torch.channels_last


def photographs() -> dict[str, np.ndarray]:
    """scikit-image's colour photographs (bundled, no download), uint8 H×W×3."""
    return {
        "astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
        "rocket": data.rocket(), "immunohistochemistry": data.immunohistochemistry(),
    }


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)


def benchmark_generator(checkpoint: Path | None) -> tuple[Generator, str]:
    """The generator every row runs, and a line saying which it is: a checkpoint, or the
    paper's architecture with random weights (seed 0). Speed does not depend on the weights;
    the bf16 PSNR rows do (see :func:`quality`)."""
    if checkpoint is not None:
        from dpsrgan.checkpoint import load_generator

        return load_generator(checkpoint).eval(), f"checkpoint {checkpoint}"
    torch.manual_seed(0)
    return Generator().eval(), "random init (seed 0): no trained weights on this machine"


def compiled(model: nn.Module, lr: torch.Tensor) -> tuple[Callable[[], torch.Tensor], float]:
    """``torch.compile`` (inductor, weights frozen as constants) of ``model`` under bf16
    autocast for ``lr``'s shape; returns the call and the compile time (first call), seconds."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch(freezing=True):
        graph = torch.compile(model, dynamic=False)

        def call() -> torch.Tensor:
            with inductor_config.patch(freezing=True), torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
                return graph(lr)

        start = time.perf_counter()
        call()
        return call, time.perf_counter() - start


def inference_rows(
    model: Generator, side: int, repeats: int, with_compile: bool,
    extra_paths: Callable[[np.ndarray], dict[str, Callable[[], object]]] | None = None,
) -> dict[str, Any]:
    """Time every path on one ``side``×``side`` LR crop of a photograph; see the module docstring.
    ``extra_paths(photo)`` adds more calls on the same uint8 LR photo (the exported backends)."""
    photo = bicubic_downscale(centre_crop(photographs()["astronaut"], 4 * side), 4)
    lr = to_tensor(photo)
    lr_cl = lr.contiguous(memory_format=CL)
    baseline = srresnet16()
    plain = Generator.from_config(model.config)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    channels_last = Generator.from_config(model.config).to(memory_format=CL)
    channels_last.load_state_dict(model.state_dict())
    channels_last.eval()
    fast = fast_inference_model(channels_last).to(memory_format=CL)
    prepared = Upscaler.prepare(channels_last, device="cpu")  # once, as the CLI and serving do

    def infer(module: nn.Module, bf16: bool) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return module(lr_cl)
        return call

    paths: dict[str, Callable[[], object]] = {
        "srresnet16_fp32_eager": lambda: plain_forward(baseline, lr),
        "fp32_eager": lambda: plain_forward(plain, lr),
        "fp32_channels_last": infer(channels_last, False),
        "bf16_channels_last": infer(channels_last, True),
        "fast_fp32": infer(fast, False),
        "fast_bf16": infer(fast, True),
        "upscale_default": lambda: upscale(photo, model),
        "upscaler_prepared": lambda: prepared.upscale_planes(Planes(photo)),
        **(extra_paths(photo) if extra_paths else {}),
    }
    extra: dict[str, Any] = {}
    if with_compile:
        try:
            paths["compiled_bf16"], compile_s = compiled(fast, lr_cl)
            with torch.inference_mode():
                reference = plain(lr)
            error = (paths["compiled_bf16"]().float() - reference).abs().max().item()
            extra["compiled_bf16"] = {"compile_s": compile_s, "max_abs_diff_vs_fp32": error}
        except Exception as error:  # noqa: BLE001 - an optional row: report why it is missing
            logger.warning("torch.compile failed: %s", error)
            extra["compiled_bf16"] = {"error": f"{type(error).__name__}: {error}"[:300]}
    rates = {"fp32": [], "bf16": []}
    paths["matmul_fp32"] = lambda: rates["fp32"].extend(matmul_rate(torch.float32, repeats=1))
    paths["matmul_bf16"] = lambda: rates["bf16"].extend(matmul_rate(torch.bfloat16, repeats=1))
    seconds = interleaved(paths, repeats)
    flops = {
        "generator": conv_flops_per_lr_pixel(model) * side * side,
        "srresnet16": conv_flops_per_lr_pixel(baseline) * side * side,
    }
    matmul = {dtype: float(np.median(values[-repeats:])) for dtype, values in rates.items()}
    matmul_best = {dtype: float(max(values[-repeats:])) for dtype, values in rates.items()}
    out_mp = (model.scale * side) ** 2 / 1e6
    rows = {}
    for name, times in seconds.items():
        if name.startswith("matmul"):
            continue
        stats = summary(times)
        work = flops["srresnet16" if name.startswith("srresnet") else "generator"]
        rows[name] = {
            **stats,
            "output_mp_per_s": out_mp / stats["median_s"],
            "gflop_per_s": work / stats["median_s"] / 1e9,
            **extra.get(name, {}),
        }
    base = rows["srresnet16_fp32_eager"]["output_mp_per_s"]
    for row in rows.values():
        row["vs_baseline"] = row["output_mp_per_s"] / base
        row["of_bf16_matmul"] = row["gflop_per_s"] / matmul["bf16"]
    for name, info in extra.items():
        rows.setdefault(name, info)
    return {
        "lr_side": side,
        "output_megapixels": out_mp,
        "gflop_per_call": {k: v / 1e9 for k, v in flops.items()},
        "matmul_gflop_per_s": matmul,
        "matmul_best_gflop_per_s": matmul_best,
        "matmul_n": 2048,
        "default_precision": resolve_precision("auto", torch.device("cpu")),
        "rows": rows,
    }


def quality(model: Generator, names: list[str], hr_side: int) -> dict[str, Any]:
    """PSNR (Y, border 4) against the HR photograph of the fp32 path and of the default path,
    their difference (ΔPSNR), and the default output's own PSNR against the fp32 output (how
    far bf16 rounding moves it).

    Only a trained model's ΔPSNR means anything: random weights make a deep residual stack that
    amplifies rounding, and their output is no super-resolution to lose quality from. Use
    ``--checkpoint`` (``python -m benchmarks.pretrained`` makes a photo-pretrained one).
    """
    photos = photographs()
    per_image = {}
    for name in names:
        hr = centre_crop(photos[name], hr_side)
        lr = bicubic_downscale(hr, model.scale)
        fp32 = upscale(lr, model, device="cpu", precision="fp32")
        default = upscale(lr, model, device="cpu")
        per_image[name] = {
            "psnr_fp32": psnr(fp32, hr, model.scale),
            "psnr_default": psnr(default, hr, model.scale),
            "psnr_default_vs_fp32": psnr(default, fp32, model.scale),
        }
    mean = {key: float(np.mean([row[key] for row in per_image.values()])) for key in next(iter(per_image.values()))}
    deltas = [row["psnr_default"] - row["psnr_fp32"] for row in per_image.values()]
    return {
        "hr_side": hr_side,
        "images": per_image,
        "mean": mean,
        "delta_db": mean["psnr_default"] - mean["psnr_fp32"],
        "worst_image_delta_db": max(deltas, key=abs),
        "worst_psnr_default_vs_fp32": min(row["psnr_default_vs_fp32"] for row in per_image.values()),
        "default_precision": resolve_precision("auto", torch.device("cpu")),
    }
