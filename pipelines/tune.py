"""Tune stage: Ray Tune (ASHA) over the adversarial weight, each trial a short GAN fine-tune.

    python -m pipelines.tune --data data/processed --pretrained PRETRAINED.pt \
        --best outputs/tune/best.json --results outputs/tune/results.csv --plot outputs/tune/objective.png

Writes the best config (``adv_weight``, ``lr_g``, ``lr_d`` and the evidence: train_gan reads it),
one CSV row per trial (knobs, epochs reached, validation PSNR-Y / VGG distance, objective,
status) and a plot of the objective against the adversarial weight. The sweep is an MLflow
parent run with one child run per trial. The objective is ``tune.objective``; see
``dpsrgan.tuning`` for why the default bounds PSNR-Y below by the pretrained generator's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dpsrgan.config import Params
from pipelines._stage import run_stage, stage_parser


def run(args: argparse.Namespace, params: Params) -> None:
    from dpsrgan.atomic_io import (
        write_bytes_atomic,
        write_json_atomic,
        write_text_atomic,
    )
    from dpsrgan.tuning.sweep import run_sweep

    result = run_sweep(params, args.data, args.pretrained)
    write_json_atomic(args.best, dataclasses.asdict(result.best))
    write_text_atomic(args.results, result.table.to_csv(index=False, float_format="%.6g"))
    write_bytes_atomic(args.plot, result.plot_png)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the degrade stage's output directory")
    parser.add_argument("--pretrained", type=Path, required=True, help="the pretrain stage's generator")
    parser.add_argument(
        "--best", type=Path, required=True, help="best config JSON to write (train_gan reads it)"
    )
    parser.add_argument("--results", type=Path, required=True, help="per-trial results CSV to write")
    parser.add_argument(
        "--plot", type=Path, required=True, help="objective vs adversarial weight PNG to write"
    )
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
