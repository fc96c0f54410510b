"""Tune stage: the objective and sizing as pure logic, then a real Ray Tune sweep (ASHA, Ray Train
trials on tiny data) through the stage entry point, tracked on a real MLflow server."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from dpsrgan.errors import DpsrganError
from dpsrgan.tuning import (
    PENALTY,
    BestConfig,
    TrialProgress,
    apply_best_config,
    objective_plot,
    objective_value,
    read_best_config,
    sweep_name,
    trial_concurrency,
)
from pipelines.tune import main as tune_main
from tests._tiny import save_tiny_generator
from tests.fixtures.training import tiny_params, tiny_params_dict, write_tiny_processed


def test_default_objective_is_perceptual_above_the_floor_and_penalised_below():
    good = {"val/psnr_y": 29.5, "val/perceptual": 0.30}
    sharper_but_too_lossy = {"val/psnr_y": 28.5, "val/perceptual": 0.10}
    worse_still = {"val/psnr_y": 27.0, "val/perceptual": 0.05}
    scores = [
        objective_value(m, "perceptual_with_psnr_floor", 30.0, 1.0)
        for m in (good, sharper_but_too_lossy, worse_still)
    ]
    assert scores[0] == pytest.approx(0.30)  # within 1 dB of the pretrained generator: no penalty
    assert scores[1] == pytest.approx(0.10 + PENALTY * 1.5)
    assert scores[0] < scores[1] < scores[2]  # under the floor: ranked behind, less-bad first
    assert objective_value(sharper_but_too_lossy, "perceptual", 30.0, 1.0) == pytest.approx(0.10)
    assert objective_value(good, "psnr", 30.0, 1.0) == pytest.approx(-29.5)


def test_default_objective_never_prefers_a_trial_below_bicubic():
    # The pretrained generator is only 0.3 dB above bicubic: the bicubic floor is the higher one.
    above = {"val/psnr_y": 29.75, "val/psnr_y_bicubic": 29.7, "val/perceptual": 0.30}
    below = {"val/psnr_y": 29.6, "val/psnr_y_bicubic": 29.7, "val/perceptual": 0.01}
    assert objective_value(above, "perceptual_with_psnr_floor", 30.0, 1.0) == pytest.approx(0.30)
    assert objective_value(below, "perceptual_with_psnr_floor", 30.0, 1.0) == pytest.approx(
        0.01 + PENALTY * 1.1
    )


def test_progress_lines_name_the_trial_its_weight_objective_and_an_eta():
    progress = TrialProgress(num_samples=2, epochs=2, concurrency=1)
    assert progress.line("t1", {"adv_weight": 3e-3}, {"epoch": 1}) is None  # no validation in it
    line = progress.line("t1", {"adv_weight": 3e-3}, {"epoch": 1, "val/psnr_y": 30.1234, "objective": 0.25})
    assert line.startswith("tune: trial t1 epoch 1: adv_weight 0.003, val PSNR-Y 30.12 dB, objective 0.25")
    assert "[1/4 trial-epochs" in line and "ETA" in line


def test_trials_are_sized_to_leave_room_for_one_data_read(tmp_path):
    params = tiny_params(
        tmp_path,
        tune={"max_concurrent_trials": 2, "cpus_per_trial": 0.5, "workers_per_trial": 1},
        ray={"cpus_per_worker": 0.5, "cpus_per_data_task": 0.5},
    )
    assert trial_concurrency(params, 2.0) == 1  # 1 CPU a trial + 0.5 for a read
    assert trial_concurrency(params, 2.5) == 2
    assert trial_concurrency(params, 64.0) == 2  # never above tune.max_concurrent_trials
    with pytest.raises(DpsrganError, match="cpus_per_data_task = 0.5 for data reads.*lower them"):
        trial_concurrency(params, 1.4)
    quickstart = params.model_copy(update={"tune": params.tune.model_copy(update={"cpus_per_trial": 0.25})})
    assert trial_concurrency(quickstart, 2.0) == 2  # 2 × (0.25 + 0.5) + 0.5 = 2 CPUs exactly


def test_best_config_round_trip_and_what_train_gan_applies(tmp_path):
    best = BestConfig(
        adv_weight=3e-3,
        lr_g=2e-4,
        lr_d=5e-5,
        objective=0.2,
        objective_kind="perceptual",
        trial="t_00001",
        val_psnr_y=28.0,
        val_perceptual=0.2,
        reference_psnr_y=28.4,
        psnr_floor_db=1.0,
    )
    path = tmp_path / "best.json"
    path.write_text(json.dumps(best.__dict__))
    assert read_best_config(path) == best
    params = apply_best_config(tiny_params(tmp_path), best)
    assert (params.loss.adv_weight, params.gan.lr_g, params.gan.lr_d) == (3e-3, 2e-4, 5e-5)
    path.write_text('{"adv_weight": 1}')
    with pytest.raises(DpsrganError, match="re-run the tune stage"):
        read_best_config(path)


def test_sweep_name_follows_params_and_inputs(tmp_path):
    params = tiny_params(tmp_path)
    name = sweep_name(params, {"pretrained": "abc"})
    assert name == sweep_name(params, {"pretrained": "abc"}) and name.startswith("tune-")
    assert name != sweep_name(params, {"pretrained": "abd"})
    assert name != sweep_name(tiny_params(tmp_path, tune={"psnr_floor_db": 0.5}), {"pretrained": "abc"})


def test_objective_plot_is_a_png_with_penalised_points(tmp_path):
    table = pd.DataFrame(
        {
            "adv_weight": [1e-4, 1e-3, 1e-2],
            "objective": [0.3, 0.2, PENALTY * 2],
            "status": ["completed", "stopped by ASHA", "completed"],
        }
    )
    (tmp_path / "plot.png").write_bytes(objective_plot(table, "perceptual_with_psnr_floor"))
    assert Image.open(tmp_path / "plot.png").format == "PNG"


@pytest.mark.slow
def test_tune_stage_runs_an_asha_sweep_of_ray_train_trials(tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    monkeypatch.chdir(tmp_path)
    processed = write_tiny_processed(tmp_path / "processed", train_rows=8)
    pretrained = save_tiny_generator(tmp_path / "pretrained.pt", seed=1)
    experiment = "tune-test"
    raw = tiny_params_dict(
        tmp_path / "ray",
        tune={"num_samples": 2, "epochs": 2, "grace_period": 1, "reduction_factor": 2, "seed": 3},
        gan={"steps_per_epoch": 1, "valid_max_images": 2},
        ray={"num_workers": 1},
        mlflow={"experiment": experiment},
    )
    (tmp_path / "params.yaml").write_text(json.dumps(raw))  # JSON is YAML
    out = tmp_path / "outputs" / "tune"
    code = tune_main(
        [
            "--params",
            str(tmp_path / "params.yaml"),
            "--data",
            str(processed),
            "--pretrained",
            str(pretrained),
            "--best",
            str(out / "best.json"),
            "--results",
            str(out / "results.csv"),
            "--plot",
            str(out / "objective.png"),
        ]
    )
    assert code == 0

    best = read_best_config(out / "best.json")
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 2 and set(table["status"]) <= {"completed", "stopped by ASHA"}
    assert (table["epochs"] == 2).any()  # the leader always runs to max_t
    assert best.adv_weight == pytest.approx(table.iloc[0]["adv_weight"], rel=1e-5)
    assert 1e-4 <= best.adv_weight <= 1e-2 and best.lr_g == raw["gan"]["lr_g"]
    assert best.objective == pytest.approx(table["objective"].min(), rel=1e-5)
    assert Image.open(out / "objective.png").format == "PNG"

    # Each trial trained through Ray Train under its own run name in the sweep's storage.
    trial_dirs = sorted(p.name for p in (tmp_path / "ray").glob("tune-*-trials/*") if p.is_dir())
    assert len(trial_dirs) == 2 and len(set(trial_dirs)) == 2

    # MLflow: the sweep is a parent run, each trial a nested child with its knobs and objective.
    client = MlflowClient(mlflow_server.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and parents[0].data.metrics["best/adv_weight"] == pytest.approx(best.adv_weight)
    assert len(children) == 2 and all(run.info.status == "FINISHED" for run in children)
    assert {run.data.tags["tune.status"] for run in children} == set(table["status"])
    assert all("adv_weight" in run.data.params and "objective" in run.data.metrics for run in children)


def test_tune_does_not_copy_aws_credentials_into_trial_runtime_envs(monkeypatch):
    """Ray logs runtime envs on every node; the cluster test greps those logs for the keys."""
    from ray.tune.execution import class_cache

    from dpsrgan.tuning import TUNE_COPIED_CREDENTIALS, keep_credentials_out_of_trial_env

    # As Ray 2.60 ships it (an earlier sweep in this process may have changed the module's set).
    monkeypatch.setattr(
        class_cache, "ENV_VARS_TO_PROPAGATE", class_cache.ENV_VARS_TO_PROPAGATE | TUNE_COPIED_CREDENTIALS
    )
    keep_credentials_out_of_trial_env()
    assert not TUNE_COPIED_CREDENTIALS & class_cache.ENV_VARS_TO_PROPAGATE
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-in-the-runtime-env")
    remote = class_cache._ActorClassCache().get(type("Trainable", (), {}))
    assert "AWS_SECRET_ACCESS_KEY" not in remote._default_options["runtime_env"]["env_vars"]
