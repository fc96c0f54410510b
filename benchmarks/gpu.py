"""The GPU figures, for one lent GPU and a few minutes (about 2-3 on an H100/H200).

Run: ``python benchmarks/gpu.py [--quick] [--no-compile] [--device cuda]``
Writes ``$OUT/gpu.json`` and ``$OUT/gpu.md`` when ``OUT`` is set (or ``--out-dir``) and prints
the Markdown. Needs only torch, numpy and this repository (not installed: the repo root is put
on ``sys.path``); no Ray, MLflow or scikit-image. Safe to run once: it writes nothing else,
holds no state, and every row is independent of the others' failures. ``--device cpu
--quick`` runs the same code on a CPU in about a minute (how it is tested).

Measured, each as a ratio within the run:

1. Inference ×4, output MP/s and GFLOP/s (the generator's conv FLOPs) per path: the SRResNet-16
   baseline (eager fp32 NCHW, cudnn.benchmark off: no tuning at all), the generator in fp32,
   channels-last, bf16 and fp16 autocast, the inference form (:mod:`dpsrgan.inference.fast`)
   in bf16/fp16, ``torch.compile`` of it (bf16; compile time reported), the default
   ``upscale_tensor`` (``auto`` precision; it prepares the model on every call, about 10 ms on
   an H200) and a prepared ``Upscaler`` (prepared once, as the CLI and serving do). Against the same run's ``torch.mm`` rates (fp32
   without TF32, TF32, bf16, fp16). "fp32" convs may use TF32: torch's default for cuDNN.
2. Tiled 1000² → 4000² (16 MP) with ``upscale_tensor`` on the GPU: seconds and peak GPU memory
   (``max_memory_allocated``) for the default tile, untiled, and per precision.
3. Training samples/s of :func:`~dpsrgan.training.steps.pretrain_step` and
   :func:`~dpsrgan.training.steps.gan_step` (HR 128, VGG19 perceptual loss with random weights:
   same cost as ImageNet's), fp32 vs bf16 autocast, channels-last, timed as
   ``benchmarks/train_throughput.py`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.baselines import conv_flops_per_lr_pixel, matmul_rate, srresnet16  # noqa: E402
from benchmarks.common import cpu_model, interleaved, summary  # noqa: E402
from dpsrgan.inference import upscale_tensor  # noqa: E402
from dpsrgan.inference.engine import Upscaler  # noqa: E402
from dpsrgan.inference.fast import fast_inference_model  # noqa: E402
from dpsrgan.inference.runtime import resolve_precision  # noqa: E402
from dpsrgan.models.generator import Generator  # noqa: E402
from dpsrgan.upscale_defaults import DEFAULT_TILE  # noqa: E402

CL = torch.channels_last
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def photo_like(side: int, device: torch.device, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Smooth gradients and blobs plus mild noise in [0, 1] (no image files needed)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    channels = []
    for _ in range(3 * batch):
        a, b, c, cx, cy = torch.rand(5, generator=g)
        blob = torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.05)
        channels.append(0.5 + 0.25 * ((a - 0.5) * x + (b - 0.5) * y) + 0.3 * (c - 0.5) * blob)
    image = torch.stack(channels).view(batch, 3, side, side)
    image = image + 0.02 * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1).to(device)


@contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """cuDNN autotuning on or off for a block (a plain attribute: ``cudnn.flags`` would also
    reset the TF32 settings)."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def matmul_rates(device: torch.device, n: int, repeats: int) -> dict[str, float]:
    rates = {}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device.type == "cuda":
        dtypes["fp16"] = torch.float16
    for name, dtype in dtypes.items():
        rates[name] = max(matmul_rate(dtype, n, repeats, str(device)))
    if device.type == "cuda":
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            rates["tf32"] = max(matmul_rate(torch.float32, n, repeats, str(device)))
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
    return rates


def compiled(module: torch.nn.Module, lr: torch.Tensor, dtype: torch.dtype) -> tuple[Callable[[], object], float]:
    graph = torch.compile(module, dynamic=False)

    def call() -> object:
        with torch.inference_mode(), torch.autocast(lr.device.type, dtype):
            return graph(lr)

    start = time.perf_counter()
    call()
    synchronizer(lr.device)()
    return call, time.perf_counter() - start


