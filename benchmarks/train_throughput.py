"""Training throughput of the paper's generator (64 channels, 16 blocks) at HR 128 (LR 32).

Run: ``python benchmarks/train_throughput.py [--batch 8] [--steps 4] [--repeats 3] [--skip-ray] [--device cuda] [--out F]``
(``python -m benchmarks`` runs :func:`training_rows` as its ``training`` section with its own
sizes; ``benchmarks/gpu.py`` times its training rows with :func:`eager_rates`.)

Prints one JSON document; its ``training`` part holds:

1. ``eager_samples_per_s``: samples/s of :func:`~dpsrgan.training.steps.pretrain_step` and
   :func:`~dpsrgan.training.steps.gan_step` on one in-memory batch, fp32 vs bf16 autocast (and
   fp16 with a GradScaler on CUDA), channels-last, with all of this machine's threads (no Ray,
   no data loading).
2. ``ray``: the same steps inside the real Ray Train loop (``train_stage``: Ray Data reading
   PNG shards, 1 worker, fp32; CPU only), its steady-state samples/s (the loop's own clock,
   start-up and validation excluded), the eager number at the same thread count, and the
   overhead ``1 − ray / eager``. The worker gets as many threads as its CPU share (Ray sets
   OMP_NUM_THREADS), so the local Ray is started with one logical CPU more than the machine
   has, leaving a CPU for Ray Data's reads while the worker holds all physical ones.

Every number is the best of ``--repeats`` windows (wall clock), which keeps other processes on a
shared machine from dominating it; ``os.getloadavg()`` is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpsrgan.losses import PerceptualLoss  # noqa: E402
from dpsrgan.models.discriminator import Discriminator  # noqa: E402
from dpsrgan.models.generator import Generator  # noqa: E402
from dpsrgan.models.vgg import VGG19Features  # noqa: E402
from dpsrgan.training.precision import PrecisionPlan, select_precision  # noqa: E402
from dpsrgan.training.steps import gan_step, pretrain_step  # noqa: E402

HR = 128
CPU = torch.device("cpu")
STAGES = ("pretrain", "gan")


def batch(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    hr = F.interpolate(
        torch.rand(n, 3, HR // 8, HR // 8), size=(HR, HR), mode="bilinear", align_corners=False
    )
    lr = F.avg_pool2d(hr, 4)
    return (t.to(device).contiguous(memory_format=torch.channels_last) for t in (lr, hr))


def eager_rates(
    stage: str,
    precisions: tuple[str, ...],
    n: int,
    steps: int,
    device: torch.device = CPU,
    repeats: int = 1,
    warmup: int = 2,
) -> dict[str, float]:
    """Best samples/s per precision over ``repeats`` windows of ``steps`` timed steps.

    The precisions take turns window by window on the same models, so a burst of load from other
    processes hits them alike; the best window is the closest to an idle machine.
    """
    torch.manual_seed(0)
    generator = Generator().to(device, memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-4)
    lr, hr = batch(n, device)
    if stage == "gan":
        discriminator = Discriminator().to(device, memory_format=torch.channels_last)
        features = VGG19Features("conv5_4", "random").to(device, memory_format=torch.channels_last)
        perceptual = PerceptualLoss(features)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4)

    def step(plan: PrecisionPlan, scalers: tuple[torch.amp.GradScaler, ...]) -> dict[str, float]:
        if stage == "pretrain":
            return pretrain_step(generator, opt_g, lr, hr, precision=plan, scaler=scalers[0])
        return gan_step(
            generator, discriminator, perceptual, opt_g, opt_d, lr, hr,
            adv_weight=1e-3, precision=plan, scaler_g=scalers[0], scaler_d=scalers[1],
        )  # fmt: skip

    plans = {name: select_precision(name, device) for name in precisions}
    scalers = {name: (plan.grad_scaler(), plan.grad_scaler()) for name, plan in plans.items()}
    for name in precisions:
        for _ in range(warmup):
            step(plans[name], scalers[name])
    best = dict.fromkeys(precisions, 0.0)
    for _ in range(repeats):
        for name in precisions:
            start = time.perf_counter()
            for _ in range(steps):
                losses = step(plans[name], scalers[name])  # floats: the device is synchronised
            best[name] = max(best[name], n * steps / (time.perf_counter() - start))
            if not all(value == value for value in losses.values()):
                raise RuntimeError(f"{stage} {name}: non-finite losses {losses}")
    return best


def write_dataset(root: Path, rows: int) -> Path:
    """A degrade-stage layout of ``rows`` HR-128 patches cut from scikit-image's photographs."""
    from skimage import data

    from dpsrgan.data.shards import Row, encode_png, write_split
    from dpsrgan.degradation import bicubic_downscale

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)

    def rows_of(count: int, prefix: str):
        for i in range(count):
            photo = photos[i % len(photos)]
            top, left = rng.integers(0, photo.shape[0] - HR), rng.integers(0, photo.shape[1] - HR)
            hr = np.ascontiguousarray(photo[top : top + HR, left : left + HR])
            yield Row(f"{prefix}{i}", encode_png(hr), encode_png(bicubic_downscale(hr, 4)), HR, HR)

    write_split(rows_of(rows, "train"), root / "train", 4096)
    write_split(rows_of(2, "valid"), root / "valid", 4096)
    write_split(rows_of(1, "test"), root / "test", 4096)
    (root / "manifest.json").write_text(json.dumps({"rows": rows}))
    return root


