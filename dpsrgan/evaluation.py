"""Test-split evaluation: bicubic, the SRResNet and SRGAN baselines (when trained), DPSRGAN's
pretrained generator and DPSRGAN, side by side with the paper's numbers.

One per-batch function, :class:`BatchEvaluator`, does all the work: it holds the generators,
decodes a batch of test rows (the degrade stage's Parquet schema: ``id``, ``hr``/``lr`` PNG
bytes), super-resolves each LR image every way and measures every result against its HR image
(PSNR/SSIM on Y and RGB with the SR literature's border crop, LPIPS when available) and the time
each method took. :func:`evaluate_split` runs it through Ray Data's ``map_batches`` (a pool of
actors, each building the models once, so the work spreads over whatever cluster Ray is attached
to), or in-process for tiny runs; both paths call the same object. On Ray the checkpoints are
loaded here and travel to the actors as weights, and the test shards are read on this node:
both are DVC outs on this node's disk only.

Conventions: metrics are computed in fp32 whatever the CPU could do in bf16, since a benchmark
number must not depend on the machine; timings are wall-clock per image of the forward pass on
the evaluating actor (no decode, no metric), a rough guide rather than a benchmark — on a busy
box concurrent actors share cores.

LPIPS needs the ``lpips`` package, torchvision, and torchvision's AlexNet ImageNet weights in the
torch hub cache; none of them is a dependency of this project and the weights cannot be
downloaded offline, so :func:`lpips_status` detects them and the metrics carry a note instead.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from dpsrgan.checkpoint import load_generator
from dpsrgan.data.shards import decode_png, iter_encoded_batches, shard_paths
from dpsrgan.degradation import bicubic_upscale
from dpsrgan.errors import DpsrganError
from dpsrgan.inference.engine import Upscaler
from dpsrgan.metrics import METRIC_NAMES, color_shift, high_frequency_ratio, image_metrics

logger = logging.getLogger(__name__)

METHODS = ("bicubic", "srresnet", "srgan", "pretrained", "gan")
"""Row order everywhere: the free baseline, the paper's two baselines (dpsrgan.baselines; present
when trained), DPSRGAN's MSE-pretrained (dilated) generator, DPSRGAN. ``pretrained`` and ``gan``
are always evaluated."""
REQUIRED = ("pretrained", "gan")
LABELS = {
    "bicubic": "Bicubic",
    "srresnet": "SRResNet",
    "srgan": "SRGAN",
    "pretrained": "Pretrained G (pixel loss)",
    "gan": "DPSRGAN",
}
GRID_TITLES = {"bicubic": "bicubic", "srresnet": "SRResNet", "srgan": "SRGAN", "pretrained": "pretrained", "gan": "DPSRGAN"}
PAPER_ROWS = {"srresnet": "SRResNet", "srgan": "SRGAN", "gan": "DPSRGAN"}
"""Our method → the paper's row it is measured beside (our pretrained G is not SRResNet: no row)."""
EXTRA_METRICS = ("hf_ratio", "color_shift")
"""Beside PSNR/SSIM: high-frequency energy relative to HR (sharpness) and the largest per-channel
mean difference to HR in 0–255 units (colour cast); see :mod:`dpsrgan.metrics`."""
LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet ImageNet file, the backbone of LPIPS v0.1 (net='alex')."""

PAPER_CELEBA = {
    "DPSRGAN": {"psnr": 32.24, "ssim": 0.86, "mos": 3.91},
    "SRGAN": {"psnr": 30.98, "ssim": 0.82, "mos": 3.62},
    "SRResNet": {"psnr": 32.37, "ssim": 0.88, "mos": 3.02},
}
"""The paper's CelebA ×4 table (PSNR dB / SSIM / MOS)."""


def lpips_status() -> tuple[bool, str]:
    """Whether LPIPS can run here without a download, and why not when it cannot."""
    if importlib.util.find_spec("lpips") is None or importlib.util.find_spec("torchvision") is None:
        return (
            False,
            "skipped: the lpips and torchvision packages are not installed (pip install lpips torchvision)",
        )
    weights = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_WEIGHTS
    if not weights.is_file():
        return (
            False,
            f"skipped: LPIPS backbone weights not found at {weights} (torchvision's AlexNet; copy it there)",
        )
    return True, "lpips v0.1 (alex)"


