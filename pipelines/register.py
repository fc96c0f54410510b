"""Register stage: the GAN generator → a new MLflow model version with the ``challenger`` alias.

    python -m pipelines.register --gan GAN.pt --metrics outputs/evaluate/metrics.json \
        --report outputs/evaluate/table.md --out outputs/register/version.json

Logs, on one run of ``mlflow.experiment``: the evaluation metrics (the promotion gate reads
them), every param, lineage tags (git commit, the output hashes in dvc.lock) and the
evaluation table; then the pyfunc model (base64 image in, base64 PNG out), registered under
``mlflow.registered_model``. Tracking server: ``MLFLOW_TRACKING_URI`` (default MLflow's local
sqlite file). Writes the version it created to ``--out``. Promotion to ``champion`` is a
separate, gated step: ``dpsrgan promote``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from dpsrgan.config import Params
from pipelines._stage import run_stage, stage_parser


def run(args: argparse.Namespace, params: Params) -> None:
    from dpsrgan.atomic_io import write_json_atomic
    from dpsrgan.errors import DpsrganError
    from dpsrgan.lifecycle.registry import (
        lineage_tags,
        register_generator,
        registry_metrics,
    )
    from dpsrgan.lifecycle.tracking import flatten, resolve_tracking_uri

    try:
        summary = json.loads(args.metrics.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DpsrganError(
            f"{args.metrics}: unreadable evaluation metrics ({error}); run the evaluate stage"
        ) from None
    version = register_generator(
        args.gan,
        registered_model=params.mlflow.registered_model,
        experiment=params.mlflow.experiment,
        metrics=registry_metrics(summary),
        params=flatten(params.model_dump(mode="json")),
        tags={**lineage_tags("."), "stage": "register", "lpips_note": str(summary.get("lpips_note", ""))},
        artifacts=tuple(path for path in (args.metrics, args.report) if path is not None),
        tracking_uri=resolve_tracking_uri(),
    )
    write_json_atomic(
        args.out,
        {
            "name": version.name,
            "version": version.version,
            "run_id": version.run_id,
            "model_uri": version.model_uri,
            "alias_uri": version.challenger_uri,
        },
    )
    logging.getLogger("pipelines.register").info(
        "registered %s v%s as %s", version.name, version.version, version.challenger_uri
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--gan", type=Path, required=True, help="GAN generator checkpoint")
    parser.add_argument("--metrics", type=Path, required=True, help="evaluate stage's metrics JSON")
    parser.add_argument("--report", type=Path, help="evaluation table to attach to the run")
    parser.add_argument("--out", type=Path, required=True, help="JSON describing the new version")
    return run_stage(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
