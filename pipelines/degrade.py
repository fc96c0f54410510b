"""Degrade stage: raw images → HR/LR pairs, sharded Parquet per split, plus a manifest.

    python -m pipelines.degrade --raw data/raw --out data/processed [--workers N]

Writes ``OUT/{train,valid,test}/part-NNNNN.parquet`` and ``OUT/manifest.json`` (the shared data
contract, see ``dpsrgan.data.shards``). Runs on all local cores by default; when a Ray cluster is
configured (``RAY_ADDRESS`` or ``ray.address``) the work goes to Ray Data instead. Where it runs
does not change the bytes written, so neither is a DVC param.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dpsrgan.config import Params
from pipelines._stage import run_stage, stage_parser


def run(args: argparse.Namespace, params: Params) -> None:
    from dpsrgan.data.parallel import available_cpus
    from dpsrgan.data.prepare import prepare

    prepare(
        params.data,
        params.degrade,
        args.raw,
        args.out,
        workers=args.workers or available_cpus(),
        ray_address=params.ray.address or os.environ.get("RAY_ADDRESS"),
        cpus_per_read=params.ray.cpus_per_data_task,
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", type=Path, required=True, help="raw-data directory (download stage output)")
    parser.add_argument("--out", type=Path, required=True, help="processed-data directory to write")
    parser.add_argument("--workers", type=int, default=0, help="local processes (default: all cores)")
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
