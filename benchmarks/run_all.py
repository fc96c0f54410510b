"""Run every CPU benchmark and write ``benchmarks/results/<machine>.json`` and ``<machine>.md``.

Run: ``python -m benchmarks [--quick] [--machine NAME] [--checkpoint G.pt] [--sections ...]``

Sections (each a ratio within this run, so a loaded machine shifts them less than absolute
numbers; the load average is recorded with them):

- ``inference``: generator ×4 output MP/s per path (fp32, channels-last, bf16, the inference
  form, optionally ``torch.compile``, and the default ``dpsrgan.upscale``) against the
  SRResNet-16 eager-fp32 baseline and the same run's matmul rates; bf16's PSNR effect on
  photographs (:mod:`benchmarks.inference`); and the exported model run by ONNX Runtime and
  OpenVINO (fp32, bf16, int8) in the same timing, with ΔPSNR-Y against torch fp32
  (:mod:`benchmarks.exported`).
- ``tiled``: ``dpsrgan upscale`` of 1000² → 4000² in a child process: time and peak RSS.
- ``training``: pretrain and GAN step samples/s, fp32 vs bf16, and Ray Train (1 worker) vs the
  same steps without Ray.
- ``degrade``: degrade-stage images/s with 1 and 2 processes.

A section that fails is recorded with its error and the others still run; the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SECTIONS = ("inference", "tiled", "training", "degrade")

logger = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Sizes:
    """How much to measure: the full run (about 6-8 min on a quiet 2-core CPU) or ``--quick``
    (about 2 min: smaller samples, no compile, no Ray Train rows — Ray's start-up alone is a
    minute on 2 CPUs)."""

    lr_side: int
    repeats: int
    compile: bool
    photos: tuple[str, ...]
    hr_side: int
    train_batch: int
    train_steps: int
    train_repeats: int
    ray: bool
    degrade_images: int
    degrade_repeats: int
    tiled_variants: dict[str, list[str]] = field(default_factory=dict)


FULL = Sizes(
    lr_side=96, repeats=5, compile=True, photos=("astronaut", "coffee", "chelsea", "rocket"), hr_side=256,
    train_batch=8, train_steps=3, train_repeats=2, ray=True, degrade_images=2000, degrade_repeats=2,
    tiled_variants={"default": [], "tile256": ["--tile", "256"], "fp32": ["--precision", "fp32"]},
)
QUICK = Sizes(
    lr_side=64, repeats=3, compile=False, photos=("astronaut", "coffee"), hr_side=192,
    train_batch=4, train_steps=2, train_repeats=1, ray=False, degrade_images=600, degrade_repeats=1,
    tiled_variants={"default": []},
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: fewer repeats, smaller samples")
    parser.add_argument("--machine", default=None, help="results file name (default: CPU model and core count)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help=f"default {RESULTS_DIR}")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a trained generator (save_generator format) for the bf16 PSNR rows; default random init")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these (the results files then hold only these: every ratio is same-run)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (full mode)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Train rows")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads here and in child processes (default: torch's, all CPUs); 1 keeps "
                        "ratios stable on a busy machine, where two threads mostly wait for each other")
    return parser.parse_args(argv)


def run_section(name: str, sizes: Sizes, model: Any, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One section's results (the imports are here: each section pulls in different libraries)."""
    match name:
        case "inference":
            from benchmarks.exported import backend_quality, exported_upscalers, timed_paths
            from benchmarks.inference import centre_crop, inference_rows, photographs, quality
            from dpsrgan.degradation import bicubic_downscale
            from dpsrgan.inference import upscale

            heldout = {name: centre_crop(photographs()[name], sizes.hr_side) for name in sizes.photos}
            upscalers, backends = exported_upscalers(model, heldout, workdir)
            rows = inference_rows(model, sizes.lr_side, sizes.repeats, sizes.compile and not args.no_compile,
                                  extra_paths=lambda photo: timed_paths(upscalers, photo))
            lrs = {name: bicubic_downscale(hr, model.scale) for name, hr in heldout.items()}
            torch_outputs = {
                "fp32_eager": {name: upscale(lr, model, device="cpu", precision="fp32") for name, lr in lrs.items()},
                "upscaler_prepared": {name: upscale(lr, model, device="cpu") for name, lr in lrs.items()},
            }
            backends["quality"] = backend_quality(upscalers, torch_outputs, heldout, model.scale)
            return {"inference": rows, "quality": quality(model, list(sizes.photos), sizes.hr_side), "backends": backends}
        case "tiled":
            from benchmarks.tiled import tiled_rows

            return {"tiled": tiled_rows(model, workdir, sizes.tiled_variants)}
        case "training":
            from benchmarks.train_throughput import training_rows

            return {"training": training_rows(
                sizes.train_batch, sizes.train_steps, sizes.train_repeats, sizes.ray and not args.no_ray, workdir
            )}
        case "degrade":
            from benchmarks.degrade import degrade_rows

            return {"degrade": degrade_rows(sizes.degrade_images, sizes.degrade_repeats, workdir)}
    raise ValueError(f"unknown section {name!r}; choose from {SECTIONS}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from benchmarks.common import machine_info, machine_slug
    from dpsrgan.atomic_io import write_text_atomic
    from benchmarks.inference import benchmark_generator
    from benchmarks.report import markdown, targets

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the CLI child process and Ray's worker
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    machine_name = args.machine or machine_slug()
    results: dict[str, Any] = {
        "machine_name": machine_name,
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "sizes": {k: v for k, v in sizes.__dict__.items()},
    }
    model, results["model"] = benchmark_generator(args.checkpoint)
    failed = []
    for name in args.sections:
        logger.info("section %s (load average %.1f)", name, os.getloadavg()[0])
        section_start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"dpsrgan-bench-{name}-") as tmp:
            try:
                results.update(run_section(name, sizes, model, Path(tmp), args))
            except Exception as error:  # noqa: BLE001 - recorded in the results and the exit code
                logger.exception("section %s failed", name)
                results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
                failed.append(name)
        logger.info("section %s took %.0f s", name, time.perf_counter() - section_start)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["elapsed_s"] = time.perf_counter() - started
    results["targets"] = targets(results)
    json_path = args.out_dir / f"{machine_name}.json"
    write_text_atomic(json_path, json.dumps(results, indent=2, default=str) + "\n")
    write_text_atomic(json_path.with_suffix(".md"), markdown(results))
    print(markdown(results))
    print(f"wrote {json_path} and {json_path.with_suffix('.md')}", file=sys.stderr)
    return 1 if failed else 0
