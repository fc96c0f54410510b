"""Pretrain stage: the generator alone with pixel MSE on Ray Train (the paper's initialisation).
With ``--arm srresnet``: the SRResNet baseline instead (dpsrgan.baselines; an 'off' record when
baselines.enabled is false).

    python -m pipelines.pretrain --data data/processed --out models/pretrain/generator.pt \
        --history plots/pretrain/history.csv --metrics metrics/pretrain.json

Writes the generator checkpoint (``dpsrgan.load_generator`` reads it), one CSV row per epoch
(losses, validation PSNR/SSIM-Y, samples/s: ``dvc plots``) and the final metrics JSON (``dvc
metrics``). Checkpoints go to Ray Train storage (``ray.storage_path``); a killed run resumes
from the last one when re-run with the same data and params.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpsrgan.config import Params
from pipelines._stage import run_stage, stage_parser


def run(args: argparse.Namespace, params: Params) -> None:
    from dpsrgan.baselines import params_or_stand_down, write_arm_record

    params = params_or_stand_down(params, args.arm, args.out, args.metrics)
    if params is None:  # a baseline arm with baselines.enabled: false: nothing to train
        return
    from dpsrgan.training.outputs import (
        export_generator,
        final_metrics,
        write_history_csv,
        write_metrics_json,
    )
    from dpsrgan.training.trainer import train_stage

    result = train_stage("pretrain", params, args.data, arm=args.arm or "dpsrgan")
    export_generator(result.state, args.out, **result.provenance())
    write_history_csv(result.state["progress"]["history"], args.history)
    write_metrics_json(final_metrics(result.state), args.metrics)
    if args.arm is not None:
        write_arm_record(args.out.parent, args.arm, True, **result.provenance())


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the degrade stage's output directory")
    parser.add_argument("--out", type=Path, required=True, help="generator checkpoint to write")
    parser.add_argument("--history", type=Path, required=True, help="per-epoch metrics CSV to write")
    parser.add_argument("--metrics", type=Path, required=True, help="final metrics JSON to write")
    parser.add_argument(
        "--arm",
        choices=["srresnet"],
        help="train this baseline arm (dpsrgan.baselines) instead of DPSRGAN; writes arm.json beside --out",
    )
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
