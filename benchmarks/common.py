"""Shared helpers: interleaved timing with medians, the machine's description, atomic writes.

Timings on a shared machine are noisy, so every comparison is a *ratio within one run*: the
variants being compared are timed round-robin (a burst of load from elsewhere hits all of them)
and each is summarised by its median.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, sync: Callable[[], None] = lambda: None
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``warmup`` untimed calls each, then ``repeats``
    rounds that call every function once, in turn. ``sync`` waits for queued device work
    (``torch.cuda.synchronize`` on a GPU) before each clock reading."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    """Median (the number used), best, and spread (max / min) of a list of timings."""
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "spread": max(seconds) / min(seconds),
        "repeats": len(seconds),
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text(errors="replace").split()) if cpuinfo.exists() else set()
    return [flag for flag in FLAGS_OF_INTEREST if flag in flags]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_slug() -> str:
    """A file-name-safe default machine name: CPU model and core count, e.g. ``amd-epyc-2c``."""
    model = re.sub(r"\((r|tm)\)|cpu|processor|@.*$", "", cpu_model().lower())
    words = re.sub(r"[^a-z0-9]+", "-", model).strip("-")
    return f"{words[:40].strip('-')}-{available_cpus()}c"


def onednn_version() -> str | None:
    match = re.search(r"MKL-DNN (v[\d.]+)", torch.__config__.show())
    return match.group(1) if match else None


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cpus": available_cpus(),
        "flags": cpu_flags(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onednn": onednn_version(),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


