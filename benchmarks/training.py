"""Training throughput rows: the training engineer's measurements
(:mod:`benchmarks.train_throughput`), run with this suite's sizes.

Both report the best of ``repeats`` windows (the training engineer's choice on a shared box).

- eager: samples/s of :func:`~dpsrgan.training.steps.pretrain_step` and
  :func:`~dpsrgan.training.steps.gan_step` on one in-memory batch (HR 128), fp32 ("eager")
  against bf16 autocast ("optimised"; both channels-last).
- Ray: the same steps inside the real Ray Train loop (1 worker, Ray Data reading shards, fp32),
  steady-state samples/s from the loop's own clock, against the eager fp32 loop without Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from benchmarks.train_throughput import eager_rates, ray_rates


def training_rows(batch: int, steps: int, repeats: int, with_ray: bool, workdir: Path) -> dict[str, Any]:
    cpu = torch.device("cpu")
    eager = {}
    for stage in ("pretrain", "gan"):  # fp32 and bf16 interleaved within a stage
        rates = eager_rates(stage, ("fp32", "bf16"), batch, steps, device=cpu, repeats=repeats)
        eager.update({f"{stage}_{precision}": rate for precision, rate in rates.items()})
    result: dict[str, Any] = {
        "batch": batch, "hr": 128, "timed_steps": steps, "repeats": repeats, "eager_samples_per_s": eager,
    }
    for stage in ("pretrain", "gan"):
        result[f"{stage}_bf16_speedup"] = eager[f"{stage}_bf16"] / eager[f"{stage}_fp32"]
    if with_ray:
        os.environ.pop("RAY_ADDRESS", None)  # a local Ray of our own, never someone else's cluster
        rates = ray_rates(n=batch, steps=steps, threads=torch.get_num_threads(), repeats=repeats, workdir=workdir)
        result["ray"] = {
            stage: {
                "ray_samples_per_s": rates[stage],
                "eager_samples_per_s": eager[f"{stage}_fp32"],
                "overhead": 1 - rates[stage] / eager[f"{stage}_fp32"],
                "stage_wall_s": rates[f"{stage}_wall_s"],
            }
            for stage in ("pretrain", "gan")
        }
    return result