def _load_lpips() -> torch.nn.Module | None:
    """The LPIPS network when available (see :func:`lpips_status`), else None."""
    available, note = lpips_status()
    if not available:
        logger.info("LPIPS %s", note)
        return None
    import lpips  # optional: only present when the user installed it with its weights

    return lpips.LPIPS(net="alex", verbose=False).eval()


def _to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
    """N×3×H×W float in [0, 1] → list of uint8 HWC."""
    images = batch.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(images)


@dataclass(frozen=True)
class EvalSettings:
    """What every evaluating actor needs besides the models."""

    scale: int
    crop_border: int
    tile: int = 0
    lpips: bool = True
    device: str = "auto"


class BatchEvaluator:
    """The per-batch function: a batch of test rows → per-image metric rows for every method.

    A callable class so Ray Data builds it once per actor (models loaded once), and a plain
    object for the in-process path and for the sample grid.
    """

    def __init__(self, generators: Mapping[str, torch.nn.Module], settings: EvalSettings) -> None:
        self.settings = settings
        self.upscalers = {
            method: Upscaler.prepare(generator, tile=settings.tile, device=settings.device, precision="fp32")
            for method, generator in generators.items()
        }
        self.lpips = _load_lpips() if settings.lpips else None
        for upscaler in self.upscalers.values():  # warm-up: first-call overheads stay out of the timings
            upscaler.upscale_tensor(torch.zeros(1, 3, 8, 8))

    def super_resolve(
        self, lrs: Sequence[np.ndarray]
    ) -> tuple[dict[str, list[np.ndarray]], dict[str, list[float]]]:
        """Every method's SR image for each LR image, and its forward time in ms per image.

        Networks run on same-sized LR images stacked into one batch (test images may differ in
        size); the batch's time is shared equally among its images.
        """
        count = len(lrs)
        methods = [method for method in METHODS if method == "bicubic" or method in self.upscalers]
        images: dict[str, list[Any]] = {method: [None] * count for method in methods}
        millis: dict[str, list[float]] = {method: [0.0] * count for method in methods}
        for index, lr in enumerate(lrs):
            start = time.perf_counter()
            images["bicubic"][index] = bicubic_upscale(lr, self.settings.scale)
            millis["bicubic"][index] = (time.perf_counter() - start) * 1e3
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, lr in enumerate(lrs):
            groups.setdefault(lr.shape, []).append(index)
        for method, upscaler in self.upscalers.items():
            for indices in groups.values():
                stack = np.stack([lrs[i] for i in indices])
                lr_batch = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div_(255)
                start = time.perf_counter()
                sr_batch = upscaler.upscale_tensor(lr_batch)
                per_image = (time.perf_counter() - start) * 1e3 / len(indices)
                for i, sr in zip(indices, _to_uint8(sr_batch), strict=True):
                    images[method][i] = sr
                    millis[method][i] = per_image
        return images, millis

    def _lpips(self, sr: np.ndarray, hr: np.ndarray) -> float:
        if self.lpips is None:
            return float("nan")
        to_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
        return float(self.lpips(to_tensor(sr), to_tensor(hr)).item())

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``{id, hr, lr}`` columns → long-format rows ``{id, method, <metrics>, lpips, ms_per_image}``."""
        ids = [str(value) for value in batch["id"]]
        hrs = [decode_png(bytes(value)) for value in batch["hr"]]
        lrs = [decode_png(bytes(value)) for value in batch["lr"]]
        images, millis = self.super_resolve(lrs)
        rows: dict[str, list[Any]] = {
            key: [] for key in ("id", "method", *METRIC_NAMES, *EXTRA_METRICS, "lpips", "ms_per_image")
        }
        for method in images:
            for index, image_id in enumerate(ids):
                sr, hr = images[method][index], hrs[index]
                if sr.shape != hr.shape:
                    raise DpsrganError(
                        f"test image {image_id}: SR {sr.shape} vs HR {hr.shape}; "
                        "the shards' LR must be HR/scale (re-run the degrade stage)"
                    )
                scores = image_metrics(sr, hr, self.settings.crop_border)
                rows["id"].append(image_id)
                rows["method"].append(method)
                for name in METRIC_NAMES:
                    rows[name].append(scores[name])
                rows["hf_ratio"].append(high_frequency_ratio(sr, hr, self.settings.crop_border))
                rows["color_shift"].append(color_shift(sr, hr, self.settings.crop_border))
                rows["lpips"].append(self._lpips(sr, hr))
                rows["ms_per_image"].append(millis[method][index])
        return {
            key: np.asarray(values, dtype=object if key in ("id", "method") else np.float64)
            for key, values in rows.items()
        }


def load_generators(checkpoints: Mapping[str, str], scale: int) -> dict[str, torch.nn.Module]:
    """Every method's generator (``pretrained`` and ``gan`` required, the baselines optional),
    checked against ``degrade.scale``."""
    missing = set(REQUIRED) - set(checkpoints)
    if missing:
        raise DpsrganError(f"evaluation needs checkpoints for {sorted(missing)}")
    unknown = set(checkpoints) - set(METHODS[1:])
    if unknown:
        raise DpsrganError(f"unknown evaluation methods {sorted(unknown)}; valid: {', '.join(METHODS[1:])}")
    generators = {}
    for method, path in checkpoints.items():
        generators[method] = load_generator(path)
        found = generators[method].config["scale"]
        if found != scale:
            raise DpsrganError(
                f"{method} checkpoint {path} upscales x{found}, but degrade.scale is {scale}; "
                "retrain or fix degrade.scale"
            )
    return generators


def evaluate_split(
    split_dir: Path,
    generators: Mapping[str, torch.nn.Module],
    settings: EvalSettings,
    *,
    batch_size: int,
    use_ray: bool = True,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    cpus_per_read: float = 0.5,
) -> pd.DataFrame:
    """Per-image metrics of every method on one split, long format (one row per image × method).

    ``generators``: from :func:`load_generators`. ``use_ray``: Ray Data actors (an autoscaling
    pool of up to ``actors``, ``cpus_per_actor`` each) on the Ray the caller initialised, fed by
    reads of ``cpus_per_read`` on this node; else in this process (tiny runs and tests).
    """
    shards = shard_paths(split_dir)
    if not shards:
        raise DpsrganError(f"{split_dir}: no Parquet shards; run the degrade stage (dvc repro degrade)")
    if use_ray:
        import ray.data

        from dpsrgan.data.placement import SPREAD, read_local_parquet, this_node

        ray.data.DataContext.get_current().enable_progress_bars = False
        dataset = read_local_parquet(shards, ["id", "hr", "lr"], node_id=this_node(), num_cpus=cpus_per_read)
        results = dataset.map_batches(
            BatchEvaluator,
            fn_constructor_kwargs={"generators": generators, "settings": settings},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=cpus_per_actor,
            # A lost actor fails the stage (dvc repro re-runs it) instead of being restarted:
            # Ray keeps a map actor's constructor arguments in the object store and, for a
            # restartable actor, logs an ERROR that a restart could find them gone.
            max_restarts=0,
            **SPREAD,
        )
        frame = results.to_pandas()
    else:
        evaluator = BatchEvaluator(generators, settings)
        frame = pd.concat(
            [pd.DataFrame(evaluator(batch)) for batch in iter_encoded_batches(split_dir, batch_size)],
            ignore_index=True,
        )
    # Plain numpy dtypes whichever path ran (Ray hands back Arrow-backed columns, where NaN is
    # a value, not a missing one).
    frame = frame.astype(
        {"id": str, **{name: np.float64 for name in (*METRIC_NAMES, "lpips", "ms_per_image")}}
    )
    present = [method for method in METHODS if method == "bicubic" or method in generators]
    frame["method"] = pd.Categorical(frame["method"].astype(str), categories=present, ordered=True)
    return frame.sort_values(["method", "id"], kind="stable").reset_index(drop=True)


def generator_costs(generators: Mapping[str, torch.nn.Module], scale: int) -> dict[str, dict[str, float]]:
    """Per method: generator parameters (``num_params``) and conv GFLOPs per output megapixel
    (``gflops_per_output_mp``); bicubic has no parameters (its few FLOPs are not counted)."""
    from dpsrgan.models.complexity import gflops_per_output_megapixel, parameter_count

    costs: dict[str, dict[str, float]] = {"bicubic": {"num_params": 0}}
    for method, generator in generators.items():
        costs[method] = {
            "num_params": parameter_count(generator),
            "gflops_per_output_mp": round(gflops_per_output_megapixel(generator, scale), 2),
        }
    return costs


def discriminator_params(checkpoints: Mapping[str, str]) -> dict[str, int]:
    """Per method: parameters of the discriminator it was trained with, from its checkpoint
    (SRGAN's as built for the training crop: its dense head grows with H×W)."""
    from dpsrgan.checkpoint import read_checkpoint
    from dpsrgan.models.complexity import parameter_count
    from dpsrgan.models.discriminator import build_discriminator

    return {
        method: parameter_count(build_discriminator(read_checkpoint(path)["architecture"]))
        for method, path in checkpoints.items()
    }


def published_parameter_counts() -> dict[str, int]:
    """The published layouts counted the same way (64 channels, 16 blocks, ×4, RGB; SRGAN's D at
    its paper's 96×96 HR input; the PatchGAN's count does not depend on the input size)."""
    from dpsrgan.models.complexity import parameter_count
    from dpsrgan.models.discriminator import Discriminator, srgan_discriminator_parameter_count
    from dpsrgan.models.generator import Generator
    from dpsrgan.models.srresnet import srresnet_parameter_count

    counts = {
        "srresnet_g": srresnet_parameter_count(),
        "srgan_d_96": srgan_discriminator_parameter_count(96, 96),
        "dpsrgan_g": parameter_count(Generator()),
        "dpsrgan_d": parameter_count(Discriminator()),
    }
    counts["srgan_total_96"] = counts["srresnet_g"] + counts["srgan_d_96"]
    counts["dpsrgan_total"] = counts["dpsrgan_g"] + counts["dpsrgan_d"]
    return counts


def summarize(
    per_image: pd.DataFrame,
    costs: Mapping[str, Mapping[str, float]],
    lpips_note: str,
    off: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """DVC metrics: per evaluated method the mean of every metric, its PSNR-Y gain over bicubic
    on the same images (``psnr_y_gain``: what the promotion gate reads with no champion), ms per
    image and its ``costs`` (parameter counts, GFLOPs); per method that is ``off`` (a baseline
    that was not trained) only its ``status``: no number is made up for it.

    LPIPS appears per method only when it was computed; otherwise ``lpips_note`` says why.
    """
    summary: dict[str, Any] = {"test_images": int(per_image["id"].nunique())}
    has_lpips = bool(per_image["lpips"].notna().any())
    bicubic_psnr_y = per_image[per_image["method"] == "bicubic"].set_index("id")["psnr_y"]
    evaluated = set(per_image["method"].astype(str))
    for method in METHODS:
        if method in (off or {}):
            summary[method] = {"status": off[method]}
            continue
        if method not in evaluated:
            continue
        rows = per_image[per_image["method"] == method]
        entry = {name: round(float(rows[name].mean()), 4) for name in (*METRIC_NAMES, *EXTRA_METRICS)}
        gains = rows.set_index("id")["psnr_y"] - bicubic_psnr_y
        entry["psnr_y_gain"] = round(float(gains.mean()), 4)
        if has_lpips:
            entry["lpips"] = round(float(rows["lpips"].mean()), 4)
        entry["ms_per_image"] = round(float(rows["ms_per_image"].mean()), 3)
        entry.update(costs.get(method, {}))
        summary[method] = entry
    summary["lpips_note"] = "computed" if has_lpips else lpips_note
    return summary


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def paper_table(summary: Mapping[str, Any], dataset: str, published: Mapping[str, int] | None = None) -> str:
    """A Markdown table laid out like the paper's (Method | PSNR | SSIM | MOS), ours beside it.

    One row per method: bicubic, SRResNet and SRGAN (measured when the baselines were trained,
    else marked with their status and no numbers), our pretrained generator (DPSRGAN's dilated G
    after pixel-loss pretraining: its own row, no paper numbers, it is not SRResNet), DPSRGAN.
    ``published``: :func:`published_parameter_counts`, for the note on how counts are taken.
    """
    lpips_col = "lpips" in summary.get("gan", {})
    header = (
        "| Method | Paper PSNR | Paper SSIM | Paper MOS | PSNR-Y | vs bicubic | SSIM-Y | PSNR-RGB | SSIM-RGB |"
        + (" LPIPS |" if lpips_col else "")
        + " HF energy | Colour shift | G params | D params | GFLOPs/MP | ms/image |"
    )
    lines = [
        f"Test split: {summary['test_images']} images ({dataset}); ×4; "
        "PSNR/SSIM with a border crop of the scale.",
        "Paper numbers: CelebA ×4 (PSNR dB / SSIM / MOS; the paper does not say Y or RGB). "
        "MOS needs human raters: there are none here, so it is not measured"
        + (
            "; LPIPS (a learned full-reference perceptual distance, lower is closer to HR) is "
            "shown as what it is, not as a MOS."
            if lpips_col
            else "."
        ),
        "vs bicubic: mean PSNR-Y gain over bicubic on the same images (dB). HF energy: Laplacian "
        "energy of the luma relative to HR (1 = as much fine detail as HR; blur < 1). Colour shift: "
        "largest per-channel mean difference to HR, 0–255.",
        "Params: trainable parameters; G the generator alone, D the discriminator it was trained "
        "with, as trained (SRGAN's dense head is sized for the GAN training crop: "
        "512·⌈H/16⌉·⌈W/16⌉ inputs; the PatchGAN's count does not depend on the size). "
        "GFLOPs/MP: the generator's conv FLOPs per megapixel of output. ms/image: forward pass, "
        "fp32, on the evaluating Ray actor (a rough guide).",
    ]
    if published:
        lines.append(
            "Published layouts counted the same way (64 channels, 16 blocks, ×4; SRGAN's D at its "
            f"paper's 96² input): SRResNet G {published['srresnet_g']:,} + SRGAN D "
            f"{published['srgan_d_96']:,} = {published['srgan_total_96']:,}; DPSRGAN G "
            f"{published['dpsrgan_g']:,} + PatchGAN D {published['dpsrgan_d']:,} = "
            f"{published['dpsrgan_total']:,}. The paper's ~17M vs ~5M does not say how it counted."
        )
    lines += ["", header, "|" + "---|" * (header.count("|") - 1)]
    for method in METHODS:
        row = summary.get(method)
        if row is None:
            continue
        paper = PAPER_CELEBA.get(PAPER_ROWS.get(method, ""), {})
        name = f"{LABELS[method]} — {row['status']}" if "status" in row else LABELS[method]
        gain = row.get("psnr_y_gain")
        cells = [
            name,
            _fmt(paper.get("psnr"), 2),
            _fmt(paper.get("ssim"), 2),
            _fmt(paper.get("mos"), 2),
            _fmt(row.get("psnr_y"), 2),
            "–" if gain is None or method == "bicubic" else f"{gain:+.2f}",
            _fmt(row.get("ssim_y"), 4),
            _fmt(row.get("psnr_rgb"), 2),
            _fmt(row.get("ssim_rgb"), 4),
        ]
        if lpips_col:
            cells.append(_fmt(row.get("lpips"), 4))
        cells += [_fmt(row.get("hf_ratio"), 3), _fmt(row.get("color_shift"), 2)]
        for key in ("num_params", "d_params"):
            cells.append("–" if row.get(key) is None else f"{row[key]:,}")
        cells += [_fmt(row.get("gflops_per_output_mp"), 1), _fmt(row.get("ms_per_image"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    if not lpips_col:
        lines += ["", f"LPIPS {summary.get('lpips_note', 'skipped')}"]
    return "\n".join(lines) + "\n"


def sample_rows(split_dir: Path, count: int) -> dict[str, list[Any]]:
    """The first ``count`` rows of a split (for the sample grid), in shard order."""
    rows: dict[str, list[Any]] = {"id": [], "hr": [], "lr": []}
    for batch in iter_encoded_batches(split_dir, count):
        for key in rows:
            rows[key].extend(batch[key])
        if len(rows["id"]) >= count:
            break
    return {key: values[:count] for key, values in rows.items()}


GRID_CROP = 192
"""HR pixels per side of the centre window each grid cell shows at 1:1 (whole test photos
would be scaled down by the viewer, hiding exactly the detail the methods differ in)."""


def sample_grid(evaluator: BatchEvaluator, rows: Mapping[str, Sequence[Any]]) -> Image.Image:
    """One row per image: LR (nearest-upscaled) | bicubic | [SRResNet | SRGAN |] pretrained |
    DPSRGAN | HR, labelled; each cell the same centre window of at most :data:`GRID_CROP`² HR
    pixels, at 1:1."""
    lrs = [decode_png(bytes(value)) for value in rows["lr"]]
    hrs = [decode_png(bytes(value)) for value in rows["hr"]]
    images, _ = evaluator.super_resolve(lrs)
    titles = ["LR", *(GRID_TITLES[method] for method in images), "HR"]
    gap, header = 4, 16
    windows = [_centre_window(hr.shape[:2], evaluator.settings.scale) for hr in hrs]
    cell_w = max(64, *(right - left for (_, _, left, right) in windows))  # room for the column titles
    heights = [bottom - top for (top, bottom, _, _) in windows]
    canvas = Image.new(
        "RGB", (len(titles) * (cell_w + gap) + gap, header + sum(heights) + gap * (len(hrs) + 1)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        draw.text((gap + column * (cell_w + gap), 2), title, fill="black")
    y = header + gap
    for index, hr in enumerate(hrs):
        top, bottom, left, right = windows[index]
        lr_big = Image.fromarray(lrs[index]).resize((hr.shape[1], hr.shape[0]), Image.Resampling.NEAREST)
        cells = [np.asarray(lr_big), *(images[m][index] for m in images), hr]
        for column, cell in enumerate(cells):
            canvas.paste(Image.fromarray(np.ascontiguousarray(cell[top:bottom, left:right])),
                         (gap + column * (cell_w + gap), y))
        y += heights[index] + gap
    return canvas


def _centre_window(shape: tuple[int, int], scale: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the centre window, aligned to LR pixels."""
    height, width = shape
    side_h, side_w = min(height, GRID_CROP), min(width, GRID_CROP)
    top = (height - side_h) // 2 // scale * scale
    left = (width - side_w) // 2 // scale * scale
    return top, top + side_h, left, left + side_w


@dataclass(frozen=True)
class EvaluationReport:
    """Everything the evaluate stage writes."""

    per_image: pd.DataFrame
    summary: dict[str, Any]
    table: str
    grid: Image.Image


def evaluate(
    split_dir: Path,
    checkpoints: Mapping[str, str],
    settings: EvalSettings,
    *,
    discriminators: Mapping[str, str] | None = None,
    off: Mapping[str, str] | None = None,
    batch_size: int,
    grid_images: int,
    dataset: str,
    use_ray: bool = True,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    cpus_per_read: float = 0.5,
) -> EvaluationReport:
    """Per-image metrics (Ray Data or in-process), their summary, the paper-style table and the
    sample grid (the grid re-runs :class:`BatchEvaluator` on the first ``grid_images`` rows).

    ``checkpoints``: method → generator checkpoint (``pretrained``, ``gan``, and the trained
    baselines); ``discriminators``: method → the discriminator checkpoint it was trained with
    (for the D parameter count); ``off``: baseline → why it was not trained (a marked row)."""
    generators = load_generators(checkpoints, settings.scale)
    per_image = evaluate_split(
        split_dir,
        generators,
        settings,
        batch_size=batch_size,
        use_ray=use_ray,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        cpus_per_read=cpus_per_read,
    )
    lpips_note = lpips_status()[1] if settings.lpips else "disabled (evaluate.lpips: false)"
    costs = generator_costs(generators, settings.scale)
    for method, count in discriminator_params(discriminators or {}).items():
        costs.setdefault(method, {})["d_params"] = count
    summary = summarize(per_image, costs, lpips_note, off)
    summary["published_parameter_counts"] = published_parameter_counts()
    grid_evaluator = BatchEvaluator(generators, replace(settings, lpips=False))
    grid = sample_grid(grid_evaluator, sample_rows(split_dir, grid_images))
    table = paper_table(summary, dataset, summary["published_parameter_counts"])
    return EvaluationReport(per_image, summary, table, grid)
