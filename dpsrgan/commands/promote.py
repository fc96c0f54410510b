"""dpsrgan promote: move the registry's champion alias through the quality gate.

    dpsrgan promote                      # challenger -> champion if it passes the gate
    dpsrgan promote --version 7 --dry-run
    dpsrgan promote --gate psnr_y=0 --gate ssim_y=-0.001
    dpsrgan promote --force --reason "gate metric changed definition"
    dpsrgan promote --rollback

Exit codes: 0 promoted / rolled back (or a dry run that would be), 1 refused by the gate,
2 a user error (unreachable server, unknown model, bad arguments). The gate compares the
version's evaluation metrics (logged on its registering run) with the champion's: each metric's
improvement must be >= its margin (mlflow.gate_metrics; negative = tolerance). With no champion
yet, absolute bounds decide (mlflow.gate_absolute). Every decision is tagged on the version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpsrgan.errors import DpsrganError


def _metric_bound(text: str) -> tuple[str, float]:
    """``METRIC=NUMBER`` → (metric, number), for argparse."""
    metric, sep, number = text.partition("=")
    try:
        if not sep or not metric:
            raise ValueError
        return metric.strip(), float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected METRIC=NUMBER (e.g. psnr_y=-0.05), got {text!r}"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "promote",
        help="move the champion alias to a version that passes the quality gate",
        description=(__doc__ or "").split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", help="registered model (default: params mlflow.registered_model)")
    parser.add_argument("--version", help="version to promote (default: the current challenger)")
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="params file for mlflow.* defaults (optional if it does not exist)",
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    parser.add_argument(
        "--gate",
        action="append",
        type=_metric_bound,
        metavar="METRIC=DELTA",
        help="relative gate vs the champion; replaces mlflow.gate_metrics when given",
    )
    parser.add_argument(
        "--absolute",
        action="append",
        type=_metric_bound,
        metavar="METRIC=BOUND",
        help="gate when there is no champion; replaces mlflow.gate_absolute when given",
    )
    parser.add_argument("--dry-run", action="store_true", help="decide and print, change nothing")
    parser.add_argument(
        "--force", action="store_true", help="promote even if the gate fails (needs --reason)"
    )
    parser.add_argument("--reason", help="why: recorded on the version (required with --force)")
    parser.add_argument(
        "--rollback", action="store_true", help="re-point champion to the version it replaced"
    )


def run(args: argparse.Namespace) -> int:
    from dpsrgan.config import MlflowParams, load_params
    from dpsrgan.lifecycle.client import apply_client_limits, connect
    from dpsrgan.lifecycle.promotion import promote, rollback

    apply_client_limits()
    if args.rollback and (args.version or args.force or args.gate or args.absolute):
        raise DpsrganError(
            "--rollback takes no --version/--force/--gate/--absolute; it restores the previous champion"
        )
    settings = load_params(args.params).mlflow if args.params.is_file() else MlflowParams()
    name = args.name or settings.registered_model
    client = connect(args.tracking_uri)
    if args.rollback:
        decision = rollback(client, name, dry_run=args.dry_run)
    else:
        decision = promote(
            client,
            name,
            args.version,
            gate_metrics=dict(args.gate) if args.gate else settings.gate_metrics,
            gate_absolute=dict(args.absolute) if args.absolute else settings.gate_absolute,
            dry_run=args.dry_run,
            force=args.force,
            reason=args.reason,
        )
    print(decision.summary(name))
    return 1 if decision.action == "refused" else 0
