"""Registry and promotion: the gate as pure logic, then the whole `dpsrgan promote` story against a
real `mlflow server` process (registering tiny generators with the register-stage code)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dpsrgan.cli import main as cli_main
from dpsrgan.config import MlflowParams
from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import CHALLENGER, CHAMPION, load_registered_generator
from dpsrgan.lifecycle.promotion import gate_checks
from dpsrgan.lifecycle.registry import (
    dvc_lock_hashes,
    lineage_tags,
    register_generator,
    registry_metrics,
)
from dpsrgan.lifecycle.tracking import flatten
from tests._tiny import save_tiny_generator
from tests.fixtures.services import free_port

GATE = {"psnr_y": -0.05, "ssim_y": -0.002}


# ---- the gate, no server --------------------------------------------------------------------


def test_relative_gate_accepts_within_tolerance_and_refuses_beyond():
    champion = {"psnr_y": 30.0, "ssim_y": 0.85}
    ok = gate_checks({"psnr_y": 29.97, "ssim_y": 0.86}, champion, GATE, {})
    assert all(check.passed for check in ok)
    worse = gate_checks({"psnr_y": 29.9, "ssim_y": 0.86}, champion, GATE, {})
    assert [check.passed for check in worse] == [False, True]
    assert worse[0].improvement == pytest.approx(-0.1)


def test_lower_is_better_metrics_count_a_decrease_as_improvement():
    checks = gate_checks({"lpips": 0.20}, {"lpips": 0.25}, {"lpips": 0.0}, {})
    assert checks[0].passed and checks[0].improvement == pytest.approx(0.05)
    absolute = gate_checks({"lpips": 0.30}, None, {}, {"lpips": 0.25})
    assert not absolute[0].passed


def test_absolute_gate_decides_without_champion_and_missing_metric_is_an_error():
    checks = gate_checks({"psnr_y": 21.0}, None, GATE, {"psnr_y": 20.0})
    assert checks[0].absolute and checks[0].passed
    with pytest.raises(DpsrganError, match="no metric 'ssim_y'"):
        gate_checks({"psnr_y": 21.0}, None, GATE, {"ssim_y": 0.5})
    with pytest.raises(DpsrganError, match="champion has no metric"):
        gate_checks({"psnr_y": 21.0}, {"ssim_y": 0.5}, {"psnr_y": 0.0}, {})


def test_default_first_promotion_needs_a_model_that_beats_bicubic():
    # mlflow.gate_absolute's default: the candidate's PSNR-Y gain over bicubic on the test split
    default_gate = MlflowParams().gate_absolute
    assert default_gate == {"psnr_y_gain": 0.0}
    summary = {"bicubic": {"psnr_y": 29.6, "psnr_y_gain": 0.0}, "gan": {"psnr_y": 30.5, "psnr_y_gain": 0.87}}
    assert all(check.passed for check in gate_checks(registry_metrics(summary), None, GATE, default_gate))
    below = {"bicubic": {"psnr_y": 29.6, "psnr_y_gain": 0.0}, "gan": {"psnr_y": 29.5, "psnr_y_gain": -0.1}}
    assert not any(check.passed for check in gate_checks(registry_metrics(below), None, GATE, default_gate))


def test_registry_metrics_unprefix_the_candidate_and_prefix_baselines():
    summary = {
        "test_images": 5,
        "bicubic": {"psnr_y": 25.0, "num_params": 0},
        "gan": {"psnr_y": 28.0, "ssim_y": 0.8},
        "lpips_note": "skipped: ...",
    }
    assert registry_metrics(summary) == {
        "test_images": 5.0,
        "bicubic.psnr_y": 25.0,
        "bicubic.num_params": 0.0,
        "psnr_y": 28.0,
        "ssim_y": 0.8,
    }
    with pytest.raises(DpsrganError, match="rerun the evaluate stage"):
        registry_metrics({"bicubic": {"psnr_y": 1.0}})


def test_lineage_reads_dvc_lock_outputs(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  degrade:\n    cmd: x\n    outs:\n    - path: data/processed\n"
        "      hash: md5\n      md5: abc.dir\n      size: 1\n"
    )
    assert dvc_lock_hashes(tmp_path / "dvc.lock") == {"degrade:data/processed": "abc.dir"}
    tags = lineage_tags(tmp_path)
    assert tags["lineage.dvc.degrade.data/processed"] == "abc.dir"
    assert tags["lineage.git_commit"] == "unknown"  # not a git repo
    assert flatten({"a": {"b": 1, "c": {"d": None}}}) == {"a.b": "1", "a.c.d": "None"}


# ---- against a real tracking server ---------------------------------------------------------


def _register(tmp_path: Path, server, name: str, seed: int, psnr_y: float, ssim_y: float) -> str:
    checkpoint = save_tiny_generator(tmp_path / f"g{seed}.pt", seed)
    version = register_generator(
        checkpoint,
        registered_model=name,
        experiment=f"test-{name}",
        metrics={"psnr_y": psnr_y, "ssim_y": ssim_y, "pretrained.psnr_y": psnr_y + 0.1},
        params={"model.channels": "8", "model.num_blocks": "2"},
        tags={"lineage.git_commit": "testcommit"},
        tracking_uri=server.tracking_uri,
    )
    return version.version


def _promote(server, name: str, *args: str) -> int:
    return cli_main(
        [
            "promote",
            "--tracking-uri",
            server.tracking_uri,
            "--name",
            name,
            "--params",
            "/nonexistent/params.yaml",
            *args,
        ]
    )


@pytest.mark.slow
def test_promotion_story_against_a_real_tracking_server(tmp_path, mlflow_server, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the register stage's MLflow writes stay in the temp dir
    name = f"sr-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(mlflow_server.tracking_uri)

    v1 = _register(tmp_path, mlflow_server, name, seed=1, psnr_y=28.0, ssim_y=0.80)
    assert client.get_registered_model(name).aliases == {CHALLENGER: v1}
    version = client.get_model_version(name, v1)
    assert version.tags["lineage.git_commit"] == "testcommit" and version.tags["eval.psnr_y"] == "28"
    assert client.get_run(version.run_id).data.metrics["pretrained.psnr_y"] == pytest.approx(28.1)

    # No champion yet: the absolute threshold decides.
    assert _promote(mlflow_server, name, "--absolute", "psnr_y=30") == 1
    assert CHAMPION not in client.get_registered_model(name).aliases
    assert _promote(mlflow_server, name, "--absolute", "psnr_y=20") == 0
    assert client.get_registered_model(name).aliases[CHAMPION] == v1
    assert client.get_model_version(name, v1).tags["promotion.previous_champion"] == "none"

    # A worse challenger is refused (exit 1), and the refusal is recorded on it.
    v2 = _register(tmp_path, mlflow_server, name, seed=2, psnr_y=27.0, ssim_y=0.81)
    capsys.readouterr()
    assert _promote(mlflow_server, name, *(f"--gate={k}={v}" for k, v in GATE.items())) == 1
    out = capsys.readouterr().out
    assert f"v{v2} REFUSED; champion stays v{v1}" in out and "FAIL psnr_y" in out and "ok   ssim_y" in out
    assert client.get_registered_model(name).aliases[CHAMPION] == v1
    refused = client.get_model_version(name, v2).tags
    assert refused["promotion.decision"] == "refused" and refused["promotion.delta.psnr_y"] == "-1"

    # A dry run with a lenient CLI gate says it would promote, and changes nothing.
    assert _promote(mlflow_server, name, "--gate", "psnr_y=-2", "--dry-run") == 0
    assert "dry run" in capsys.readouterr().out
    assert client.get_registered_model(name).aliases[CHAMPION] == v1

    # --force needs --reason; with one it promotes past the gate and records why.
    assert _promote(mlflow_server, name, "--force") == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert _promote(mlflow_server, name, "--force", "--reason", "new test set") == 0
    assert client.get_registered_model(name).aliases[CHAMPION] == v2
    forced = client.get_model_version(name, v2).tags
    assert forced["promotion.decision"] == "forced" and forced["promotion.reason"] == "new test set"
    assert forced["promotion.previous_champion"] == v1

    # The registry URI loads the champion's weights (no registry code runs).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    generator = load_registered_generator(f"models:/{name}@{CHAMPION}")
    assert generator.config["channels"] == 8

    # Rollback re-points champion to v1; a second rollback has nowhere to go.
    assert _promote(mlflow_server, name, "--rollback") == 0
    assert client.get_registered_model(name).aliases[CHAMPION] == v1
    assert client.get_model_version(name, v2).tags["rollback.to"] == v1
    capsys.readouterr()
    assert _promote(mlflow_server, name, "--rollback") == 2
    assert "no recorded previous champion" in capsys.readouterr().err


@pytest.mark.slow
def test_promote_against_an_unreachable_server_fails_fast_with_one_line(tmp_path):
    env = dict(os.environ, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpsrgan.cli",
            "promote",
            "--tracking-uri",
            f"http://127.0.0.1:{free_port()}",
            "--params",
            str(tmp_path / "none.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0], result.stderr


@pytest.mark.slow
def test_promote_unknown_model_is_a_one_line_error(mlflow_server, capsys):
    code = _promote(mlflow_server, "nope")
    assert code == 2
    assert "registered model 'nope': not found" in capsys.readouterr().err
