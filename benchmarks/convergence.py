"""Does the pretraining recipe converge? PSNR-Y gain over bicubic on held-out photographs
against optimiser steps and training wall time, for the paper's form and for our default.

Run: ``python -m benchmarks.convergence --minutes 5`` (2-core CPU: about 11 minutes for the two
forms, evaluation included). It trains on the train split of a photo folder (default: the
offline quickstart's ``bundled`` photographs, split as the quickstart splits them) and every
``--eval-every`` seconds of training measures the generator on the *test* split — whole images,
which no step saw — against MATLAB bicubic on the same images. It writes
``<out>/convergence.{csv,json,png}`` (default ``benchmarks/results/convergence-<machine>``).

The forms (one run each, same data, seed, batch, crops and optimiser):

- ``paper``: the paper's generator (SRResNet + dilated convs, output from a 9×9 conv).
- ``default``: the same network predicting a residual over bicubic upsampling, last conv
  zero-initialised (``model.bicubic_skip``, the params' default).

Both with MSE (the paper's pretraining loss; ``pretrain.pixel_loss``), so the skip is the only
difference.

The steps are :func:`dpsrgan.training.steps.pretrain_step` — the pipeline's own — on random
``--crop``² HR crops with flips and 90° rotations (the pipeline's ``pretrain.crop_size`` and
``pretrain.augment``), LR by the degrade stage's MATLAB bicubic, Adam with a cosine schedule
after a linear warm-up, in the ``auto`` precision (bf16 on CPUs with native bf16).
Evaluation runs in fp32 on whole images, rounded to uint8 like a saved image.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_slug
from dpsrgan.config import load_params
from dpsrgan.data.folder import assign_splits, bundled_photos, list_images
from dpsrgan.data.images import load_rgb
from dpsrgan.data.pairs import centre_crop
from dpsrgan.degradation import bicubic_downscale, bicubic_upscale
from dpsrgan.metrics import psnr
from dpsrgan.models.generator import Generator
from dpsrgan.training.augment import random_dihedral
from dpsrgan.training.precision import select_precision
from dpsrgan.training.schedule import warmup_cosine
from dpsrgan.training.steps import pretrain_step

logger = logging.getLogger("benchmarks.convergence")

SCALE = 4
EVAL_MAX_SIDE = 512


def random_crop_pairs(rng: np.random.Generator, photos: list[np.ndarray], count: int, hr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random (LR, HR) crops of ``photos`` (LR by MATLAB bicubic), dihedrally turned;
    float N×3×H×W in [0, 1], channels-last."""
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(photo.shape[0] - hr + 1), rng.integers(photo.shape[1] - hr + 1)
        crops.append(np.ascontiguousarray(photo[top : top + hr, left : left + hr]))

    def stack(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)

    lr, hr_batch = random_dihedral(stack([bicubic_downscale(crop, SCALE) for crop in crops]), stack(crops),
                                   torch.Generator().manual_seed(int(rng.integers(2**31))))
    return lr.contiguous(memory_format=torch.channels_last), hr_batch.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class Form:
    name: str
    bicubic_skip: bool
    loss: str


FORMS = {"paper": Form("paper", False, "mse"), "default": Form("default", True, "mse")}


def photo_splits(source: str) -> dict[str, dict[str, Path]]:
    """split → {relative path: file} of ``bundled`` or a folder, split as the folder source does."""
    if source == "bundled":
        files = bundled_photos()
    else:
        root = Path(source)
        files = {rel: root / rel for rel in list_images(root)}
    data = load_params().data  # the quickstart's split fractions, from params.yaml
    assignment = assign_splits(files, data.valid_fraction, data.test_fraction)
    return {split: {rel: files[rel] for rel in files if assignment[rel] == split} for split in ("train", "valid", "test")}


