"""``dpsrgan info CHECKPOINT``: what a generator checkpoint holds.

    dpsrgan info models/gan/generator.pt
    dpsrgan info models/gan/generator.pt --json

Prints the architecture, the generator's receptive field (and so the smallest exact tile pad for
``dpsrgan upscale``), parameter counts next to SRGAN's at the same 128×128 training size (its
discriminator's dense head is most of the paper's "~5M vs ~17M" gap), and the provenance saved
with the weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# The paper's training crop: discriminator sizes are compared at this HR size.
COMPARE_SIZE = 128


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "info",
        help="architecture, parameter counts and provenance of a generator checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="a file written by dpsrgan.save_generator")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    summary = summarize(args.checkpoint)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=False))
    else:
        print(_as_text(summary))
    return 0


def summarize(path: Path) -> dict[str, Any]:
    """The checkpoint's architecture, receptive field, parameter counts and provenance."""
    from dpsrgan.checkpoint import read_generator_checkpoint
    from dpsrgan.models.discriminator import (
        Discriminator,
        srgan_discriminator_parameter_count,
    )
    from dpsrgan.models.generator import Generator

    checkpoint = read_generator_checkpoint(path)
    generator = Generator.from_config(checkpoint["architecture"])
    discriminator = Discriminator(in_channels=generator.config["in_channels"])
    g_params = _count(generator)
    srresnet_params = sum(p.numel() for name, p in generator.named_parameters() if ".dilated." not in name)
    d_params = _count(discriminator)
    srgan_d_params = srgan_discriminator_parameter_count(
        COMPARE_SIZE, COMPARE_SIZE, in_channels=generator.config["in_channels"]
    )
    return {
        "checkpoint": str(path),
        "architecture": checkpoint["architecture"],
        "receptive_field_lr_px": generator.receptive_field,
        "min_exact_tile_pad_lr_px": generator.receptive_radius,
        "parameters": {
            "generator": g_params,
            "discriminator": d_params,
            "dpsrgan_total": g_params + d_params,
            "srresnet_generator": srresnet_params,
            "srgan_discriminator": srgan_d_params,
            "srgan_total": srresnet_params + srgan_d_params,
            "compared_at_hr_size": [COMPARE_SIZE, COMPARE_SIZE],
            "discriminator_patch_grid": list(discriminator.patch_grid(COMPARE_SIZE, COMPARE_SIZE)),
        },
        "provenance": checkpoint.get("provenance", {}),
        "saved_with": checkpoint.get("saved_with", {}),
    }


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _as_text(summary: dict[str, Any]) -> str:
    arch, params = summary["architecture"], summary["parameters"]
    size = "x".join(map(str, params["compared_at_hr_size"]))
    grid = "x".join(map(str, params["discriminator_patch_grid"]))
    lines = [
        f"checkpoint       {summary['checkpoint']}",
        "architecture     Generator(" + ", ".join(f"{key}={value}" for key, value in arch.items()) + ")",
        f"receptive field  {summary['receptive_field_lr_px']} LR px "
        f"(tiles need >= {summary['min_exact_tile_pad_lr_px']} LR px of pad to match whole-image output)",
        f"parameters       (discriminators at {size} HR input)",
        f"  {'DPSRGAN' if arch.get('dilation') is not None else 'SRResNet':<8} generator                     "
        f"{params['generator']:>12,}",  # dilation None: an SRResNet checkpoint (the baseline arm)
        f"           PatchGAN discriminator        {params['discriminator']:>12,}   ({grid} logit map)",
        f"           total                         {params['dpsrgan_total']:>12,}",
        f"  SRGAN    SRResNet generator            {params['srresnet_generator']:>12,}",
        f"           discriminator with dense head {params['srgan_discriminator']:>12,}",
        f"           total                         {params['srgan_total']:>12,}",
        "provenance",
    ]
    provenance = summary["provenance"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in provenance.items()] or ["  (none)"]
    saved_with = summary["saved_with"]
    if saved_with:
        lines.append("saved with       " + ", ".join(f"{key} {value}" for key, value in saved_with.items()))
    return "\n".join(lines)