def inference_section(device: torch.device, side: int, batch: int, repeats: int, with_compile: bool,
                      n_mm: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = Generator().eval().to(device)
    baseline = srresnet16().to(device)
    lr = photo_like(side, device, batch)
    lr_cl = lr.contiguous(memory_format=CL)
    channels_last = Generator().eval().to(device, memory_format=CL)
    channels_last.load_state_dict(model.state_dict())
    fast = fast_inference_model(channels_last).to(memory_format=CL)
    reduced = ("bf16", "fp16") if device.type == "cuda" else ("bf16",)

    def infer(module: torch.nn.Module, x: torch.Tensor, precision: str, tuned: bool = True) -> Callable[[], object]:
        def call() -> object:
            with cudnn_benchmark(tuned), torch.inference_mode(), \
                    torch.autocast(device.type, DTYPES[precision] or torch.bfloat16, enabled=precision != "fp32"):
                return module(x)
        return call

    paths: dict[str, Callable[[], object]] = {
        "srresnet16_fp32_eager": infer(baseline, lr, "fp32", tuned=False),
        "fp32_eager": infer(model, lr, "fp32", tuned=False),
        "fp32_channels_last": infer(channels_last, lr_cl, "fp32"),
    }
    for precision in reduced:
        paths[f"{precision}_channels_last"] = infer(channels_last, lr_cl, precision)
    paths["fast_fp32"] = infer(fast, lr_cl, "fp32")
    for precision in reduced:
        paths[f"fast_{precision}"] = infer(fast, lr_cl, precision)
    paths["upscale_default"] = lambda: upscale_tensor(lr, channels_last, device=device.type)
    prepared = Upscaler.prepare(channels_last, device=device.type)  # what the CLI and serving run per image
    paths["upscaler_prepared"] = lambda: prepared.upscale_tensor(lr)
    extra: dict[str, Any] = {}
    if with_compile:
        try:
            call, seconds = compiled(fast, lr_cl, torch.bfloat16)
            paths["compiled_bf16"] = call
            with torch.inference_mode():
                error = (call().float() - model(lr)).abs().max().item()
            extra["compiled_bf16"] = {"compile_s": seconds, "max_abs_diff_vs_fp32": error}
        except Exception as error:  # noqa: BLE001 - an optional row: report why it is missing
            extra["compiled_bf16"] = {"error": f"{type(error).__name__}: {error}"[:300]}
    seconds = interleaved(paths, repeats, warmup=2, sync=synchronizer(device))
    matmul = matmul_rates(device, n_mm, repeats)
    per_call = {
        "generator": conv_flops_per_lr_pixel(model, device=device) * side * side * batch,
        "srresnet16": conv_flops_per_lr_pixel(baseline, device=device) * side * side * batch,
    }
    out_mp = batch * (4 * side) ** 2 / 1e6
    rows: dict[str, Any] = {}
    for name, times in seconds.items():
        stats = summary(times)
        work = per_call["srresnet16" if name.startswith("srresnet") else "generator"]
        gflops = work / stats["median_s"] / 1e9
        rows[name] = {**stats, "output_mp_per_s": out_mp / stats["median_s"], "gflop_per_s": gflops,
                      "of_bf16_matmul": gflops / matmul["bf16"], **extra.get(name, {})}
    base = rows["srresnet16_fp32_eager"]["output_mp_per_s"]
    for row in rows.values():
        row["vs_baseline"] = row["output_mp_per_s"] / base
    for name, info in extra.items():
        rows.setdefault(name, info)
    return {
        "lr": [batch, side, side], "output_megapixels": out_mp, "matmul_tflop_per_s": {k: v / 1e3 for k, v in matmul.items()},
        "matmul_n": n_mm, "gflop_per_call": {k: v / 1e9 for k, v in per_call.items()},
        "default_precision": resolve_precision("auto", device), "rows": rows,
    }


def tiled_section(device: torch.device, side: int) -> dict[str, Any]:
    """16 MP out (side 1000): seconds and peak GPU memory per setting, input and output on the GPU."""
    torch.manual_seed(0)
    model = Generator().eval().to(device)
    lr = photo_like(side, device)
    settings = {"default": {}, "untiled": {"tile": 0}, "fp32": {"precision": "fp32"}}
    if device.type == "cuda":
        settings["fp16"] = {"precision": "fp16"}
    sync = synchronizer(device)
    rows = {}
    for name, kwargs in settings.items():
        upscale_tensor(lr[..., : side // 4, : side // 4], model, device=device.type, **{"tile": DEFAULT_TILE, **kwargs})
        sync()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = upscale_tensor(lr, model, device=device.type, **{"tile": DEFAULT_TILE, **kwargs})
        sync()
        seconds = time.perf_counter() - start
        rows[name] = {
            "settings": {"tile": DEFAULT_TILE, "precision": "auto", **kwargs},
            "seconds": seconds,
            "output_mp_per_s": out.shape[-1] * out.shape[-2] / 1e6 / seconds,
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
        }
        del out
    return {"input": [side, side], "rows": rows}


def training_section(device: torch.device, batch: int, steps: int, warmup: int) -> dict[str, Any]:
    """Samples/s of the pure step functions on one batch kept on the device (no data loading),
    timed by :func:`benchmarks.train_throughput.eager_rates` (one window per precision)."""
    from benchmarks.train_throughput import STAGES, eager_rates

    rows: dict[str, Any] = {}
    with cudnn_benchmark(True):
        for stage in STAGES:
            rates = eager_rates(stage, ("fp32", "bf16"), batch, steps, device, repeats=1, warmup=warmup)
            rows.update({f"{stage}_{precision}": {"samples_per_s": rate} for precision, rate in rates.items()})
    for stage in STAGES:
        rows[f"{stage}_bf16_speedup"] = rows[f"{stage}_bf16"]["samples_per_s"] / rows[f"{stage}_fp32"]["samples_per_s"]
    return {"batch": batch, "hr": 128, "timed_steps": steps, "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# GPU benchmarks: {results['device']}", "",
             f"`{results['command']}` — torch {results['torch']}, {results['elapsed_s']:.0f} s.", ""]
    inference = results.get("inference", {})
    if "rows" in inference:
        mm = ", ".join(f"{k} {v:.1f}" for k, v in inference["matmul_tflop_per_s"].items())
        b, s, _ = inference["lr"]
        lines += [
            f"## Inference ×4 ({b}×{s}² LR → {inference['output_megapixels']:.1f} MP per call)", "",
            f"torch.mm {inference['matmul_n']}² TFLOP/s: {mm}. Generator {inference['gflop_per_call']['generator']:.0f} "
            f"GFLOP per call. `auto` precision: {inference['default_precision']}.", "",
            "| path | ms/call | output MP/s | TFLOP/s | of bf16 mm | vs baseline |", "|---|---|---|---|---|---|",
        ]
        for name, row in inference["rows"].items():
            if "median_s" not in row:
                lines.append(f"| {name} | {row.get('error', 'not run')} | | | | |")
                continue
            note = f" (compile {row['compile_s']:.0f} s)" if "compile_s" in row else ""
            lines.append(f"| {name}{note} | {1e3 * row['median_s']:.1f} | {row['output_mp_per_s']:.2f} | "
                         f"{row['gflop_per_s'] / 1e3:.2f} | {row['of_bf16_matmul']:.0%} | {row['vs_baseline']:.2f}× |")
    tiled = results.get("tiled", {})
    if "rows" in tiled:
        side = tiled["input"][0]
        lines += ["", f"## Tiled {side}² → {4 * side}² (upscale_tensor on the GPU)", "",
                  "| run | settings | seconds | output MP/s | peak GPU GB |", "|---|---|---|---|---|"]
        for name, row in tiled["rows"].items():
            peak = "–" if row["peak_gpu_gb"] is None else f"{row['peak_gpu_gb']:.2f}"
            lines.append(f"| {name} | {row['settings']} | {row['seconds']:.2f} | {row['output_mp_per_s']:.1f} | {peak} |")
    training = results.get("training", {})
    if "rows" in training:
        rows = training["rows"]
        lines += ["", f"## Training samples/s (batch {training['batch']}, HR 128, {training['timed_steps']} steps)", "",
                  "| stage | fp32 | bf16 autocast | bf16 speed-up |", "|---|---|---|---|"]
        for stage in ("pretrain", "gan"):
            lines.append(f"| {stage} | {rows[f'{stage}_fp32']['samples_per_s']:.1f} | "
                         f"{rows[f'{stage}_bf16']['samples_per_s']:.1f} | {rows[f'{stage}_bf16_speedup']:.2f}× |")
    for name in ("inference", "tiled", "training"):
        if "error" in results.get(name, {}):
            lines += ["", f"## {name}: failed", "", "```", results[name]["error"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="small sizes (a CPU smoke run of this script)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu.py: no CUDA device visible; use --device cpu --quick for a smoke run", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({cpu_model()})",
        "torch": torch.__version__,
        "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    sizes = ({"side": 32, "batch": 1, "repeats": 2, "n_mm": 512, "tiled": 96, "train_batch": 2, "steps": 1, "warmup": 1}
             if args.quick else
             {"side": 256, "batch": 4, "repeats": 10, "n_mm": 8192, "tiled": 1000, "train_batch": 16, "steps": 10,
              "warmup": 3})
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "inference": lambda: inference_section(device, sizes["side"], sizes["batch"], sizes["repeats"],
                                               not args.no_compile, sizes["n_mm"]),
        "tiled": lambda: tiled_section(device, sizes["tiled"]),
        "training": lambda: training_section(device, sizes["train_batch"], sizes["steps"], sizes["warmup"]),
    }
    failed = False
    for name, run in sections.items():
        print(f"gpu.py: {name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = run()
        except Exception:  # noqa: BLE001 - every section is reported; the exit code says one failed
            failed = True
            results[name] = {"error": traceback.format_exc()[-1500:]}
            print(results[name]["error"], file=sys.stderr)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results["elapsed_s"] = time.perf_counter() - started
    text = markdown(results)
    print(text)
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "gpu.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (args.out_dir / "gpu.md").write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
