"""Tune stage: the objective and sizing as pure logic, then a real Ray Tune sweep (ASHA, Ray Train
trials on tiny data) through the stage entry point, tracked on a real MLflow server."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from dpsrgan.errors import DpsrganError
from dpsrgan.tuning.best import BestConfig, apply_best_config, params_choice, read_best_config
from dpsrgan.tuning.objective import PENALTY, Bounds, Reference, objective_value
from dpsrgan.tuning.progress import TrialProgress
from dpsrgan.tuning.report import objective_plot
from dpsrgan.tuning.space import first_trials, sweep_name, trial_concurrency
from dpsrgan.tuning.sweep import choose
from pipelines.tune import main as tune_main
from tests._tiny import save_tiny_generator
from tests.fixtures.training import tiny_params, tiny_params_dict, write_tiny_processed

REFERENCE = Reference(psnr_y=30.0, hf_ratio=0.40)
BOUNDS = Bounds(psnr_floor_db=0.15, max_color_shift=1.0, min_hf_gain=1.25)


def val(psnr_y: float, hf_ratio: float, color: float = 0.3, bicubic: float = 29.0, perceptual: float = 0.2) -> dict:
    return {"val/psnr_y": psnr_y, "val/hf_ratio": hf_ratio, "val/color_shift_max": color,
            "val/psnr_y_bicubic": bicubic, "val/perceptual": perceptual}


def test_default_objective_wants_hr_detail_among_trials_that_keep_every_bound():
    sharper = val(29.9, 0.70)  # inside every bound, detail closer to HR's (1.0)
    sharp = val(29.95, 0.55)
    scores = [objective_value(m, "detail_within_bounds", REFERENCE, BOUNDS) for m in (sharper, sharp)]
    assert scores == pytest.approx([abs(math.log(0.70)), abs(math.log(0.55))])
    assert scores[0] < scores[1]
    # Each broken bound puts a trial behind every trial that keeps them, however sharp it is.
    too_lossy = val(29.80, 0.95)  # 0.2 dB under the pretrained generator: 0.05 dB past the floor
    colour_cast = val(29.95, 0.95, color=1.6)
    below_bicubic = val(29.95, 0.95, bicubic=29.96)
    too_soft = val(29.99, 0.45)  # 0.45 < 1.25 × 0.40
    for broken in (too_lossy, colour_cast, below_bicubic, too_soft):
        assert objective_value(broken, "detail_within_bounds", REFERENCE, BOUNDS) > PENALTY > max(scores)
    # ... and the less-bad of two broken trials ranks first.
    worse_cast = val(29.95, 0.95, color=3.0)
    assert objective_value(colour_cast, "detail_within_bounds", REFERENCE, BOUNDS) < objective_value(
        worse_cast, "detail_within_bounds", REFERENCE, BOUNDS
    )


def test_other_objectives_rank_by_their_measure():
    lossy = val(29.0, 0.9, perceptual=0.10)
    assert objective_value(lossy, "perceptual", REFERENCE, BOUNDS) == pytest.approx(0.10)
    assert objective_value(lossy, "psnr", REFERENCE, BOUNDS) == pytest.approx(-29.0)
    # perceptual_with_psnr_floor bounds PSNR only: 1 dB under the pretrained G is 0.85 past the floor.
    assert objective_value(lossy, "perceptual_with_psnr_floor", REFERENCE, BOUNDS) == pytest.approx(
        0.10 + PENALTY * 1.85
    )


def test_the_params_choice_is_the_first_trial_and_what_an_off_sweep_chooses(tmp_path):
    params = tiny_params(tmp_path, loss={"adv_weight": 4e-3})
    assert first_trials(params) == [{"adv_weight": 4e-3}]
    choice = params_choice(params)
    assert (choice.adv_weight, choice.lr_g, choice.lr_d, choice.source) == (4e-3, params.gan.lr_g, params.gan.lr_d, "params")


def test_choose_takes_the_lowest_objective_and_reports_the_spread_within_bounds():
    table = pd.DataFrame(
        {
            "trial": ["a", "b", "c"],
            "adv_weight": [1e-3, 5e-3, 3e-2],
            "lr_g": [2e-5] * 3,
            "lr_d": [1e-4] * 3,
            "val_psnr_y": [29.9, 29.95, 29.5],
            "val_hf_ratio": [0.7, 0.55, 0.95],
            "val_color_shift_max": [0.3, 0.2, 0.9],
            "val_perceptual": [math.nan] * 3,
            "objective": [0.357, 0.598, PENALTY * 1.35],
            "within_bounds": [True, True, False],
            "status": ["completed"] * 3,
            "error": [""] * 3,
        }
    )
    best = choose(table, "tune-x", "detail_within_bounds", REFERENCE)
    assert (best.trial, best.adv_weight, best.within_bounds, best.source) == ("a", 1e-3, True, "sweep")
    assert best.objective_spread == pytest.approx(0.598 - 0.357)
    assert best.val == {"psnr_y": 29.9, "hf_ratio": 0.7, "color_shift_max": 0.3}
    with pytest.raises(DpsrganError, match="no trial reported an objective"):
        choose(table.assign(objective=math.nan), "tune-x", "psnr", REFERENCE)


def test_progress_lines_name_the_trial_its_weight_objective_and_an_eta():
    progress = TrialProgress(num_samples=2, epochs=2, concurrency=1)
    assert progress.line("t1", {"adv_weight": 3e-3}, {"epoch": 1}) is None  # no validation in it
    result = {"epoch": 1, "val/psnr_y": 30.1234, "val/hf_ratio": 0.5123, "objective": 0.25}
    line = progress.line("t1", {"adv_weight": 3e-3}, result)
    assert line.startswith("tune: trial t1 epoch 1: adv_weight 0.003, val PSNR-Y 30.12 dB, HF energy 0.512, objective 0.25")
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
        source="sweep",
        objective_kind="detail_within_bounds",
        objective=0.2,
        within_bounds=True,
        trial="t_00001",
        val={"psnr_y": 28.0, "hf_ratio": 0.6},
        reference={"psnr_y": 28.1, "hf_ratio": 0.4},
        objective_spread=0.1,
    )
    path = tmp_path / "best.json"
    path.write_text(json.dumps(best.to_json()))
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
    (tmp_path / "off.png").write_bytes(objective_plot(pd.DataFrame(), "tune.enabled: false"))
    assert Image.open(tmp_path / "off.png").format == "PNG"


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


def test_tune_stage_switched_off_writes_the_params_choice_without_ray(tmp_path):
    processed = write_tiny_processed(tmp_path / "processed", train_rows=4)
    pretrained = save_tiny_generator(tmp_path / "pretrained.pt", seed=1)
    raw = tiny_params_dict(tmp_path / "ray", tune={"enabled": False}, loss={"adv_weight": 7e-3})
    (tmp_path / "params.yaml").write_text(json.dumps(raw))
    out = tmp_path / "tune"
    args = ["--params", str(tmp_path / "params.yaml"), "--data", str(processed), "--pretrained", str(pretrained),
            "--best", str(out / "best.json"), "--results", str(out / "results.csv"), "--plot", str(out / "plot.png")]
    assert tune_main(args) == 0
    best = read_best_config(out / "best.json")
    assert (best.source, best.adv_weight, best.objective) == ("params", 7e-3, None)
    assert pd.read_csv(out / "results.csv").empty
    assert Image.open(out / "plot.png").format == "PNG"
    assert not (tmp_path / "ray").exists()  # no trial ran


def test_tune_does_not_copy_aws_credentials_into_trial_runtime_envs(monkeypatch):
    """Ray logs runtime envs on every node; the cluster test greps those logs for the keys."""
    from ray.tune.execution import class_cache

    from dpsrgan.cluster.runtime import TUNE_COPIED_CREDENTIALS, keep_credentials_out_of_trial_env

    # As Ray 2.60 ships it (an earlier sweep in this process may have changed the module's set).
    monkeypatch.setattr(
        class_cache, "ENV_VARS_TO_PROPAGATE", class_cache.ENV_VARS_TO_PROPAGATE | TUNE_COPIED_CREDENTIALS
    )
    keep_credentials_out_of_trial_env()
    assert not TUNE_COPIED_CREDENTIALS & class_cache.ENV_VARS_TO_PROPAGATE
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-in-the-runtime-env")
    remote = class_cache._ActorClassCache().get(type("Trainable", (), {}))
    assert "AWS_SECRET_ACCESS_KEY" not in remote._default_options["runtime_env"]["env_vars"]