def ray_rates(n: int, steps: int, threads: int, workdir: Path, repeats: int = 1) -> dict[str, float]:
    """Best per-epoch steady-state samples/s of both stages in the real Ray Train loop (1 worker,
    fp32; ``repeats`` epochs of ``steps`` + 1 steps: the loop's clock skips each epoch's first)."""
    from dpsrgan.checkpoint import save_generator
    from dpsrgan.cluster.runtime import ray_session
    from dpsrgan.config import parse_params
    from dpsrgan.training.trainer import train_stage

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    data_dir = write_dataset(workdir / "processed", rows=n * (steps + 1))
    with ray_session(num_cpus=threads + 1):
        section = {  # whole HR patches, every step a full step: what the rate is measured on
            "epochs": repeats,
            "batch_size": n,
            "steps_per_epoch": steps + 1,
            "precision": "fp32",
            "checkpoint_every_steps": 10_000,
            "crop_size": None,
            "augment": False,
            "lr_schedule": "constant",
            "warmup_steps": 0,
        }
        raw = {
            "loss": {"vgg_weights": "random"},
            "pretrain": section,
            "gan": {**section, "ema_decay": 0.999, "d_warmup_steps": 0},
            "ray": {"num_workers": 1, "cpus_per_worker": threads, "storage_path": str(workdir / "ray")},
            "mlflow": {"experiment": "benchmark-train-throughput"},
        }
        params = parse_params(raw)
        rates = {}
        start = time.perf_counter()
        pretrain = train_stage("pretrain", params, data_dir)
        rates["pretrain_wall_s"] = time.perf_counter() - start
        rates["pretrain"] = max(row["perf/samples_per_s"] for row in pretrain.state["progress"]["history"])
        pretrained = save_generator(Generator(), workdir / "pretrained.pt")
        start = time.perf_counter()
        gan = train_stage("gan", params, data_dir, pretrained=pretrained)
        rates["gan_wall_s"] = time.perf_counter() - start
        rates["gan"] = max(row["perf/samples_per_s"] for row in gan.state["progress"]["history"])
        return rates


def training_rows(
    batch: int, steps: int, repeats: int, with_ray: bool, workdir: Path, device: torch.device = CPU
) -> dict[str, Any]:
    """Eager samples/s per stage and precision, bf16's speed-up, and (CPU only, ``with_ray``)
    the Ray Train loop against the eager fp32 loop."""
    precisions = ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "bf16")
    eager = {}
    for stage in STAGES:  # the precisions interleaved within a stage
        rates = eager_rates(stage, precisions, batch, steps, device, repeats)
        eager.update({f"{stage}_{precision}": rate for precision, rate in rates.items()})
    result: dict[str, Any] = {
        "batch": batch, "hr": HR, "timed_steps": steps, "repeats": repeats, "eager_samples_per_s": eager,
    }
    for stage in STAGES:
        result[f"{stage}_bf16_speedup"] = eager[f"{stage}_bf16"] / eager[f"{stage}_fp32"]
    if with_ray and device.type == "cpu":
        os.environ.pop("RAY_ADDRESS", None)  # a local Ray of our own, never someone else's cluster
        rates = ray_rates(n=batch, steps=steps, threads=torch.get_num_threads(), repeats=repeats, workdir=workdir)
        result["ray"] = {
            stage: {
                "ray_samples_per_s": rates[stage],
                "eager_samples_per_s": eager[f"{stage}_fp32"],
                "overhead": 1 - rates[stage] / eager[f"{stage}_fp32"],
                "stage_wall_s": rates[f"{stage}_wall_s"],
            }
            for stage in STAGES
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per measurement (the best counts)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the Ray part runs on CPU only)")
    parser.add_argument(
        "--out", type=Path, help="also write the JSON here (Ray's raylet may print to stdout)"
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # as the training loop does
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": os.getloadavg(),
            "torch": torch.__version__,
            "amx": bool(torch.cpu._is_amx_tile_supported()),
        },
        "config": {
            "generator": Generator().config,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        },
    }
    with tempfile.TemporaryDirectory(prefix="dpsrgan-bench-") as tmp:
        report["training"] = training_rows(args.batch, args.steps, args.repeats, not args.skip_ray, Path(tmp), device)
    report["machine"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
