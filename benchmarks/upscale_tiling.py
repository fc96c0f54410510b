"""Tiling exactness and peak memory of ``dpsrgan upscale`` with the default generator.

Run:
  ``python benchmarks/upscale_tiling.py exactness``  — max |tiled − untiled| on a 96×96 input
  (default Generator: 64 channels, 16 blocks, random init, eval mode, fp32) for several
  tile/pad settings, and bf16-vs-fp32 PSNR.
  ``python benchmarks/upscale_tiling.py memory [--size 1000] [--tile 256]`` — peak RSS of the
  real CLI upscaling a SIZE×SIZE PNG to 4·SIZE (``/usr/bin/time -v``), untimed in tests.
  ``python benchmarks/upscale_tiling.py gpu`` — on CUDA: exactness, then seconds and peak GPU
  memory of a 1000×1000 → 4000×4000 upscale per precision and tile size.

A random-init generator has a shorter effective reach than a trained one, so the exact setting
(pad = receptive radius 56) is the one to rely on; the smaller pads show the trade-off only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data, transform

from dpsrgan.checkpoint import save_generator
from dpsrgan.inference import upscale_tensor
from dpsrgan.models.generator import Generator


def default_generator() -> Generator:
    torch.manual_seed(0)
    return Generator().eval()


def photo(size: int) -> np.ndarray:
    """A ``size``×``size`` uint8 RGB crop of scikit-image's astronaut, resized (offline)."""
    image = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return (image * 255).round().astype(np.uint8)


def exactness(device: str = "cpu") -> None:
    model = default_generator()
    lr = torch.from_numpy(photo(96)).permute(2, 0, 1)[None].float() / 255
    whole = upscale_tensor(lr, model, device=device, precision="fp32")
    print(f"receptive field {model.receptive_field} LR px, radius {model.receptive_radius}")
    print("tile  pad  max|tiled-untiled|  (x255)")
    for tile, pad in [(32, 56), (48, 56), (32, 28), (32, 16), (32, 8), (32, 0)]:
        tiled = upscale_tensor(lr, model, tile, pad, device=device, precision="fp32")
        diff = (tiled - whole).abs().max().item()
        print(f"{tile:4d} {pad:4d}  {diff:.3e}  ({diff * 255:.4f})")
    for precision in ("bf16", "fp16") if device == "cuda" else ("bf16",):
        reduced = upscale_tensor(lr, model, device=device, precision=precision)
        mse = ((reduced * 255).round() - (whole * 255).round()).pow(2).mean().item()
        print(f"{precision} vs fp32 PSNR: {10 * np.log10(255**2 / mse):.1f} dB ({device} autocast)")


def gpu() -> None:
    """CUDA: exactness, then time and peak GPU memory of 1000² → 4000² (one warm-up each)."""
    exactness("cuda")
    model = default_generator()
    lr = torch.from_numpy(photo(1000)).permute(2, 0, 1)[None].float() / 255
    print(torch.cuda.get_device_name(0))
    for precision in ("fp32", "bf16", "fp16"):
        for tile in (0, 512, 256):
            upscale_tensor(lr[..., :300, :300], model, tile, device="cuda", precision=precision)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            upscale_tensor(lr, model, tile, device="cuda", precision=precision)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"cuda {precision} tile {tile:3d}: {seconds:.2f} s, peak GPU memory {peak:.2f} GiB")


def memory(size: int, tile: int, precision: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.fromarray(photo(size)).save(folder / "in.png")
        checkpoint = save_generator(default_generator(), folder / "g.pt")
        command = [
            "/usr/bin/time", "-v", sys.executable, "-m", "dpsrgan.cli", "upscale", str(folder / "in.png"),
            "-o", str(folder / "out.png"), "--model", str(checkpoint), "--device", "cpu",
            "--precision", precision, "--tile", str(tile),
        ]
        print(" ".join(command[2:]).replace(tmp, "$TMP"))
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
        with Image.open(folder / "out.png") as out:
            out_size = out.size
    print(f"{size}x{size} -> {out_size[0]}x{out_size[1]}, tile {tile}, {precision}: "
          f"peak RSS {rss_kb / 1024:.0f} MiB, wall {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("exactness")
    sub.add_parser("gpu")
    mem = sub.add_parser("memory")
    mem.add_argument("--size", type=int, default=1000)
    mem.add_argument("--tile", type=int, default=256)
    mem.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    if args.what == "exactness":
        exactness()
    elif args.what == "gpu":
        gpu()
    else:
        memory(args.size, args.tile, args.precision)


if __name__ == "__main__":
    main()
