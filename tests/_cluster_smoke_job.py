"""A tiny Ray Train job that stands in for a training stage in the cluster tests.

    python train_job.py --params params.yaml --out model

What a real stage does, shrunk: a TorchTrainer on ``ray.num_workers`` workers spread over the
cluster (DDP over gloo) runs a few SGD steps of a tiny model; every rank writes a file into the
checkpoint (rank 0 the weights), so the checkpoint in ``ray.storage_path`` shows which node each
rank ran on; the driver copies the final checkpoint into its DVC out and logs an MLflow run with
the weights as an artifact. It also records which top-level paths the job package held.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import mlflow
import ray
import ray.train
import torch
import yaml
from ray.train import Checkpoint, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer, prepare_model


def train_fn(config: dict) -> None:
    torch.manual_seed(0)
    model = prepare_model(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    loss = torch.tensor(0.0)
    for _ in range(config["steps"]):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    rank = ray.train.get_context().get_world_rank()
    with tempfile.TemporaryDirectory() as tmp:
        node = {"rank": rank, "node_id": ray.get_runtime_context().get_node_id()}
        Path(tmp, f"rank-{rank}.json").write_text(json.dumps(node))
        if rank == 0:
            torch.save(model.module.state_dict(), Path(tmp, "model.pt"))
        ray.train.report({"loss": float(loss)}, checkpoint=Checkpoint.from_directory(tmp))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    package = sorted(str(path) for path in Path.cwd().iterdir())
    trainer = TorchTrainer(
        train_fn,
        train_loop_config={"steps": params["train"]["steps"]},
        scaling_config=ScalingConfig(
            num_workers=params["ray"]["num_workers"],
            resources_per_worker={"CPU": 1},
            placement_strategy="SPREAD",
        ),
        run_config=RunConfig(name=f"smoke-{os.getpid()}", storage_path=params["ray"]["storage_path"]),
    )
    result = trainer.fit()
    shutil.rmtree(args.out, ignore_errors=True)
    with result.checkpoint.as_directory() as checkpoint_dir:
        shutil.copytree(checkpoint_dir, args.out)
    (args.out / "package.json").write_text(json.dumps([Path(p).name for p in package]))
    (args.out / "config-local.txt").write_text(
        Path(".dvc/config.local").read_text() if Path(".dvc/config.local").exists() else ""
    )
    mlflow.set_experiment("cluster-smoke")
    with mlflow.start_run(run_name="smoke"):
        mlflow.log_params({"steps": params["train"]["steps"], "num_workers": params["ray"]["num_workers"]})
        mlflow.set_tag("git_commit", os.environ.get("DPSRGAN_GIT_COMMIT", ""))
        mlflow.log_metric("loss", result.metrics["loss"])
        mlflow.log_artifact(str(args.out / "model.pt"), artifact_path="model")
    print(f"checkpoint {result.checkpoint.path} -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
