"""A 16-megapixel output through the real CLI: ``dpsrgan upscale`` of a 1000×1000 photograph
to 4000×4000, in a child process, for its wall time and peak resident memory.

Peak memory is the child's own high-water mark (``ru_maxrss`` from ``os.wait4`` on that child),
so it covers everything the command does: Python and torch start-up, PNG decode, the tiled
forward pass, the 16-MP output and its PNG encode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image
from skimage import data

from dpsrgan.checkpoint import save_generator
from dpsrgan.models.generator import Generator

SIDE = 1000
"""LR side: 1000×1000 → 4000×4000, 16 MP out."""


def write_input(path: Path, side: int = SIDE) -> Path:
    """A ``side``×``side`` PNG made from scikit-image's astronaut photograph (bicubic resize)."""
    photo = Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.BICUBIC)
    photo.save(path)
    return path


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
    source = write_input(workdir / "input.png", side)
    rows = {}
    for name, extra in variants.items():
        target = workdir / f"{name}.png"
        rows[name] = run_cli(checkpoint, source, target, extra)
        target.unlink()
    return {"input": [side, side], "rows": rows}

