"""Evaluate stage: bicubic, the SRResNet/SRGAN baselines, the pretrained generator and DPSRGAN on
the test split, beside the paper's numbers.

    python -m pipelines.evaluate --data data/processed --pretrained PRETRAINED.pt --gan GAN.pt \
        [--discriminator GAN_D.pt] [--baseline models/baselines/srresnet ...] \
        --metrics outputs/evaluate/metrics.json --per-image outputs/evaluate/per_image.csv \
        --table outputs/evaluate/table.md --grid outputs/evaluate/samples.png

Each ``--baseline`` is a baseline arm's output directory (dpsrgan.baselines): evaluated when its
``arm.json`` says it was trained, a marked row otherwise. Batch inference runs as Ray Data actors
(``map_batches``) on the cluster ``ray.address`` / ``RAY_ADDRESS`` names, else on a local Ray
started for the stage. Writes the DVC metrics (means per method, parameter counts, GFLOPs, ms per
image; LPIPS or the note why it was skipped), one CSV row per test image and method, the
paper-style Markdown table and the sample grid; then logs one MLflow parent run with a nested
run per arm (tag ``arm``) to ``mlflow.experiment``.
"""

from __future__ import annotations

import argparse
import io
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
    from dpsrgan.baselines import DISCRIMINATOR_FILE, GENERATOR_FILE, read_arm_record
    from dpsrgan.cluster.runtime import ray_session
    from dpsrgan.evaluation.evaluator import EvalSettings
    from dpsrgan.evaluation.report import evaluate
    from dpsrgan.lifecycle.tracking import log_comparison

    checkpoints = {"pretrained": str(args.pretrained), "gan": str(args.gan)}
    discriminators = {"gan": str(args.discriminator)} if args.discriminator else {}
    off, arm_artifacts = {}, {}
    for directory in args.baseline:
        record = read_arm_record(directory)
        arm = record["arm"]
        if not record["trained"]:
            off[arm] = record["reason"]
            continue
        checkpoints[arm] = str(directory / GENERATOR_FILE)
        arm_artifacts[arm] = [directory / GENERATOR_FILE]
        if (directory / DISCRIMINATOR_FILE).is_file():
            discriminators[arm] = str(directory / DISCRIMINATOR_FILE)
            arm_artifacts[arm].append(directory / DISCRIMINATOR_FILE)
    settings = EvalSettings(
        scale=params.degrade.scale,
        crop_border=params.evaluate.crop_border
        if params.evaluate.crop_border is not None
        else params.degrade.scale,
        tile=params.evaluate.tile,
        lpips=params.evaluate.lpips,
    )
    with ray_session(params.ray.address, log_to_driver=params.ray.log_to_driver):
        report = evaluate(
            args.data / "test",
            checkpoints,
            settings,
            discriminators=discriminators,
            off=off,
            batch_size=params.evaluate.batch_size,
            grid_images=params.evaluate.grid_images,
            dataset=f"{params.data.source} {params.data.uri}",
            actors=params.ray.num_workers,
            cpus_per_actor=params.ray.cpus_per_worker,
            cpus_per_read=params.ray.cpus_per_data_task,
        )
    write_json_atomic(args.metrics, report.summary)
    write_text_atomic(args.per_image, report.per_image.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(args.table, report.table)
    png = io.BytesIO()
    report.grid.save(png, format="PNG")
    write_bytes_atomic(args.grid, png.getvalue())
    log_comparison(
        params.mlflow.experiment,
        report.summary,
        [args.table, args.metrics, args.grid],
        arm_artifacts,
        {"baselines": "trained" if arm_artifacts else "off"},
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, required=True, help="processed-data directory (degrade output)")
    parser.add_argument("--pretrained", type=Path, required=True, help="pretrained generator checkpoint")
    parser.add_argument("--gan", type=Path, required=True, help="GAN generator checkpoint")
    parser.add_argument("--discriminator", type=Path, help="the GAN stage's discriminator (its parameter count)")
    parser.add_argument(
        "--baseline", type=Path, action="append", default=[], help="a baseline arm's output directory (repeatable)"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="DVC metrics JSON to write")
    parser.add_argument("--per-image", type=Path, required=True, help="per-image CSV to write")
    parser.add_argument("--table", type=Path, required=True, help="Markdown table to write")
    parser.add_argument("--grid", type=Path, required=True, help="sample grid PNG to write")
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
