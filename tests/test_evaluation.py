"""Evaluation: the per-batch evaluator on tiny Parquet shards (numbers checked against the
metrics module directly), the report pieces, and the evaluate stage through Ray Data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dpsrgan.data.shards import read_split
from dpsrgan.degradation import bicubic_upscale
from dpsrgan.errors import DpsrganError
from dpsrgan.evaluation.evaluator import EvalSettings
from dpsrgan.evaluation.lpips import lpips_status
from dpsrgan.evaluation.run import evaluate_split, load_generators
from dpsrgan.evaluation.summary import summarize
from dpsrgan.evaluation.table import paper_table
from dpsrgan.metrics import image_metrics
from pipelines.evaluate import main as evaluate_main
from tests._tiny import save_tiny_generator, write_tiny_split

SETTINGS = EvalSettings(scale=4, crop_border=4, lpips=True, device="cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    write_tiny_split(root / "processed" / "test", count=5, size=32, shard_rows=2)
    checkpoints = {
        "pretrained": str(save_tiny_generator(root / "pretrained.pt", seed=1)),
        "gan": str(save_tiny_generator(root / "gan.pt", seed=2)),
    }
    return root, checkpoints


def test_per_image_rows_match_the_metrics_module(data):
    root, checkpoints = data
    generators = load_generators(checkpoints, SETTINGS.scale)
    frame = evaluate_split(root / "processed" / "test", generators, SETTINGS, batch_size=2, use_ray=False)
    assert len(frame) == 5 * 3
    assert list(frame["method"].unique()) == ["bicubic", "pretrained", "gan"]  # METHODS order, trained ones
    first = next(read_split(root / "processed" / "test"))
    expected = image_metrics(bicubic_upscale(first.lr, 4), first.hr, crop_border=4)
    row = frame[(frame["method"] == "bicubic") & (frame["id"] == first.id)].iloc[0]
    for name, value in expected.items():
        assert row[name] == pytest.approx(value)
    # Untrained tiny generators are far worse than bicubic on smooth images: the columns are not mixed up.
    means = frame.groupby("method", observed=True)["psnr_y"].mean()
    assert means["bicubic"] > means["pretrained"] + 10 and means["bicubic"] > means["gan"] + 10
    assert frame["lpips"].isna().all() == (not lpips_status()[0])


def test_summary_and_table_carry_paper_numbers_and_the_lpips_note(data):
    root, checkpoints = data
    generators = load_generators(checkpoints, SETTINGS.scale)
    frame = evaluate_split(root / "processed" / "test", generators, SETTINGS, batch_size=4, use_ray=False)
    costs = {"bicubic": {"num_params": 0}, "pretrained": {"num_params": 12195}, "gan": {"num_params": 12195}}
    off = {"srresnet": "off (baselines.enabled=false)", "srgan": "off (baselines.enabled=false)"}
    summary = summarize(frame, costs, "skipped: no weights here", off)
    assert summary["test_images"] == 5 and summary["gan"]["num_params"] == 12195
    assert summary["srgan"] == {"status": "off (baselines.enabled=false)"}  # no made-up numbers
    assert set(summary["gan"]) >= {
        "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "ms_per_image", "psnr_y_gain", "hf_ratio", "color_shift",
        "color_shift_worst",
    }
    gan_rows = frame[frame["method"] == "gan"]
    assert summary["gan"]["color_shift_worst"] == pytest.approx(gan_rows["color_shift"].max(), abs=1e-4)
    assert summary["gan"]["color_shift_worst"] >= summary["gan"]["color_shift"]
    gain = frame[frame["method"] == "gan"]["psnr_y"].mean() - frame[frame["method"] == "bicubic"]["psnr_y"].mean()
    assert summary["gan"]["psnr_y_gain"] == pytest.approx(gain, abs=1e-3) and summary["bicubic"]["psnr_y_gain"] == 0
    table = paper_table(summary, "folder skimage")
    assert "| DPSRGAN | 32.24 | 0.86 | 3.91 |" in table
    assert "| SRGAN — off (baselines.enabled=false) | 30.98 | 0.82 | 3.62 | – | – |" in table
    assert "| SRResNet — off (baselines.enabled=false) | 32.37 | 0.88 | 3.02 | – |" in table
    assert "not trained here" not in table
    assert "MOS needs human raters: there are none here" in table
    assert f"| Pretrained G (pixel loss) | – | – | – | {summary['pretrained']['psnr_y']:.2f} | " in table
    assert f"| {summary['gan']['psnr_y_gain']:+.2f} |" in table
    gan = summary["gan"]
    assert f"| {gan['hf_ratio']:.3f} | {gan['color_shift']:.2f} / {gan['color_shift_worst']:.2f} |" in table
    assert "LPIPS skipped: no weights here" in table
    json.dumps(summary, allow_nan=False)  # DVC metrics must be plain JSON


def test_lpips_is_detected_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: never available
    available, note = lpips_status()
    assert not available and note.startswith("skipped:")


def test_scale_mismatch_and_missing_shards_are_user_errors(data, tmp_path):
    root, checkpoints = data
    with pytest.raises(DpsrganError, match="upscales x4, but degrade.scale is 2"):
        load_generators(checkpoints, 2)
    generators = load_generators(checkpoints, SETTINGS.scale)
    with pytest.raises(DpsrganError, match="no Parquet shards"):
        evaluate_split(tmp_path, generators, SETTINGS, batch_size=2, use_ray=False)


@pytest.mark.slow
def test_evaluate_stage_through_ray_data_matches_the_local_path(data, tmp_path, monkeypatch):
    root, checkpoints = data
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "ray": {"num_workers": 1, "cpus_per_worker": 0.5},
                "evaluate": {"batch_size": 2, "grid_images": 2},
                "mlflow": {"experiment": "evaluate-test"},
            }
        )
    )
    out = tmp_path / "out"
    code = evaluate_main(
        [
            "--params",
            str(params),
            "--data",
            str(root / "processed"),
            "--pretrained",
            checkpoints["pretrained"],
            "--gan",
            checkpoints["gan"],
            "--metrics",
            str(out / "metrics.json"),
            "--per-image",
            str(out / "per_image.csv"),
            "--table",
            str(out / "table.md"),
            "--grid",
            str(out / "samples.png"),
        ]
    )
    assert code == 0
    ray_rows = pd.read_csv(out / "per_image.csv")
    generators = load_generators(checkpoints, SETTINGS.scale)
    local = evaluate_split(root / "processed" / "test", generators, SETTINGS, batch_size=3, use_ray=False)
    assert list(ray_rows["id"]) == list(local["id"]) and list(ray_rows["method"]) == list(local["method"])
    np.testing.assert_allclose(ray_rows["psnr_y"], local["psnr_y"], rtol=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_images"] == 5 and metrics["gan"]["psnr_y"] == pytest.approx(
        local[local.method == "gan"].psnr_y.mean(), abs=1e-3
    )
    grid = Image.open(out / "samples.png")
    assert grid.size[1] > 2 * 32 and grid.size[0] >= 5 * 32  # two rows of five 32-px cells
    assert "| DPSRGAN |" in (out / "table.md").read_text()
    # MLflow: one parent run of the evaluation, one nested run per evaluated arm, tagged.
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("evaluate-test").experiment_id])
    parent = next(run for run in runs if run.info.run_name == "evaluate")
    children = {run.data.tags["arm"]: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"bicubic", "pretrained", "dpsrgan"}
    assert children["dpsrgan"].data.metrics["psnr_y"] == pytest.approx(metrics["gan"]["psnr_y"])
    assert "evaluation/table.md" in [f.path for f in client.list_artifacts(parent.info.run_id, "evaluation")]