def held_out_pairs(files: dict[str, Path]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(LR, HR, bicubic PSNR-Y) of each whole test image, cropped as the degrade stage crops."""
    pairs = []
    for path in files.values():
        image = load_rgb(path, max_pixels=64_000_000, min_side=64)
        height, width = (min(side, EVAL_MAX_SIDE) for side in image.shape[:2])
        hr = np.ascontiguousarray(centre_crop(image, height - height % SCALE, width - width % SCALE))
        lr = bicubic_downscale(hr, SCALE)
        bicubic = bicubic_upscale(lr, SCALE)
        pairs.append((lr, hr, psnr(bicubic, hr, crop_border=SCALE)))
    return pairs


@torch.no_grad()
def mean_gain(generator: Generator, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> float:
    """Mean over images of PSNR-Y(G) − PSNR-Y(bicubic), dB (fp32, uint8-rounded output)."""
    generator.eval()
    gains = []
    for lr, hr, bicubic_psnr in pairs:
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
        sr = generator(x).clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy()
        gains.append(psnr(sr, hr, crop_border=SCALE) - bicubic_psnr)
    generator.train()
    return float(np.mean(gains))


def train_form(form: Form, args: argparse.Namespace, train: list[np.ndarray], pairs: list) -> list[dict[str, float]]:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    generator = Generator(bicubic_skip=form.bicubic_skip).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr)
    plan = select_precision("auto", torch.device("cpu"))
    budget_s = args.minutes * 60
    # The schedule needs a length in steps; estimate it from the first steps' speed, as the
    # pipeline knows its own (pretrain.epochs × steps_per_epoch).
    total_steps = None
    curve = [{"form": form.name, "step": 0, "train_s": 0.0, "gain_db": mean_gain(generator, pairs)}]
    elapsed, step, next_eval = 0.0, 0, args.eval_every
    while elapsed < budget_s:
        lr_batch, hr_batch = random_crop_pairs(rng, train, args.batch, args.crop)
        if total_steps:
            for group in optimizer.param_groups:
                group["lr"] = args.lr * warmup_cosine(step, total_steps, args.warmup)
        start = time.perf_counter()
        losses = pretrain_step(generator, optimizer, lr_batch, hr_batch, precision=plan, loss=form.loss)
        elapsed += time.perf_counter() - start
        step += 1
        if step == 20:
            total_steps = max(step + 1, int(budget_s / (elapsed / step)))
        if elapsed >= next_eval or elapsed >= budget_s:
            gain = mean_gain(generator, pairs)
            curve.append({"form": form.name, "step": step, "train_s": round(elapsed, 1), "gain_db": gain})
            logger.info("%s: step %d, %.0f s, pixel loss %.4f, gain over bicubic %+.2f dB",
                        form.name, step, elapsed, losses["loss/g_pixel"], gain)
            next_eval += args.eval_every
    return curve


def plot(curves: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, curve in curves.items():
        axes[0].plot([p["step"] for p in curve], [p["gain_db"] for p in curve], marker=".", label=name)
        axes[1].plot([p["train_s"] / 60 for p in curve], [p["gain_db"] for p in curve], marker=".", label=name)
    for axis, label in zip(axes, ("optimiser steps", "training time (min)"), strict=True):
        axis.axhline(0, color="grey", lw=0.8, ls="--")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR-Y gain over bicubic on held-out photos (dB)")
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default="bundled", help="a photo folder, or 'bundled' (the quickstart's)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per form")
    parser.add_argument("--forms", default="paper,default", help=f"comma-separated, of {sorted(FORMS)}")
    parser.add_argument("--batch", type=int, default=8, help="the quickstart's global batch (2 workers × 4)")
    parser.add_argument("--crop", type=int, default=96, help="HR crop side (pretrain.crop_size)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of training between evaluations")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or Path("benchmarks/results") / f"convergence-{machine_slug()}"
    out.mkdir(parents=True, exist_ok=True)
    splits = photo_splits(args.photos)
    train = [load_rgb(path, max_pixels=64_000_000, min_side=args.crop) for path in splits["train"].values()]
    pairs = held_out_pairs(splits["test"])
    logger.info("train: %d photos, held-out test: %d (%s)", len(train), len(pairs), ", ".join(splits["test"]))
    curves = {name: train_form(FORMS[name], args, train, pairs) for name in args.forms.split(",")}
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    result = {
        "settings": settings,
        "forms": {name: asdict(FORMS[name]) for name in curves},
        "threads": torch.get_num_threads(),
        "train_photos": sorted(splits["train"]),
        "test_photos": sorted(splits["test"]),
        "curves": curves,
        "final_gain_db": {name: curve[-1]["gain_db"] for name, curve in curves.items()},
    }
    (out / "convergence.json").write_text(json.dumps(result, indent=1) + "\n")
    with open(out / "convergence.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["form", "step", "train_s", "gain_db"])
        writer.writeheader()
        for curve in curves.values():
            writer.writerows(curve)
    title = (f"{len(train)} train / {len(pairs)} held-out photos ({args.photos}), batch {args.batch} of "
             f"{args.crop}² HR crops, Adam {args.lr:g} warm-up + cosine, {torch.get_num_threads()} threads")
    plot(curves, out / "convergence.png", title)
    for name, gain in result["final_gain_db"].items():
        logger.info("%s: %+.2f dB over bicubic after %.1f min", name, gain, args.minutes)
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
