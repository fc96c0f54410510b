"""Ray Train end to end on this machine: 2 CPU workers, a tiny generated dataset, a tiny model.

Recovery is tested with real failures: a rank-1 worker process that exits mid-run, a NaN that
poisons the weights, and a whole stage process killed with SIGKILL and then run again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dpsrgan.checkpoint import load_generator, save_generator
from dpsrgan.errors import DpsrganError
from dpsrgan.models.generator import Generator
from dpsrgan.training.faults import KILL_ENV, NAN_ENV
from dpsrgan.training.trainer import train_stage
from tests.fixtures.training import tiny_params, tiny_params_dict

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TINY_STEPS = 8  # 32 rows / 2 workers / batch 4 = 4 steps per epoch, 2 epochs


@pytest.fixture
def sqlite_tracking(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_pretrain_recovers_from_a_killed_worker_with_s3_storage_and_mlflow_server(
    shared_ray, tiny_processed, s3_server, mlflow_server, tmp_path, monkeypatch
):
    s3_server.client().create_bucket(Bucket="ray-storage")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    # Rank 1 dies before step 6, after the epoch-1 checkpoint (step 4) was registered.
    monkeypatch.setenv(KILL_ENV, f"6:{tmp_path / 'killed'}")
    params = tiny_params(
        "s3://ray-storage/runs",
        ray={"s3_endpoint_url": s3_server.endpoint_url},
        mlflow={"experiment": "kill-test"},
    )

    result = train_stage("pretrain", params, tiny_processed)

    assert (tmp_path / "killed").exists()  # the fault really fired
    progress = result.state["progress"]
    assert progress["global_step"] == TINY_STEPS
    assert progress["starts"] == [0, 4]  # restarted from the registered checkpoint, not from 0
    assert [row["epoch"] for row in progress["history"]] == [1, 2]
    keys = [obj["Key"] for obj in s3_server.client().list_objects_v2(Bucket="ray-storage")["Contents"]]
    assert any(key.startswith(f"runs/{result.run_name}/ckpt_step_00000008/") for key in keys)

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["pretrain.batch_size"] == "4"
    assert run.data.tags["lineage.data_manifest_sha256"] == result.input_hashes["data_manifest"]
    assert json.loads(run.data.tags["ray.cluster_resources"])["CPU"] == 2.0
    assert "val/psnr_y" in run.data.metrics
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "loss/g_mse")}
    assert steps >= set(range(1, TINY_STEPS + 1))
    grids = [a.path for a in client.list_artifacts(run.info.run_id, "grids")]
    assert "grids/epoch_002.png" in grids


def test_gan_guard_restores_the_last_good_state_after_a_nan(
    shared_ray, tiny_processed, sqlite_tracking, tmp_path, monkeypatch
):
    torch_seeded = Generator(scale=4, channels=8, num_blocks=2)
    pretrained = save_generator(torch_seeded, tmp_path / "pretrained.pt")
    monkeypatch.setenv(NAN_ENV, f"3:{tmp_path / 'poisoned'}")
    params = tiny_params(tmp_path / "ray", gan={"max_guard_restores": 2, "guard_lr_factor": 0.5})

    result = train_stage("gan", params, tiny_processed, pretrained=pretrained)

    progress = result.state["progress"]
    assert (tmp_path / "poisoned").exists()
    assert progress["global_step"] == TINY_STEPS
    assert progress["guard_restores"] == 1
    assert progress["lr_scale"] == 0.5
    [event] = progress["guard_events"]
    assert event["step"] == 3 and event["restored_to_step"] == 2 and "non-finite" in event["reason"]
    assert all(value == value for row in progress["history"] for value in row.values())  # no NaN left
    # The EMA generator the stage exports is finite and loads as a plain generator.
    from dpsrgan.training.outputs import export_generator

    exported = load_generator(export_generator(result.state, tmp_path / "g.pt", **result.provenance()))
    assert all(p.isfinite().all() for p in exported.parameters())

    from mlflow import MlflowClient

    run = MlflowClient(sqlite_tracking).get_run(result.mlflow_run_id)
    assert run.data.metrics["guard/restores"] == 1
    assert "non-finite" in run.data.tags["guard.event_1"]


def test_guard_fails_the_run_clearly_when_its_budget_is_spent(
    shared_ray, tiny_processed, sqlite_tracking, tmp_path, monkeypatch
):
    monkeypatch.setenv(NAN_ENV, f"2:{tmp_path / 'poisoned'}")
    params = tiny_params(tmp_path / "ray", pretrain={"epochs": 1})  # pretraining allows no restore

    with pytest.raises(
        DpsrganError, match=r"instability guard: non-finite loss at step 2 .*lower pretrain\.lr"
    ):
        train_stage("pretrain", params, tiny_processed)

    from mlflow import MlflowClient

    client = MlflowClient(sqlite_tracking)
    [run] = client.search_runs([client.get_experiment_by_name("dpsrgan-tests").experiment_id])
    assert run.info.status == "FAILED"


def _stage_command(params_file: Path, data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipelines.pretrain",
        "--params",
        str(params_file),
        "--data",
        str(data),
        "--out",
        str(out / "generator.pt"),
        "--history",
        str(out / "history.csv"),
        "--metrics",
        str(out / "metrics.json"),
    ]


def _wait_for_registered_checkpoint(storage: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for snapshot in storage.glob("pretrain-*/checkpoint_manager_snapshot.json"):
            if "ckpt_step_" in snapshot.read_text(errors="ignore"):
                return
        if proc.poll() is not None:
            pytest.fail(f"stage exited ({proc.returncode}) before its first checkpoint")
        time.sleep(0.2)
    pytest.fail("no checkpoint registered in time")


def _kill_leftovers(ray_tmp: Path) -> None:
    """Ray processes of the killed stage's local Ray (found by its private temp dir) — only ours."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        if str(ray_tmp) in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_killed_stage_resumes_from_its_checkpoint_when_rerun(tiny_processed, tmp_path):
    storage, out = tmp_path / "ray", tmp_path / "out"
    params_file = tmp_path / "params.yaml"
    raw = tiny_params_dict(storage, pretrain={"epochs": 4})
    raw["mlflow"]["experiment"] = "resume-test"
    params_file.write_text(yaml.safe_dump(raw))
    ray_tmp = Path(f"/tmp/rk{os.getpid()}")  # short: Ray's socket paths must fit 107 bytes
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", RAY_TMPDIR=str(ray_tmp))
    env.pop("RAY_ADDRESS", None)
    command = _stage_command(params_file, tiny_processed, out)

    first = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_registered_checkpoint(storage, first)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        _kill_leftovers(ray_tmp)
    assert not (out / "metrics.json").exists()

    try:
        second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    finally:
        _kill_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 * 4 and metrics["epochs"] == 4
    assert metrics["restarts"] == 1  # one resume, from a checkpoint after step 0
    assert "resumed from the checkpoint at step" in second.stderr
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,global_step,loss_g_mse") and len(history) == 1 + 4
    assert load_generator(out / "generator.pt").config["channels"] == 8
