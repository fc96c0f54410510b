"""``dpsrgan submit``: run a pipeline command on a Ray cluster and stream its logs.

    dpsrgan submit --address http://127.0.0.1:8265 -- dvc repro
    dpsrgan submit --fetch-outs -- dvc repro train_gan      # outs come back via the DVC remote
    dpsrgan submit --no-wait -- python -m pipelines.pretrain --params params.yaml

The repo root is the job's working directory (minus .git, data, DVC cache, venvs, outputs).
MLFLOW_TRACKING_URI and non-secret AWS settings are forwarded from this environment;
credentials never are (Ray logs a job's env_vars): the cluster has its own. The exit code is
the job's: 0 when it SUCCEEDED, 1 when it FAILED or was STOPPED.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "submit",
        help="run a stage or `dvc repro` on a Ray cluster, stream its logs, fetch its outs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--address",
        help="Ray job server URL (default: RAY_API_SERVER_ADDRESS, then RAY_ADDRESS)",
    )
    parser.add_argument(
        "--working-dir",
        type=Path,
        default=None,
        help="project root to ship (default: the repo containing the current directory)",
    )
    parser.add_argument(
        "--fetch-outs",
        action="store_true",
        help="after `dvc repro` (the cluster pushes its outs to the DVC remote): take the "
        "cluster's dvc.lock and `dvc pull` the outs here",
    )
    parser.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    parser.add_argument("--submission-id", help="job id (default: dpsrgan-<UTC time>-<random>)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="also forward this (non-secret) environment variable; repeatable",
    )
    parser.add_argument(
        "job_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help="the command to run on the cluster",
    )


def run(args: argparse.Namespace) -> int:
    from dpsrgan.cluster.submit import (
        SubmitRequest,
        find_repo_root,
        resolve_address,
        run_on_cluster,
    )

    command = list(args.job_command)
    if command[:1] == ["--"]:
        command = command[1:]
    repo_root = args.working_dir.resolve() if args.working_dir else find_repo_root(Path.cwd())
    request = SubmitRequest(
        command=tuple(command),
        address=resolve_address(args.address, os.environ),
        repo_root=repo_root,
        fetch_outs=args.fetch_outs,
        wait=not args.no_wait,
        submission_id=args.submission_id,
        extra_env=tuple(args.env),
    )
    return run_on_cluster(request)
