"""The GAN stage's perception–distortion picture: what its own step does to a pretrained generator.

Run (after ``dvc repro pretrain``; about an hour on a 2-core AVX2 CPU in fp32)::

    python -m benchmarks.gan [--data data/processed] [--pretrained models/pretrain/generator.pt] \
        [--steps 100] [--settings 0:10,0.01:10,0.03:10,0.1:10] [--out benchmarks/results/gan-<machine>]

Three sections, all on the degrade stage's splits of the params' data and the params' ``gan.*``,
``loss.*`` and ``model.*`` (only what a setting names differs):

**discriminator** — why the stage's D learns: a D trained alone against the *frozen* pretrained
generator on the same random crops, its mean D(real) − D(fake) on its own batches per step, for
real and fake in two passes (the old step) or in one batch (the step now), and with the paper's
input or ours (``model.d_residual_input``).

**batchnorm** — G's BatchNorm statistics over the same batches with G's learning rate 0, in
train mode (re-estimated from each batch) and as the stage keeps them (eval mode): how far the
running statistics move and what that does to the test photographs' colour.

**settings** — from the pretrained generator, :func:`dpsrgan.training.steps.gan_step` for
``--steps`` steps (the stage's ``gan.epochs × gan.steps_per_epoch`` by default) at each
(adversarial weight, pixel weight) setting — adversarial weight 0 is the control: the same
fine-tune without D's say — on batches of ``gan.batch_size × ray.num_workers`` (the stage's
global batch), the learning rates from the
stage's own schedule (:func:`~dpsrgan.training.schedule.stage_learning_rates`: D's warm-up, both
warm-ups), G's BatchNorm in eval mode and the EMA as the stage has them. Every ``--eval-every``
steps (and at steps 1, 2, 4 and 10, where a jolt would show) the raw and the EMA generator are
measured on the whole held-out photographs of the **test** split (what evaluate reports) and of
the **valid** split (what tune sees): PSNR-Y gain over bicubic, HF energy (Laplacian energy of the
luma relative to HR) and the worst image's colour shift. The last point of each setting is its
(PSNR-Y gain, HF energy) point on the frontier.

Writes ``<out>/gan.json`` (everything), ``<out>/curves.csv``, ``<out>/summary.md`` (the key
figures) and ``<out>/gan.png`` (curves and the frontier). Nothing here is timed beyond seconds
per step, for the record.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from benchmarks.common import machine_info, machine_slug
from dpsrgan.atomic_io import atomic_file, write_text_atomic
from dpsrgan.checkpoint import load_generator
from dpsrgan.config import Params, load_params, parse_params
from dpsrgan.data.shards import read_split
from dpsrgan.degradation import bicubic_upscale
from dpsrgan.losses import PerceptualLoss, smoothed_bce
from dpsrgan.metrics import color_shift, high_frequency_ratio, psnr
from dpsrgan.models.discriminator import Discriminator
from dpsrgan.models.vgg import VGG19Features
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.ema import EMA
from dpsrgan.training.precision import select_precision
from dpsrgan.training.schedule import stage_learning_rates
from dpsrgan.training.steps import freeze_batch_norm_statistics, gan_step

logger = logging.getLogger("benchmarks.gan")

EARLY_STEPS = (1, 2, 4, 10)
"""Extra measurement points: Adam's first steps are where a fine-tune jolts its start."""


# --- data ------------------------------------------------------------------------------------------


def _to_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


