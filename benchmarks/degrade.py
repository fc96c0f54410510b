"""Degrade-stage throughput with 1 and 2 worker processes: the data engineer's measurement
(:mod:`benchmarks.degrade_throughput`: the whole stage — JPEG decode, crop, MATLAB-bicubic HR
and ×4 LR, PNG encode, Parquet shards — on a CelebA-format sample), timed round-robin."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmarks.degrade_throughput import make_sample, time_degrade
from dpsrgan.config import DataParams
from dpsrgan.data.raw import download


def degrade_rows(images: int, repeats: int, workdir: Path, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    md5 = make_sample(workdir / "sample", images)
    params = DataParams(source="celeba", uri=str(workdir / "sample"), md5=md5)
    download(params, workdir / "raw", workdir / "cache")
    walls: dict[int, list[float]] = {count: [] for count in workers}
    cpus: dict[int, list[float]] = {count: [] for count in workers}
    for _ in range(repeats):  # interleaved: a burst of outside load hits both counts
        for count in workers:
            wall, cpu = time_degrade(params, workdir / "raw", workdir / f"out{count}", count)
            walls[count].append(wall)
            cpus[count].append(cpu)
    rates = {str(count): images / statistics.median(times) for count, times in walls.items()}
    return {
        "images": images,
        "repeats": repeats,
        "images_per_s": rates,
        "speedup_2_vs_1": rates["2"] / rates["1"] if {"1", "2"} <= rates.keys() else None,
        # CPU time of this process and its workers: equal per-image cost at 1 and 2 processes means
        # the work splits cleanly, whatever share of the CPUs the machine could give it.
        "cpu_ms_per_image": {str(count): 1e3 * statistics.median(times) / images for count, times in cpus.items()},
        "seconds": {str(count): times for count, times in walls.items()},
    }
