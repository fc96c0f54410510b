"""EMA arithmetic, the instability guard's decisions, fault hooks, run naming and stage outputs —
small pure pieces of the training code, no Ray."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.training.ema import EMA
from dpsrgan.training.faults import NAN_ENV, FaultInjection
from dpsrgan.training.guard import InstabilityGuard, all_rank_health
from dpsrgan.training.outputs import final_metrics, write_history_csv
from dpsrgan.training.progress import epoch_line, format_duration, step_line
from dpsrgan.training.inputs import fingerprint, steps_per_epoch
from dpsrgan.training.trainer import storage_target
from tests.fixtures.training import tiny_params


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1, bias=False)
        self.norm = nn.BatchNorm1d(1)


def test_ema_follows_the_warmup_then_the_decay():
    model = Tiny()
    nn.init.zeros_(model.linear.weight)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.linear.weight.fill_(1.0)
        model.norm.running_mean.fill_(5.0)
    ema.update(model)  # t=0: d = min(0.9, 1/10) = 0.1 → shadow = 0.9
    assert torch.allclose(ema.module.linear.weight, torch.full((1, 2), 0.9))
    assert ema.module.norm.running_mean.item() == 5.0  # buffers are copied
    for _ in range(200):
        ema.update(model)
    assert ema.current_decay() == 0.9
    assert torch.allclose(ema.module.linear.weight, torch.ones(1, 2), atol=1e-6)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip_and_decay_zero_tracks_the_model():
    model = Tiny()
    ema = EMA(model, decay=0.0)
    with torch.no_grad():
        model.linear.weight.add_(3.0)
    ema.update(model)
    assert torch.equal(ema.module.linear.weight, model.linear.weight)
    other = EMA(Tiny(), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and other.decay == 0.0
    assert torch.equal(other.module.linear.weight, model.linear.weight)
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_guard_acts_at_once_on_non_finite_losses():
    guard = InstabilityGuard(collapse_threshold=0.02, patience=5)
    nonfinite, real, fake = all_rank_health(
        {"loss/g_total": math.nan, "d/real_mean": 0.5, "d/fake_mean": 0.5}, torch.device("cpu")
    )
    assert nonfinite
    assert guard.observe(nonfinite, real, fake) == "non-finite loss"
    nonfinite, real, fake = all_rank_health({"loss/g_mse": math.inf}, torch.device("cpu"))
    assert nonfinite and math.isnan(real)
    healthy = all_rank_health({"loss/g_mse": 0.1}, torch.device("cpu"))
    assert healthy[0] is False


@pytest.mark.parametrize(
    ("real", "fake", "collapsed"),
    [
        (0.01, 0.01, True),  # everything judged fake
        (0.99, 0.995, True),  # everything judged real
        (0.01, 0.99, True),  # inverted
        (0.99, 0.01, False),  # D winning: a normal (if strong) discriminator
        (0.6, 0.4, False),
    ],
)
def test_guard_collapse_rules(real, fake, collapsed):
    assert InstabilityGuard(0.02).is_collapsed(real, fake) is collapsed


def test_guard_needs_patience_and_resets_on_a_healthy_step():
    guard = InstabilityGuard(collapse_threshold=0.02, patience=3)
    assert guard.observe(False, 0.01, 0.01) is None
    assert guard.observe(False, 0.01, 0.01) is None
    assert guard.observe(False, 0.5, 0.5) is None  # streak broken
    assert guard.observe(False, 0.01, 0.01) is None
    assert guard.observe(False, 0.01, 0.01) is None
    assert "collapsed for 3 steps" in guard.observe(False, 0.01, 0.01)
    assert InstabilityGuard(None).observe(False, 0.0, 0.0) is None  # pretraining: no D to watch


def test_nan_fault_fires_once_on_rank_zero_only(tmp_path, monkeypatch):
    monkeypatch.setenv(NAN_ENV, f"3:{tmp_path / 'marker'}")
    faults = FaultInjection.from_env()
    assert not faults.poison(rank=0, global_step=2)
    assert not faults.poison(rank=1, global_step=3)
    assert faults.poison(rank=0, global_step=3)
    assert not faults.poison(rank=0, global_step=3)  # the marker exists now
    monkeypatch.setenv(NAN_ENV, "3")
    with pytest.raises(ValueError, match="STEP:/path"):
        FaultInjection.from_env()


def test_run_name_changes_with_params_and_inputs_but_not_with_operational_knobs(tmp_path):
    base = tiny_params(tmp_path)
    inputs = {"data_manifest": "abc"}
    same = fingerprint("pretrain", base, inputs)
    assert (
        fingerprint("pretrain", tiny_params(tmp_path / "elsewhere", ray={"max_failures": 0}), inputs) == same
    )
    assert fingerprint("pretrain", tiny_params(tmp_path, pretrain={"lr": 5e-4}), inputs) != same
    assert fingerprint("pretrain", base, {"data_manifest": "abd"}) != same
    assert fingerprint("gan", base, inputs) != same
    # The GAN run depends on the loss params, the pretraining does not.
    assert fingerprint("pretrain", tiny_params(tmp_path, loss={"adv_weight": 0.01}), inputs) == same
    assert fingerprint("gan", tiny_params(tmp_path, loss={"adv_weight": 0.01}), inputs) != fingerprint(
        "gan", base, inputs
    )


def test_steps_per_epoch_and_its_error():
    assert steps_per_epoch(32, 4, 2, None, "pretrain") == 4
    assert steps_per_epoch(33, 4, 2, 3, "pretrain") == 3
    with pytest.raises(DpsrganError, match="lower pretrain.batch_size"):
        steps_per_epoch(7, 4, 2, None, "pretrain")


def test_storage_target_local_and_s3_endpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, filesystem = storage_target(tiny_params("outputs/ray").ray)
    assert path == str(tmp_path / "outputs/ray") and filesystem is None
    params = tiny_params("s3://bucket/runs", ray={"s3_endpoint_url": "http://127.0.0.1:9000"})
    path, filesystem = storage_target(params.ray)
    assert path == "bucket/runs" and type(filesystem).__name__ == "S3FileSystem"
    with pytest.raises(DpsrganError, match="ray.s3_endpoint_url"):
        storage_target(tiny_params("s3://b/r", ray={"s3_endpoint_url": "127.0.0.1:9000"}).ray)


def test_history_csv_and_final_metrics(tmp_path):
    history = [
        {
            "epoch": 1,
            "global_step": 4,
            "loss/g_mse": 0.5,
            "val/psnr_y": 20.0,
            "val/psnr_y_bicubic": 22.0,
            "perf/samples_per_s": 3.0,
        },
        {
            "epoch": 2,
            "global_step": 8,
            "loss/g_mse": 0.25,
            "val/psnr_y": 23.5,
            "val/psnr_y_bicubic": 22.0,
            "perf/samples_per_s": math.nan,
        },
    ]
    path = write_history_csv(history, tmp_path / "plots" / "history.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == [
        "epoch",
        "global_step",
        "loss_g_mse",
        "val_psnr_y",
        "val_psnr_y_bicubic",
        "perf_samples_per_s",
    ]
    assert rows[1]["loss_g_mse"] == "0.25" and rows[1]["perf_samples_per_s"] == ""
    state = {
        "progress": {"epoch": 2, "global_step": 8, "starts": [0, 4], "guard_restores": 0, "history": history}
    }
    metrics = final_metrics(state)
    assert metrics["val"]["psnr_y_gain_over_bicubic"] == pytest.approx(1.5)
    assert metrics["restarts"] == 1 and metrics["train"] == {"loss_g_mse": 0.25}


def test_progress_lines_name_losses_throughput_and_eta():
    line = step_line(
        {
            "stage": "gan",
            "epoch": 0,
            "epochs": 2,
            "step": 3,
            "steps": 10,
            "global_step": 3,
            "losses": {"loss/g_total": 0.5, "d/real_mean": 0.6},
            "samples_per_s": 12.5,
            "eta_s": 75,
        }
    )
    assert line == "gan epoch 1/2 step 3/10 | g_total 0.5 | 12.5 samples/s | ETA 1m15s"
    summary = epoch_line(
        {
            "stage": "pretrain",
            "epoch": 1,
            "epochs": 2,
            "row": {
                "loss/g_mse": 0.01,
                "val/psnr_y": 30.0,
                "val/psnr_y_bicubic": 28.0,
                "val/ssim_y": 0.9,
                "perf/samples_per_s": 4.0,
            },
        }
    )
    assert "epoch 2/2 done" in summary and "30.00 dB (bicubic 28.00)" in summary
    assert format_duration(3725) == "1h02m"