class CropSampler:
    """Random (LR, HR) training crops of the train split, flipped and turned as the stage does;
    the same seed gives every setting the same batches."""

    def __init__(self, train_dir: Path, batch: int, crop: int, seed: int) -> None:
        self.pairs = [(sample.lr, sample.hr) for sample in read_split(train_dir)]
        self.batch, self.crop, self.seed = batch, crop, seed

    def batches(self, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng(self.seed)
        torch_rng = torch.Generator().manual_seed(self.seed)
        out = []
        for _ in range(count):
            picks = rng.integers(len(self.pairs), size=self.batch)
            lr, hr = (_to_batch([self.pairs[i][k] for i in picks]) for k in (0, 1))
            lr, hr = random_dihedral(*random_crop(lr, hr, self.crop, torch_rng), torch_rng)
            out.append((lr.contiguous(), hr.contiguous()))
        return out


@dataclass(frozen=True)
class HeldOut:
    """Whole held-out photographs of one split, with bicubic's PSNR-Y on each."""

    name: str
    lrs: list[np.ndarray]
    hrs: list[np.ndarray]
    bicubic_psnr_y: list[float]

    @classmethod
    def read(cls, split_dir: Path, scale: int) -> HeldOut:
        samples = list(read_split(split_dir))
        bicubic = [bicubic_upscale(s.lr, scale) for s in samples]
        scores = [psnr(b, s.hr, crop_border=scale) for b, s in zip(bicubic, samples, strict=True)]
        return cls(split_dir.name, [s.lr for s in samples], [s.hr for s in samples], scores)

    @torch.no_grad()
    def measure(self, generator: torch.nn.Module, scale: int) -> dict[str, float]:
        """Mean PSNR-Y gain over bicubic, mean HF energy, worst and mean colour shift (fp32, uint8 output)."""
        gains, hf, shifts = [], [], []
        for lr, hr, bicubic in zip(self.lrs, self.hrs, self.bicubic_psnr_y, strict=True):
            sr = generator(_to_batch([lr])).clamp(0, 1).mul(255).round().byte()[0].permute(1, 2, 0).numpy()
            gains.append(psnr(sr, hr, crop_border=scale) - bicubic)
            hf.append(high_frequency_ratio(sr, hr, scale))
            shifts.append(color_shift(sr, hr, scale))
        return {
            "gain_db": float(np.mean(gains)),
            "hf_ratio": float(np.mean(hf)),
            "color_shift_max": float(max(shifts)),
            "color_shift_mean": float(np.mean(shifts)),
        }


# --- the discriminator section -----------------------------------------------------------------------


def _separate_passes_d_step(discriminator, optimizer, lr, hr, sr, params: Params) -> tuple[float, float]:
    """The old step's D update, for comparison: real and fake through D in two passes."""
    optimizer.zero_grad(set_to_none=True)
    real, fake = discriminator(hr, lr), discriminator(sr, lr)
    loss = smoothed_bce(real, params.loss.real_label_range) + smoothed_bce(fake, params.loss.fake_label_range)
    loss.backward()
    optimizer.step()
    return torch.sigmoid(real.detach()).mean().item(), torch.sigmoid(fake.detach()).mean().item()


def discriminator_alone(
    variant: str, params: Params, pretrained: torch.nn.Module, batches: list, lr_d: float
) -> list[dict[str, float]]:
    """Mean D(real) − D(fake) per 25 steps of a D trained alone against the frozen ``pretrained``."""
    passes, d_input = variant.split("/")
    torch.manual_seed(params.gan.seed)
    discriminator = Discriminator(channels=params.model.d_channels, residual_input=d_input == "residual")
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=tuple(params.gan.betas))
    frozen_g = pretrained.eval().requires_grad_(False)  # D's task does not move
    gaps, curve = [], []
    for step, (lr, hr) in enumerate(batches, start=1):
        if passes == "one-batch":
            losses = gan_step(frozen_g, discriminator, None, None, optimizer, lr, hr, adv_weight=0.0,
                              real_label_range=params.loss.real_label_range,
                              fake_label_range=params.loss.fake_label_range, train_generator=False)
            real, fake = losses["d/real_mean"], losses["d/fake_mean"]
        else:
            with torch.no_grad():
                sr = pretrained(lr)
            real, fake = _separate_passes_d_step(discriminator, optimizer, lr, hr, sr, params)
        gaps.append(real - fake)
        if step % 25 == 0:
            curve.append({"variant": variant, "step": step, "d_gap": float(np.mean(gaps[-25:]))})
    logger.info("discriminator %s: D(real) - D(fake) %s", variant, [round(p["d_gap"], 3) for p in curve])
    return curve


# --- the batchnorm section -----------------------------------------------------------------------------


@torch.no_grad()
def batch_norm_drift(pretrained_path: Path, batches: list, held_out: HeldOut, scale: int,
                     frozen: bool) -> dict[str, float]:
    """What G's BatchNorm statistics do over the GAN stage's batches with every weight fixed (G's
    learning rate 0): train mode re-estimates them from each batch (momentum 0.1), eval mode — the
    stage's :func:`freeze_batch_norm_statistics` — keeps pretraining's. Relative change of the
    running statistics, and the held-out photographs before and after."""
    generator = load_generator(pretrained_path)
    before = {name: buffer.clone() for name, buffer in generator.named_buffers() if "running_" in name}
    start = held_out.measure(generator.eval(), scale)
    generator = freeze_batch_norm_statistics(generator) if frozen else generator.train()
    for lr, _ in batches:
        generator(lr)
    changes = [((buffer - before[name]).norm() / before[name].norm().clamp_min(1e-12)).item()
               for name, buffer in generator.named_buffers() if name in before]
    end = held_out.measure(generator.eval(), scale)
    result = {"steps": len(batches), "stat_change_mean": float(np.mean(changes)), "stat_change_max": float(max(changes)),
              **{f"before/{k}": v for k, v in start.items()}, **{f"after/{k}": v for k, v in end.items()}}
    logger.info("batchnorm %s: statistics moved %.1f %% (max %.1f %%), worst colour %.2f -> %.2f",
                "frozen" if frozen else "train-mode", 100 * result["stat_change_mean"],
                100 * result["stat_change_max"], start["color_shift_max"], end["color_shift_max"])
    return result


