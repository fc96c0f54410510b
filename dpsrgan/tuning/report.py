"""What a finished sweep leaves behind: the per-trial table, the objective-vs-weight plot, each
trial's MLflow child run closed with its objective history, and the parent run's summary."""

from __future__ import annotations

import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dpsrgan.config import Params
from dpsrgan.tuning.best import BestConfig
from dpsrgan.tuning.objective import PENALTY
from dpsrgan.tuning.trial import TIME_ATTR

VAL_COLUMNS = {
    "val_psnr_y": "val/psnr_y",
    "val_hf_ratio": "val/hf_ratio",
    "val_color_shift_max": "val/color_shift_max",
    "val_perceptual": "val/perceptual",
}
"""Table column → the trial's last reported validation metric."""
TABLE_COLUMNS = ("trial", "adv_weight", "lr_g", "lr_d", "epochs", *VAL_COLUMNS, "objective", "within_bounds", "status", "error")


def trial_rows(results: Any, params: Params) -> pd.DataFrame:
    rows = []
    for result in results:
        metrics = result.metrics or {}
        config = result.config or {}
        epochs = int(metrics.get(TIME_ATTR, 0) or 0)
        if result.error is not None:
            status = "error"
        elif epochs >= params.tune.epochs:
            status = "completed"
        else:
            status = "stopped by ASHA"
        rows.append(
            {
                "trial": metrics.get("trial_id") or Path(result.path).name,
                "adv_weight": config.get("adv_weight"),
                "lr_g": config.get("lr_g", params.gan.lr_g),
                "lr_d": config.get("lr_d", params.gan.lr_d),
                "epochs": epochs,
                **{column: metrics.get(key, math.nan) for column, key in VAL_COLUMNS.items()},
                "objective": metrics.get("objective", math.nan),
                "within_bounds": bool(metrics.get("objective", PENALTY) < PENALTY),
                "status": status,
                "error": "" if result.error is None else str(result.error).splitlines()[0][:200],
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.sort_values("objective", na_position="last", kind="stable").reset_index(drop=True)


def objective_plot(table: pd.DataFrame, kind: str) -> bytes:
    """PNG: objective against adversarial weight (log x); stopped trials hollow, the best starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    if table.empty:
        return _no_sweep_plot(figure, axes, kind)
    done = table[table["status"] == "completed"]
    stopped = table[table["status"] != "completed"]
    axes.scatter(done["adv_weight"], done["objective"], label="completed", color="tab:blue")
    axes.scatter(
        stopped["adv_weight"],
        stopped["objective"],
        label="stopped early / failed",
        facecolors="none",
        edgecolors="tab:gray",
    )
    best = table.dropna(subset=["objective"]).head(1)
    axes.scatter(
        best["adv_weight"], best["objective"], marker="*", s=200, color="tab:red", label="best", zorder=3
    )
    axes.set_xscale("log")
    if table["objective"].abs().max() >= PENALTY:
        axes.set_yscale("symlog")
    axes.set_xlabel("adversarial weight (loss.adv_weight)")
    axes.set_ylabel("objective (lower is better)")
    axes.set_title(f"tune.objective = {kind}", fontsize="medium")
    axes.legend(fontsize="small")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _no_sweep_plot(figure: Any, axes: Any, note: str) -> bytes:
    """The plot's place when there were no trials (``tune.enabled: false``): says so."""
    import matplotlib.pyplot as plt

    axes.axis("off")
    axes.text(0.5, 0.5, note, ha="center", va="center", wrap=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def finish_child_runs(
    tracking_uri: str, experiment_id: str, parent_run_id: str, results: Any, table: pd.DataFrame
) -> None:
    """Close each trial's MLflow run with its objective per epoch and how the trial ended."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri)
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )
    by_trial = {run.data.tags.get("tune.trial_id"): run.info.run_id for run in children}
    statuses = dict(zip(table["trial"], table["status"], strict=True))
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id")
        run_id = by_trial.get(trial_id)
        if run_id is None:
            continue
        history = result.metrics_dataframe
        if history is not None and "objective" in history:
            rows = history.dropna(subset=["objective"])
            client.log_batch(
                run_id,
                metrics=[
                    Metric("objective", float(row["objective"]), 0, int(row[TIME_ATTR]))
                    for _, row in rows.iterrows()
                ],
            )
        client.set_tag(run_id, "tune.status", statuses.get(trial_id, "unknown"))
        client.set_terminated(run_id, status="FAILED" if result.error is not None else "FINISHED")


def log_sweep(run: Any, best: BestConfig, table: pd.DataFrame, plot: bytes) -> None:
    """The parent run: best knobs and score as metrics, the table, plot and best config as files."""
    from dpsrgan.lifecycle.tracking import RunLogger

    logger_ = RunLogger(run.tracking_uri, run.run_id)
    numbers = {**best.to_json(), **(best.val or {})}
    logger_.log_metrics(
        {
            f"best/{key}": float(value)
            for key, value in numbers.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        step=0,
    )
    logger_.flush()
    logger_.log_png(plot, "tune/objective.png")
    with tempfile.TemporaryDirectory(prefix="dpsrgan-tune-") as tmp:
        (Path(tmp) / "results.csv").write_text(table.to_csv(index=False))
        (Path(tmp) / "best.json").write_text(json.dumps(best.to_json(), indent=2))
        logger_.log_artifact(Path(tmp) / "results.csv", "tune")
        logger_.log_artifact(Path(tmp) / "best.json", "tune")
