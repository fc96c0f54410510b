"""``dvc repro train_gan`` in a temporary copy of the repo with tiny params: the real dvc.yaml
runs download → degrade → pretrain → train_gan, and its metrics and plots are readable. Then the
baseline variants with the baselines off (they train nothing) and ``dvc repro evaluate`` with them
on (SRResNet and SRGAN trained as DVC variants, every row of the table measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from dpsrgan.checkpoint import load_generator, read_checkpoint
from dpsrgan.models.discriminator import Discriminator

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
TINY = {
    "data": {"hr_size": 32, "patch_stride": 160, "eval_max_side": 64},
    "model": {"channels": 8, "num_blocks": 2, "d_channels": 8},
    "loss": {"vgg_weights": "random", "vgg_layer": "relu2_2"},
    "pretrain": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "lr": 1e-3},
    # one D-only step, then one full step (precision: auto, bf16 on bf16 CPUs)
    "gan": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "d_warmup_steps": 1},
    "tune": {"num_samples": 1, "epochs": 1, "max_concurrent_trials": 1},
    "mlflow": {"experiment": "dvc-train-test"},
}


def copy_repo(dest: Path) -> Path:
    """The repo's tracked and unignored files (no data, no outputs) as a fresh git repo."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    archive = dest.parent / "repo.tar"
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, files):
            if (REPO / name).is_file():
                tar.add(REPO / name, arcname=name)
    dest.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "t@example.com"],
        ["git", "config", "user.name", "test"],
    ):
        subprocess.run(command, cwd=dest, check=True)
    return dest


def tiny_params(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "tiny"], cwd=repo, check=True)


