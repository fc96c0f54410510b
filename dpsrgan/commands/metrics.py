"""dpsrgan metrics SR_DIR HR_DIR: per-image and mean PSNR/SSIM (Y and RGB) of two folders.

Images pair by identical file name, then by stem (0001.png <-> 0001.jpg). The pairs are
measured and printed; then every image without a partner is reported on stderr as one
"error:" line and the exit code is 1, so an incomplete SR folder never passes silently for a
complete one. No pair at all, an unreadable image or differing sizes are errors (exit 2).
--json prints one JSON document instead of the table; an infinite PSNR (identical images) is
written as null.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from dpsrgan.errors import DpsrganError

_HEADERS = {"psnr_y": "PSNR-Y", "ssim_y": "SSIM-Y", "psnr_rgb": "PSNR-RGB", "ssim_rgb": "SSIM-RGB"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "metrics",
        help="PSNR/SSIM (Y and RGB) of SR images against same-named HR images",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sr_dir", type=Path, metavar="SR_DIR", help="folder of super-resolved images")
    parser.add_argument("hr_dir", type=Path, metavar="HR_DIR", help="folder of ground-truth images")
    parser.add_argument(
        "--crop-border",
        type=int,
        default=4,
        metavar="N",
        help="pixels dropped from every side before measuring (SR convention: the scale; default 4)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _finite(value: float) -> float | None:
    """JSON has no infinity: identical images (PSNR = inf) become null."""
    return None if math.isinf(value) else round(value, 6)


def _table(frame: Any, means: dict[str, float]) -> str:
    width = max([len("mean"), *(len(name) for name in frame["image"])])
    lines = ["  ".join([f"{'image':<{width}}", *(f"{h:>9}" for h in _HEADERS.values())])]

    def row(name: str, values: dict[str, float]) -> str:
        cells = [f"{values[k]:>9.2f}" if k.startswith("psnr") else f"{values[k]:>9.4f}" for k in _HEADERS]
        return "  ".join([f"{name:<{width}}", *cells])

    lines += [row(r["image"], r) for r in frame.to_dict("records")]
    lines.append("-" * len(lines[0]))
    lines.append(row("mean", means))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dpsrgan.metrics import METRIC_NAMES, compare_pairs, match_folders

    if args.crop_border < 0:
        raise DpsrganError(f"--crop-border must be >= 0, got {args.crop_border}")
    match = match_folders(args.sr_dir, args.hr_dir)
    if not match.pairs:
        raise DpsrganError(
            f"no image in {args.sr_dir} has a same-named partner in {args.hr_dir}; check the folders"
        )
    frame = compare_pairs(match.pairs, args.crop_border)
    means = {name: float(frame[name].mean()) for name in METRIC_NAMES}
    if args.json:
        document = {
            "crop_border": args.crop_border,
            "images": [
                {"image": r["image"], **{k: _finite(r[k]) for k in METRIC_NAMES}} for r in frame.to_dict("records")
            ],
            "mean": {k: _finite(v) for k, v in means.items()},
            "sr_only": [p.name for p in match.sr_only],
            "hr_only": [p.name for p in match.hr_only],
        }
        print(json.dumps(document, indent=2))
    else:
        print(_table(frame, means))
    for path in match.sr_only:
        print(f"dpsrgan metrics: error: {path}: no same-named image in {args.hr_dir}", file=sys.stderr)
    for path in match.hr_only:
        print(f"dpsrgan metrics: error: {path}: no same-named image in {args.sr_dir}", file=sys.stderr)
    return 1 if match.sr_only or match.hr_only else 0
