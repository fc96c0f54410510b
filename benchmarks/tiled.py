"""Tiled upscaling on the CPU: a 16-megapixel output through the real CLI (wall time, peak
memory), and how far tiled output is from whole-image output for a given tile pad.

Run:
  ``python -m benchmarks.tiled memory [--size 1000] [--tile T] [--precision P] [--checkpoint G.pt]``
  — ``dpsrgan upscale`` of a SIZE×SIZE photograph to 4·SIZE (the CLI's defaults unless given).
  ``python -m benchmarks.tiled exactness [--device cuda] [--checkpoint G.pt]`` — max
  |tiled − untiled| on a 96×96 input for several tile/pad settings, fp32.
(``python -m benchmarks`` runs :func:`tiled_rows` as its ``tiled`` section; the GPU's tiled
figures come from ``benchmarks/gpu.py``.) Prints one JSON object.

Peak memory is the child's own high-water mark (``ru_maxrss`` from ``os.wait4`` on that child),
so it covers everything the command does: Python and torch start-up, PNG decode, the tiled
forward pass, the 16-MP output and its PNG encode.

Without ``--checkpoint`` the generator has random weights (seed 0). Its effective reach is
shorter than a trained one's, so only the exact setting (pad = receptive radius, 56) is one to
rely on; the smaller pads show the trade-off only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from skimage import data

from benchmarks.inference import benchmark_generator, to_tensor
from dpsrgan.checkpoint import save_generator
from dpsrgan.inference import upscale_tensor
from dpsrgan.models.generator import Generator

SIDE = 1000
"""LR side: 1000×1000 → 4000×4000, 16 MP out."""
EXACTNESS_SIDE = 96
EXACTNESS_SETTINGS = ((32, 56), (48, 56), (32, 28), (32, 16), (32, 8), (32, 0))
"""(tile, pad) pairs in LR pixels: the receptive radius (56) and below it."""


def astronaut(side: int) -> Image.Image:
    """scikit-image's astronaut photograph resized (bicubic) to ``side``×``side``."""
    return Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.BICUBIC)


def run_cli(checkpoint: Path, source: Path, target: Path, extra: list[str]) -> dict[str, Any]:
    """Run ``dpsrgan upscale`` once; wall and CPU seconds, peak RSS (MB) and the settings it used."""
    command = [sys.executable, "-m", "dpsrgan.cli", "upscale", str(source), "-o", str(target), "--model",
               str(checkpoint), "--device", "cpu", "--no-progress", *extra]
    log = target.with_suffix(".log")
    with log.open("w") as handle:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code  # reaped by wait4 above
    output = log.read_text()
    if code != 0:
        raise RuntimeError(f"dpsrgan upscale exited {code}: {output[-2000:]}")
    with Image.open(target) as image:
        size = image.size
    out_mp = size[0] * size[1] / 1e6
    return {
        "args": extra,
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the child's own CPU time: what outside load cannot inflate much
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "output_size": list(size),
        "output_mp_per_s": out_mp / seconds,
        "settings": next((line.split("upscaling ", 1)[1] for line in output.splitlines() if "upscaling " in line), ""),
    }


def tiled_rows(model: Generator, workdir: Path, variants: dict[str, list[str]], side: int = SIDE) -> dict[str, Any]:
    """One CLI run per variant (name → extra CLI args) on the same input and checkpoint."""
    checkpoint = save_generator(model, workdir / "generator.pt", purpose="benchmark")
    source = workdir / "input.png"
    astronaut(side).save(source)
    rows = {}
    for name, extra in variants.items():
        target = workdir / f"{name}.png"
        rows[name] = run_cli(checkpoint, source, target, extra)
        target.unlink()
    return {"input": [side, side], "rows": rows}


def exactness_rows(model: Generator, device: str = "cpu") -> dict[str, Any]:
    """Max |tiled − untiled| (0-1 scale) per (tile, pad) on a 96×96 photograph, fp32."""
    lr = to_tensor(np.array(astronaut(EXACTNESS_SIDE)))
    whole = upscale_tensor(lr, model, device=device, precision="fp32")
    rows = []
    for tile, pad in EXACTNESS_SETTINGS:
        tiled = upscale_tensor(lr, model, tile, pad, device=device, precision="fp32")
        rows.append({"tile": tile, "pad": pad, "max_abs_diff": (tiled - whole).abs().max().item()})
    return {
        "input": [EXACTNESS_SIDE, EXACTNESS_SIDE],
        "device": device,
        "receptive_field": model.receptive_field,
        "receptive_radius": model.receptive_radius,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tiled", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained generator; default random init")
    sub = parser.add_subparsers(dest="what", required=True)
    memory = sub.add_parser("memory", help="peak RSS and time of dpsrgan upscale, SIZE² → (4·SIZE)²")
    memory.add_argument("--size", type=int, default=SIDE)
    memory.add_argument("--tile", type=int, default=None, help="--tile for the CLI (default: the CLI's)")
    memory.add_argument("--precision", default=None, help="--precision for the CLI (default: the CLI's)")
    exact = sub.add_parser("exactness", help="max |tiled - untiled| per tile pad")
    exact.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args(argv)
    model, described = benchmark_generator(args.checkpoint)
    result: dict[str, Any] = {"model": described}
    if args.what == "exactness":
        result["exactness"] = exactness_rows(model, args.device)
    else:
        extra = [*(["--tile", str(args.tile)] if args.tile is not None else []),
                 *(["--precision", args.precision] if args.precision else [])]
        with tempfile.TemporaryDirectory(prefix="dpsrgan-bench-tiled-") as tmp:
            result["tiled"] = tiled_rows(model, Path(tmp), {"run": extra}, args.size)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