def dvc(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(shared_ray, tmp_path_factory):
    """The copy after ``dvc repro train_gan``: (repo, env, the repro's result)."""
    import ray

    tmp_path = tmp_path_factory.mktemp("dvc-train")
    repo = copy_repo(tmp_path / "repo")
    tiny_params(repo)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.pop("RAY_ADDRESS", None)
    data = dvc(repo, "repro", "degrade", env=env)  # local processes: the data stages' own path
    assert data.returncode == 0, (data.stdout + data.stderr)[-4000:]
    env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address  # the session's Ray: no start-up per stage
    return repo, env, dvc(repo, "repro", "train_gan", env=env)


def test_dvc_repro_train_gan_in_a_copy_of_the_repo(trained):
    repo, env, result = trained
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    for stage in ("pretrain", "train_gan"):
        assert f"Running stage '{stage}'" in result.stdout
    generator = load_generator(repo / "models/gan/generator.pt")
    assert generator.config["channels"] == 8
    assert read_checkpoint(repo / "models/gan/generator.pt")["provenance"]["weights"] == "ema"
    saved_d = torch.load(repo / "models/gan/discriminator.pt", weights_only=True)
    Discriminator(**saved_d["architecture"]).load_state_dict(saved_d["state_dict"])

    metrics = json.loads(dvc(repo, "metrics", "show", "--json", env=env).stdout)
    by_file = next(iter(metrics.values()))["data"]
    gan = by_file["metrics/train_gan.json"]["data"]
    assert gan["steps"] == 2 and gan["val"]["images"] >= 1
    assert by_file["metrics/pretrain.json"]["data"]["steps"] == 2
    header = (repo / "plots/train_gan/history.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "loss_g_perceptual", "d_real_mean", "d_fake_mean", "val_psnr_y", "val_ssim_y"} <= set(
        header
    )

    plots = dvc(repo, "plots", "show", "--json", env=env)
    assert plots.returncode == 0, plots.stderr[-2000:]
    rendered = json.loads(plots.stdout)["data"]
    assert {"pretrain_loss", "pretrain_psnr_y", "train_gan_d_means", "train_gan_psnr_ssim_y"} <= set(rendered)

    again = dvc(repo, "repro", "train_gan", env=env)
    assert again.returncode == 0 and "Running stage" not in again.stdout  # everything up to date


def set_baselines(repo: Path, enabled: bool) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["baselines"]["enabled"] = enabled
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_builds_the_baseline_arms_and_the_comparison_table(trained):
    """Baselines off: the variants write 'off' records and train nothing. On: DVC builds
    pretrain_baseline@srresnet → train_gan_baseline@srgan and every row has measured numbers."""
    from mlflow import MlflowClient

    from dpsrgan.models.srgan_discriminator import SRGANDiscriminator

    repo, env, _ = trained
    off = dvc(repo, "repro", "train_gan_baseline@srgan", env=env)  # (test_evaluation: the marked rows)
    assert off.returncode == 0, (off.stdout + off.stderr)[-4000:]
    for stage in ("pretrain_baseline@srresnet", "train_gan_baseline@srgan"):
        assert f"Running stage '{stage}'" in off.stdout
    for arm in ("srresnet", "srgan"):
        assert [p.name for p in (repo / "models/baselines" / arm).iterdir()] == ["arm.json"]  # nothing trained

    set_baselines(repo, True)
    on = dvc(repo, "repro", "evaluate", env=env)
    assert on.returncode == 0, (on.stdout + on.stderr)[-4000:]
    for stage in ("pretrain_baseline@srresnet", "train_gan_baseline@srgan", "evaluate"):
        assert f"Running stage '{stage}'" in on.stdout
    for stage in ("'pretrain'", "'tune'", "'train_gan'"):  # DPSRGAN's stages are cached
        assert f"Running stage {stage}" not in on.stdout
    srresnet = load_generator(repo / "models/baselines/srresnet/generator.pt")
    assert srresnet.config["dilation"] is None and srresnet.config["channels"] == 8
    saved_d = read_checkpoint(repo / "models/baselines/srgan/discriminator.pt")
    assert saved_d["architecture"]["kind"] == "srgan"
    SRGANDiscriminator(**{k: v for k, v in saved_d["architecture"].items() if k != "kind"}).load_state_dict(
        saved_d["state_dict"]
    )

    summary = json.loads((repo / "metrics/evaluate.json").read_text())
    for method in ("bicubic", "srresnet", "srgan", "pretrained", "gan"):
        assert summary[method]["psnr_y"] > 0 and summary[method]["ms_per_image"] >= 0, method
    assert summary["srgan"]["d_params"] > summary["gan"]["d_params"] > 0  # dense head vs PatchGAN
    assert summary["srresnet"]["num_params"] < summary["pretrained"]["num_params"] == summary["gan"]["num_params"]
    table = (repo / "outputs/evaluate/table.md").read_text()
    lines = [line.strip("| ").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    _, rows = lines[0], {cells[0]: dict(zip(lines[0], cells, strict=True)) for cells in lines[1:]}
    assert list(rows) == ["Bicubic", "SRResNet", "SRGAN", "Pretrained G (pixel loss)", "DPSRGAN"]
    measured = ["PSNR-Y", "SSIM-Y", "PSNR-RGB", "SSIM-RGB", "HF energy", "Colour shift mean / worst", "ms/image"]
    for name, row in rows.items():  # every measured cell of every row is a number
        expected = measured + ([] if name == "Bicubic" else ["vs bicubic", "G params", "GFLOPs/MP"])
        expected += ["D params"] if name in ("SRGAN", "DPSRGAN") else []
        assert all(row[column] != "–" for column in expected), (name, row)
    assert {name for name, row in rows.items() if row["Paper PSNR"] != "–"} == {"SRResNet", "SRGAN", "DPSRGAN"}

    shown = json.loads(dvc(repo, "exp", "show", "--json", env=env).stdout)
    assert "metrics/baselines/srgan.json" in json.dumps(shown)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("dvc-train-test").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time DESC"])
    parent = next(run for run in runs if run.info.run_name == "evaluate")
    arms = {run.data.tags["arm"] for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert arms == {"bicubic", "srresnet", "srgan", "pretrained", "dpsrgan"}
