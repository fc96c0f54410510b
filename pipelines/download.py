"""Download stage: fetch the configured data source into the raw-data directory.

    python -m pipelines.download --cache-dir data/downloads --out data/raw

``data.source=celeba`` fetches the official ``img_align_celeba.zip`` and
``list_eval_partition.txt`` from ``data.uri`` (gdrive | s3://… | https://… | a local zip or
directory), verifies their MD5s (``data.md5``) and extracts the archive into ``OUT/celeba/``;
``data.source=folder`` copies (or extracts) an image tree into ``OUT/images/``. Remote files are
kept in ``--cache-dir`` so a rerun does not fetch them again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpsrgan.config import Params
from pipelines._stage import run_stage, stage_parser


def run(args: argparse.Namespace, params: Params) -> None:
    from dpsrgan.data.raw import download

    download(params.data, args.out, args.cache_dir)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, required=True, help="where remote files are kept between runs")
    parser.add_argument("--out", type=Path, required=True, help="raw-data directory to write")
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