# --- the settings section ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    adv_weight: float
    pixel_weight: float

    @property
    def name(self) -> str:
        return f"adv {self.adv_weight:g}, pixel {self.pixel_weight:g}"


def _models(params: Params, pretrained_path: Path):
    torch.manual_seed(params.gan.seed)
    generator = freeze_batch_norm_statistics(load_generator(pretrained_path))  # as the stage trains it
    model = params.model
    discriminator = Discriminator(channels=model.d_channels, spectral_norm=model.d_spectral_norm,
                                  residual_input=model.d_residual_input)
    perceptual = PerceptualLoss(VGG19Features(params.loss.vgg_layer, params.loss.vgg_weights),
                                normalized=params.loss.perceptual_normalized)
    return generator, discriminator, perceptual


def _measure_point(step: int, generator, ema: EMA | None, held_out: list[HeldOut], scale: int) -> dict:
    row: dict[str, float] = {"step": step}
    for label, model in (("raw", generator), ("ema", ema.module if ema else generator)):
        for split in held_out:
            for key, value in split.measure(model, scale).items():
                row[f"{split.name}/{label}/{key}"] = value
    return row


def run_setting(setting: Setting, params: Params, pretrained_path: Path, batches: list,
                held_out: list[HeldOut], eval_every: int) -> list[dict[str, float]]:
    """Per-step curve of one (adv, pixel) setting: D means each step, held-out metrics at the eval points."""
    gan, scale = params.gan, params.degrade.scale
    generator, discriminator, perceptual = _models(params, pretrained_path)
    opt_g = torch.optim.Adam(generator.parameters(), lr=gan.lr_g, betas=tuple(gan.betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=gan.lr_d, betas=tuple(gan.betas))
    ema = EMA(generator, gan.ema_decay) if gan.ema_decay > 0 else None
    plan = select_precision(gan.precision, torch.device("cpu"))
    curve, d_means, train_s = [_measure_point(0, generator, ema, held_out, scale)], [], 0.0
    for step, (lr, hr) in enumerate(batches):
        started = time.perf_counter()
        rates = stage_learning_rates(step, lr_g=gan.lr_g, lr_d=gan.lr_d, schedule=gan.lr_schedule,
                                     total_steps=len(batches), warmup_steps=gan.warmup_steps,
                                     d_warmup_steps=gan.d_warmup_steps)
        for optimizer, rate in ((opt_g, rates["g"]), (opt_d, rates["d"])):
            for group in optimizer.param_groups:
                group["lr"] = rate
        losses = gan_step(generator, discriminator, perceptual, opt_g, opt_d, lr, hr,
                          adv_weight=setting.adv_weight, pixel_weight=setting.pixel_weight,
                          real_label_range=params.loss.real_label_range,
                          fake_label_range=params.loss.fake_label_range, precision=plan,
                          train_generator=step >= gan.d_warmup_steps)
        if ema is not None:
            ema.update(generator)
        train_s += time.perf_counter() - started
        d_means.append((losses["d/real_mean"], losses["d/fake_mean"]))
        done = step + 1
        if done % eval_every == 0 or done in EARLY_STEPS or done == len(batches):
            row = _measure_point(done, generator, ema, held_out, scale)
            window = np.array(d_means[-eval_every:])
            row.update({"d_real": float(window[:, 0].mean()), "d_fake": float(window[:, 1].mean()),
                        "s_per_step": train_s / done})
            curve.append(row)
            logger.info("%s step %d: D %.3f/%.3f, test EMA gain %+.3f dB, HF %.3f, worst colour %.2f",
                        setting.name, done, row["d_real"], row["d_fake"], row["test/ema/gain_db"],
                        row["test/ema/hf_ratio"], row["test/ema/color_shift_max"])
    return curve


# --- output ---------------------------------------------------------------------------------------------


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for variant, curve in result["discriminator"].items():
        axes[0, 0].plot([p["step"] for p in curve], [p["d_gap"] for p in curve], marker=".", label=variant)
    axes[0, 0].set(title="D alone vs the frozen pretrained G", xlabel="D steps", ylabel="mean D(real) − D(fake)")
    panels = [(axes[0, 1], "d_gap", "D(real) − D(fake), own batches"),
              (axes[0, 2], "test/ema/gain_db", "test PSNR-Y gain over bicubic (dB), EMA"),
              (axes[1, 0], "test/ema/hf_ratio", "test HF energy (HR = 1), EMA"),
              (axes[1, 1], "test/raw/color_shift_max", "worst test colour shift (0–255), raw G")]
    for name, curve in result["settings"].items():
        for axis, key, title in panels:
            points = [p for p in curve if key in p or (key == "d_gap" and "d_real" in p)]
            values = [p["d_real"] - p["d_fake"] if key == "d_gap" else p[key] for p in points]
            axis.plot([p["step"] for p in points], values, marker=".", label=name)
            axis.set(title=title, xlabel="GAN steps")
        last = curve[-1]
        axes[1, 2].scatter(last["test/ema/gain_db"], last["test/ema/hf_ratio"], label=name)
    if result["settings"]:
        start = next(iter(result["settings"].values()))[0]
        axes[1, 2].scatter(start["test/ema/gain_db"], start["test/ema/hf_ratio"], marker="*", s=150,
                           color="black", label="pretrained G")
    axes[1, 2].set(title="frontier after the last step (test, EMA)", xlabel="PSNR-Y gain (dB)", ylabel="HF energy")
    axes[1, 1].axhline(1.0, color="red", lw=0.8, ls="--")
    for axis in axes.flat:
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small")
    fig.suptitle(result["title"], fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as file:
        fig.savefig(file, format="png", dpi=100)
    plt.close(fig)


def write_outputs(result: dict[str, Any], out: Path) -> None:
    write_text_atomic(out / "gan.json", json.dumps(result, indent=1) + "\n")
    rows = [{"setting": name, **point} for name, curve in result["settings"].items() for point in curve]
    fields = sorted({key for row in rows for key in row}, key=lambda k: (k != "setting", k != "step", k))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "curves.csv", table.getvalue())
    write_text_atomic(out / "summary.md", summary(result))
    plot(result, out / "gan.png")


def summary(result: dict[str, Any]) -> str:
    """The key figures as markdown: each setting's last point beside the pretrained G, and D alone."""
    machine = result["machine"]
    lines = [f"# {result['title']}", "",
             (f"{machine['cpu']}, {machine['cpus']} CPUs ({', '.join(machine['flags']) or 'no avx512/amx'}), "
              f"torch {machine['torch']}. Held-out photographs; EMA generator; colour shift of the worst image "
              "(0–255); D gap = mean D(real) − D(fake) over the last eval window of D's own batches."), "",
             "| setting | split | PSNR-Y gain (dB) | HF energy (× pretrained) | worst colour shift | D gap |",
             "|---|---|---|---|---|---|"]
    curves = result["settings"]
    start = next(iter(curves.values()))[0] if curves else None  # every setting starts from the same G
    for split in ("test", "valid") if start else ():
        lines.append(f"| pretrained G | {split} | {start[f'{split}/ema/gain_db']:+.3f} | "
                     f"{start[f'{split}/ema/hf_ratio']:.4f} (1.00×) | {start[f'{split}/ema/color_shift_max']:.2f} | – |")
    for name, curve in curves.items():
        last = curve[-1]
        for split in ("test", "valid"):
            hf, hf0 = last[f"{split}/ema/hf_ratio"], start[f"{split}/ema/hf_ratio"]
            lines.append(f"| {name}, {last['step']} steps | {split} | {last[f'{split}/ema/gain_db']:+.3f} | "
                         f"{hf:.4f} ({hf / hf0:.2f}×) | {last[f'{split}/ema/color_shift_max']:.2f} | "
                         f"{last['d_real'] - last['d_fake']:.2f} |")
    if result.get("batchnorm"):
        lines += ["", "G's BatchNorm statistics with G's weights fixed, test photographs:", "",
                  "| BatchNorm | steps | statistics moved, mean / max | PSNR-Y gain before → after | worst colour before → after |",
                  "|---|---|---|---|---|"]
        for mode, row in result["batchnorm"].items():
            lines.append(f"| {mode} | {row['steps']} | {100 * row['stat_change_mean']:.1f} % / {100 * row['stat_change_max']:.1f} % | "
                         f"{row['before/gain_db']:+.3f} → {row['after/gain_db']:+.3f} | "
                         f"{row['before/color_shift_max']:.2f} → {row['after/color_shift_max']:.2f} |")
    if result["discriminator"]:
        lines += ["", "D alone against the frozen pretrained G, mean D(real) − D(fake) on its own batches:", "",
                  "| variant | " + " | ".join(f"step {p['step']}" for p in next(iter(result["discriminator"].values()))) + " |",
                  "|---|" + "---|" * len(next(iter(result["discriminator"].values())))]
        for variant, curve in result["discriminator"].items():
            lines.append(f"| {variant} | " + " | ".join(f"{p['d_gap']:.3f}" for p in curve) + " |")
    return "\n".join(lines) + "\n"


def parse_settings(text: str) -> list[Setting]:
    """``adv:pixel,adv:pixel,...`` → settings."""
    try:
        return [Setting(*(float(x) for x in item.split(":"))) for item in text.split(",") if item]
    except (TypeError, ValueError):
        raise SystemExit(f"--settings: expected adv:pixel pairs separated by commas, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    parser.add_argument("--pretrained", type=Path, default=Path("models/pretrain/generator.pt"))
    parser.add_argument("--steps", type=int, default=None, help="default: gan.epochs × gan.steps_per_epoch")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--settings", default="0:10,0.01:10,0.03:10,0.1:10")
    parser.add_argument("--sections", default="discriminator,batchnorm,settings")
    parser.add_argument("--d-steps", type=int, default=200, help="steps of the discriminator section")
    parser.add_argument("--override", action="append", default=[], help="gan.KEY=VALUE (e.g. gan.lr_d=2e-4)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = _with_overrides(load_params(args.params), args.override)
    out = args.out or Path("benchmarks/results") / f"gan-{machine_slug()}"
    gan, scale = params.gan, params.degrade.scale
    global_batch = gan.batch_size * params.ray.num_workers  # what one step of the stage averages over
    sampler = CropSampler(args.data / "train", global_batch, gan.crop_size or params.data.hr_size, gan.seed)
    steps = args.steps or gan.epochs * (gan.steps_per_epoch or 0) or 100
    result: dict[str, Any] = {"machine": machine_info(), "argv": vars(args) | {"params": str(args.params)},
                              "gan": gan.model_dump(mode="json"), "loss": params.loss.model_dump(mode="json"),
                              "discriminator": {}, "batchnorm": {}, "settings": {}}
    result["argv"] = {key: str(value) for key, value in result["argv"].items()}
    if "discriminator" in args.sections:
        pretrained = load_generator(args.pretrained).eval()
        batches = sampler.batches(args.d_steps)
        for variant in ("two-passes/paper", "one-batch/paper", "one-batch/residual"):
            result["discriminator"][variant] = discriminator_alone(variant, params, pretrained, batches, gan.lr_d)
    if "batchnorm" in args.sections or "settings" in args.sections:
        held_out = [HeldOut.read(args.data / split, scale) for split in ("test", "valid")]
        batches = sampler.batches(steps)  # the same crops for the BatchNorm drift and every setting
    if "batchnorm" in args.sections:
        result["batchnorm"] = {mode: batch_norm_drift(args.pretrained, batches, held_out[0], scale, mode == "frozen")
                               for mode in ("train-mode", "frozen")}
    if "settings" in args.sections:
        for setting in parse_settings(args.settings):
            curve = run_setting(setting, params, args.pretrained, batches, held_out, args.eval_every)
            result["settings"][setting.name] = curve
            write_outputs(_titled(result, params, args), out)
    write_outputs(_titled(result, params, args), out)
    logger.info("wrote %s", out)
    return 0


def _titled(result: dict[str, Any], params: Params, args: argparse.Namespace) -> dict[str, Any]:
    gan = params.gan
    result["title"] = (
        f"gan_step from {args.pretrained} on {args.data}: batch {gan.batch_size * params.ray.num_workers} of {gan.crop_size}² crops, "
        f"lr_g {gan.lr_g:g} lr_d {gan.lr_d:g}, warm-up {gan.warmup_steps}, D warm-up {gan.d_warmup_steps}, "
        f"EMA {gan.ema_decay:g}, D input {'residual' if params.model.d_residual_input else 'paper'}"
    )
    return result


def _with_overrides(params: Params, overrides: list[str]) -> Params:
    """``SECTION.KEY=VALUE`` (YAML value, e.g. ``gan.lr_d=2e-4``) applied and validated as params.yaml is."""
    raw = params.model_dump(mode="json")
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        raw.setdefault(section, {})[field] = yaml.safe_load(value)
    return parse_params(raw, source="--override")


if __name__ == "__main__":
    raise SystemExit(main())
