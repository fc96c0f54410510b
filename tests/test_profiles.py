"""Params profiles: params.yaml is the composed quickstart, and the paper's CelebA recipe
(`dvc exp run -S profile=celeba`) runs the whole DAG end to end on a small CelebA-format
archive served by moto's S3 server, with ImageNet-format VGG19 weights fetched from S3 too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from dvc.utils.hydra import compose_and_dump

from dpsrgan.config import parse_params
from tests.fixtures.data import make_celeba_files
from tests.fixtures.dvc_project import REPO, clone, dvc, git, tool_env

# torchvision's VGG19 `features` conv layers: (index, in_channels, out_channels).
VGG19_CONVS = [
    (0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
    (14, 256, 256), (16, 256, 256), (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
]


def compose(profile: str, out: Path) -> dict:
    """What `dvc exp run -S profile=NAME` writes to params.yaml (DVC's own composition code)."""
    compose_and_dump(out, str(REPO / "conf"), None, "config", str(REPO), [f"profile={profile}"])
    return yaml.safe_load(out.read_text())


def test_params_yaml_is_the_composed_quickstart(tmp_path):
    committed = yaml.safe_load((REPO / "params.yaml").read_text())
    assert compose("quickstart", tmp_path / "params.yaml") == committed


def test_celeba_profile_is_the_papers_recipe(tmp_path):
    params = parse_params(compose("celeba", tmp_path / "params.yaml"), source="celeba profile")
    assert (params.data.source, params.data.uri, params.data.hr_size) == ("celeba", "gdrive", 128)
    assert params.degrade.scale == 4
    assert (params.model.channels, params.model.num_blocks, params.model.dilation) == (64, 16, 2)
    assert params.loss.vgg_weights == "torch-hub" and params.loss.vgg_layer == "conv5_4"
    assert params.loss.adv_weight == pytest.approx(1e-3)
    assert params.loss.real_label_range == (0.7, 1.0) and params.loss.fake_label_range == (0.0, 0.3)
    assert params.ray.use_gpu


def fake_imagenet_vgg19(directory: Path) -> Path:
    """A torchvision-format VGG19 file (random values, real keys and shapes), named as torch.hub
    names its files: the first 8 hex digits of its SHA-256 after the last dash."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for index, cin, cout in VGG19_CONVS:
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * 0.05
        state[f"features.{index}.bias"] = torch.zeros(cout)
    staging = directory / "vgg19.pth"
    torch.save(state, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:8]
    return staging.rename(directory / f"vgg19-{digest}.pth")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_celeba_recipe_end_to_end_from_s3(tmp_path, s3_server):
    source = make_celeba_files(tmp_path / "celeba", n_train=16, n_valid=3, n_test=3)
    vgg = fake_imagenet_vgg19(tmp_path)
    s3 = s3_server.client()
    s3.create_bucket(Bucket="mirror")
    for path in (source.archive, source.partition):
        s3.upload_file(str(path), "mirror", f"celeba/{path.name}")
    s3.upload_file(str(vgg), "mirror", f"weights/{vgg.name}")

    repo = clone(REPO, tmp_path / "repo")
    md5 = ",".join(f"{name}:{value}" for name, value in source.md5.items())
    small = {  # the recipe at toy scale: every stage runs, in minutes, on 2 CPUs
        "data.uri": "s3://mirror/celeba",
        "data.s3_endpoint_url": s3_server.endpoint_url,
        "data.md5": "{" + md5 + "}",
        "data.max_rejected_fraction": 0.5,  # the archive carries 5 broken images on purpose
        "data.hr_size": 32,
        "loss.vgg_weights": f"s3://mirror/weights/{vgg.name}",
        "model.channels": 8, "model.num_blocks": 2, "model.d_channels": 8,
        "pretrain.epochs": 1, "pretrain.steps_per_epoch": 2, "pretrain.batch_size": 2,
        "gan.epochs": 1, "gan.steps_per_epoch": 2, "gan.batch_size": 2, "gan.d_warmup_steps": 1,
        "pretrain.precision": "fp32", "gan.precision": "fp32",
        "ray.use_gpu": "false", "ray.num_workers": 1, "ray.cpus_per_worker": 0.5,
        "ray.storage_path": str(tmp_path / "ray"),
        "tune.num_samples": 1, "tune.epochs": 1, "tune.max_concurrent_trials": 1,
        "evaluate.grid_images": 2, "evaluate.batch_size": 2,
        "mlflow.registered_model": "dpsrgan-celeba-test",
    }
    overrides = [arg for key, value in small.items() for arg in ("-S", f"{key}={value}")]
    env = tool_env(
        {
            "AWS_ENDPOINT_URL": s3_server.endpoint_url,  # VGG weights from the S3 mirror
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        }
    )
    dvc(repo, "exp", "run", "-S", "profile=celeba", *overrides, env=env)

    params = parse_params(yaml.safe_load((repo / "params.yaml").read_text()))
    assert params.data.source == "celeba" and params.data.uri == "s3://mirror/celeba"
    manifest = json.loads((repo / "data/processed/manifest.json").read_text())
    # At hr_size 32 the archive's 40x50 "too small" face is big enough: it is kept, the rest rejected.
    rejected = {name for name, reason in source.broken.items() if reason != "too small"}
    counts = {split: manifest["splits"][split]["rows"] for split in ("train", "valid", "test")}
    expected = {split: len(names) for split, names in source.good.items()}
    assert counts == {**expected, "train": expected["train"] + 1}
    assert len(manifest["rejected"]) == len(rejected)
    evaluation = json.loads((repo / "metrics/evaluate.json").read_text())
    assert {"bicubic", "pretrained", "gan"} <= set(evaluation)
    assert evaluation["srgan"]["psnr_y"] > 0 and evaluation["srresnet"]["psnr_y"] > 0  # the profile trains the baselines
    registered = json.loads((repo / "outputs/register/version.json").read_text())
    assert registered["name"] == "dpsrgan-celeba-test" and int(registered["version"]) == 1
    assert (repo / "outputs/evaluate/samples.png").stat().st_size > 0
    status = dvc(repo, "status", env=env).stdout
    assert "up to date" in status, status
    assert git(repo, "status", "--porcelain", "--", "conf") == ""


def test_every_stage_param_is_in_params_yaml():
    """DVC refuses to run a stage whose listed param is missing from params.yaml: catch it here."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    missing = []
    for name, stage in stages.items():
        for key in stage.get("do", stage).get("params", []):  # foreach variants: their `do` body
            node = params
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{name}: {key}")
                    break
                node = node[part]
    assert missing == []
