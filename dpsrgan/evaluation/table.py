"""The evaluation table laid out like the paper's (Method | PSNR | SSIM | MOS), our measurements
beside it: a reader checks the reproduction in one glance, and the notes above the table say how
every column was taken (the paper says little about it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dpsrgan.evaluation.methods import METHODS

LABELS = {
    "bicubic": "Bicubic",
    "srresnet": "SRResNet",
    "srgan": "SRGAN",
    "pretrained": "Pretrained G (pixel loss)",
    "gan": "DPSRGAN",
}
PAPER_ROWS = {"srresnet": "SRResNet", "srgan": "SRGAN", "gan": "DPSRGAN"}
"""Our method → the paper's row it is measured beside (our pretrained G is not SRResNet: no row)."""
PAPER_CELEBA = {
    "DPSRGAN": {"psnr": 32.24, "ssim": 0.86, "mos": 3.91},
    "SRGAN": {"psnr": 30.98, "ssim": 0.82, "mos": 3.62},
    "SRResNet": {"psnr": 32.37, "ssim": 0.88, "mos": 3.02},
}
"""The paper's CelebA ×4 table (PSNR dB / SSIM / MOS)."""


def paper_table(summary: Mapping[str, Any], dataset: str, published: Mapping[str, int] | None = None) -> str:
    """A Markdown table laid out like the paper's (Method | PSNR | SSIM | MOS), ours beside it.

    One row per method: bicubic, SRResNet and SRGAN (measured when the baselines were trained,
    else marked with their status and no numbers), our pretrained generator (DPSRGAN's dilated G
    after pixel-loss pretraining: its own row, no paper numbers, it is not SRResNet), DPSRGAN.
    ``published``: :func:`~dpsrgan.evaluation.costs.published_parameter_counts`, for the note on
    how counts are taken.
    """
    lpips_col = "lpips" in summary.get("gan", {})
    header = _header(lpips_col)
    lines = _notes(summary["test_images"], dataset, lpips_col)
    if published:
        lines.append(_published_note(published))
    lines += ["", header, "|" + "---|" * (header.count("|") - 1)]
    for method in METHODS:
        row = summary.get(method)
        if row is not None:
            lines.append(_row(method, row, lpips_col))
    if not lpips_col:
        lines += ["", f"LPIPS {summary.get('lpips_note', 'skipped')}"]
    return "\n".join(lines) + "\n"


def _header(lpips_col: bool) -> str:
    """The column titles: the paper's three, ours, then the costs."""
    return (
        "| Method | Paper PSNR | Paper SSIM | Paper MOS | PSNR-Y | vs bicubic | SSIM-Y | PSNR-RGB | SSIM-RGB |"
        + (" LPIPS |" if lpips_col else "")
        + " HF energy | Colour shift mean / worst | G params | D params | GFLOPs/MP | ms/image |"
    )


def _notes(test_images: int, dataset: str, lpips_col: bool) -> list[str]:
    """The lines above the table: what was measured, and how each column was taken."""
    return [
        f"Test split: {test_images} images ({dataset}); ×4; "
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
        "largest per-channel mean difference to HR, 0–255, the mean over the images and the worst image.",
        "Params: trainable parameters; G the generator alone, D the discriminator it was trained "
        "with, as trained (SRGAN's dense head is sized for the GAN training crop: "
        "512·⌈H/16⌉·⌈W/16⌉ inputs; the PatchGAN's count does not depend on the size). "
        "GFLOPs/MP: the generator's conv FLOPs per megapixel of output. ms/image: forward pass, "
        "fp32, on the evaluating Ray actor (a rough guide).",
    ]


def _published_note(published: Mapping[str, int]) -> str:
    """The published layouts' parameter counts, taken the way ours are."""
    return (
        "Published layouts counted the same way (64 channels, 16 blocks, ×4; SRGAN's D at its "
        f"paper's 96² input): SRResNet G {published['srresnet_g']:,} + SRGAN D "
        f"{published['srgan_d_96']:,} = {published['srgan_total_96']:,}; DPSRGAN G "
        f"{published['dpsrgan_g']:,} + PatchGAN D {published['dpsrgan_d']:,} = "
        f"{published['dpsrgan_total']:,}. The paper's ~17M vs ~5M does not say how it counted."
    )


def _row(method: str, row: Mapping[str, Any], lpips_col: bool) -> str:
    """One method's line: the paper's numbers (when it has a row there), then ours; a method
    that is off shows its status and dashes."""
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
    shift = f"{_fmt(row.get('color_shift'), 2)} / {_fmt(row.get('color_shift_worst'), 2)}"
    cells += [_fmt(row.get("hf_ratio"), 3), "–" if "status" in row else shift]
    for key in ("num_params", "d_params"):
        cells.append("–" if row.get(key) is None else f"{row[key]:,}")
    cells += [_fmt(row.get("gflops_per_output_mp"), 1), _fmt(row.get("ms_per_image"), 2)]
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float | None, digits: int) -> str:
    """A number with ``digits`` decimals; a dash for a missing or NaN one."""
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"
