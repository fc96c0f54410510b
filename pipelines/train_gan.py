"""GAN stage: generator + conditional PatchGAN discriminator on Ray Train, from the pretrained G.
With ``--arm srgan``: the SRGAN baseline instead (dpsrgan.baselines; an 'off' record when
baselines.enabled is false).

    python -m pipelines.train_gan --data data/processed --pretrained models/pretrain/generator.pt \
        [--best-config outputs/tune/best.json] --out models/gan/generator.pt \
        --out-discriminator models/gan/discriminator.pt \
        --history plots/train_gan/history.csv --metrics metrics/train_gan.json

Each iteration is one discriminator step then one generator step (perceptual + loss.adv_weight ·
adversarial). Writes the evaluated generator (the EMA of its weights when gan.ema_decay > 0),
the discriminator, one CSV row per epoch (losses, D(real)/D(fake), validation PSNR/SSIM-Y) and
the final metrics JSON. A killed run resumes from its last checkpoint when re-run unchanged.
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
        export_discriminator,
        export_generator,
        final_metrics,
        write_history_csv,
        write_metrics_json,
    )
    from dpsrgan.training.trainer import train_stage

    if args.best_config is not None:  # the tune stage's choice of loss.adv_weight, gan.lr_g, gan.lr_d
        from dpsrgan.tuning.best import apply_best_config, read_best_config

        params = apply_best_config(params, read_best_config(args.best_config))
    result = train_stage("gan", params, args.data, pretrained=args.pretrained, arm=args.arm or "dpsrgan")
    export_generator(result.state, args.out, **result.provenance())
    export_discriminator(result.state, args.out_discriminator, **result.provenance())
    write_history_csv(result.state["progress"]["history"], args.history)
    write_metrics_json(final_metrics(result.state), args.metrics)
    if args.arm is not None:
        write_arm_record(args.out.parent, args.arm, True, **result.provenance())


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the degrade stage's output directory")
    parser.add_argument("--pretrained", type=Path, required=True, help="the pretrain stage's generator")
    parser.add_argument(
        "--best-config", type=Path, help="the tune stage's best.json (overrides the tuned params)"
    )
    parser.add_argument("--out", type=Path, required=True, help="generator checkpoint to write")
    parser.add_argument(
        "--out-discriminator", type=Path, required=True, help="discriminator checkpoint to write"
    )
    parser.add_argument("--history", type=Path, required=True, help="per-epoch metrics CSV to write")
    parser.add_argument("--metrics", type=Path, required=True, help="final metrics JSON to write")
    parser.add_argument(
        "--arm",
        choices=["srgan"],
        help="train this baseline arm (dpsrgan.baselines) instead of DPSRGAN; writes arm.json beside --out",
    )
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
