"""``dpsrgan submit`` against a real two-node Ray cluster on loopback.

One cluster for the module (tests/fixtures/cluster.py): a head and a joined node, one CPU each,
token auth, the nodes holding the S3 credentials as an instance profile would. The job is a
throw-away DVC project whose one stage is a tiny TorchTrainer run (tests/_cluster_smoke_job.py)
with its checkpoints in S3 (moto) and its MLflow run on a real tracking server. It is submitted
the way a user would, ``dpsrgan submit --fetch-outs -- dvc repro``, with the test credentials in
the submitting environment and in ``.dvc/config.local`` — neither may reach the cluster.

The fast tests at the top check the submission rules without a cluster, using Ray's own
packaging code on this repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from dpsrgan.cluster_job import push_targets
from dpsrgan.errors import DpsrganError
from dpsrgan.submit import (
    FORWARDED_ENV,
    JOB_EXCLUDES,
    _LineFilter,
    build_runtime_env,
    decode_lock,
    encode_lock,
    forwarded_env,
    job_entrypoint,
    require_dvc_remote,
    resolve_address,
)
from tests.fixtures.secrets import find_secrets
from tests.fixtures.services import TEST_AWS_ENV, free_port

REPO = Path(__file__).resolve().parents[1]
SECRETS = (TEST_AWS_ENV["AWS_ACCESS_KEY_ID"], TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


# ----------------------------------------------------------------------------- no cluster needed


def test_forwarded_env_keeps_settings_and_drops_credentials():
    environ = {
        **TEST_AWS_ENV,
        "AWS_SESSION_TOKEN": "session-token-0000",
        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
        "MLFLOW_TRACKING_PASSWORD": "pw-0000",
        "HOME": "/root",
    }
    env = forwarded_env(environ)
    assert env == {"AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}
    assert set(env) <= set(FORWARDED_ENV)


@pytest.mark.parametrize(
    "name", ["AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_TOKEN", "HF_API_KEY", "DB_PASSWORD"]
)
def test_credentials_cannot_be_forwarded_on_request(name):
    with pytest.raises(DpsrganError, match=f"--env {name}: credentials are not forwarded"):
        forwarded_env({name: "x"}, extra_names=[name])


def test_tracking_uri_with_a_password_is_refused():
    with pytest.raises(DpsrganError, match="MLFLOW_TRACKING_URI contains a password"):
        forwarded_env({"MLFLOW_TRACKING_URI": "https://bob:hunter2@mlflow.internal"})


def test_address_comes_from_flag_then_api_server_then_ray_address():
    env = {"RAY_API_SERVER_ADDRESS": "http://a:8265", "RAY_ADDRESS": "http://b:8265"}
    assert resolve_address("http://c:8265/", env) == "http://c:8265"
    assert resolve_address(None, env) == "http://a:8265"
    assert resolve_address(None, {"RAY_ADDRESS": "http://b:8265"}) == "http://b:8265"
    with pytest.raises(DpsrganError, match="not a job server URL"):
        resolve_address(None, {"RAY_ADDRESS": "10.0.0.1:6379"})
    with pytest.raises(DpsrganError, match="no Ray cluster given"):
        resolve_address(None, {})


def test_entrypoints():
    assert (
        job_entrypoint(["dvc", "repro", "train_gan"], fetch_outs=True)
        == "python -m dpsrgan.cluster_job train_gan"
    )
    assert job_entrypoint(["dvc", "repro"], fetch_outs=False) == "python -m dpsrgan.cluster_job"
    assert job_entrypoint(["python", "-m", "pipelines.pretrain", "--x", "a b"], False) == (
        "python -m pipelines.pretrain --x 'a b'"
    )
    with pytest.raises(DpsrganError, match="only `dvc repro` runs on a cluster"):
        job_entrypoint(["dvc", "exp", "run"], fetch_outs=False)
    with pytest.raises(DpsrganError, match="must be `dvc repro"):
        job_entrypoint(["python", "x.py"], fetch_outs=True)
    assert push_targets(["-f", "train_gan", "evaluate"]) == ["--with-deps", "train_gan", "evaluate"]
    assert push_targets(["--pull"]) == []


def test_dvc_repro_needs_a_committed_default_remote(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    autostage = true\n")
    (tmp_path / ".dvc" / "config.local").write_text(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = /x\n"
    )
    with pytest.raises(DpsrganError, match="no default DVC remote"):
        require_dvc_remote(tmp_path)
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://bucket/dvc\n"
    )
    assert require_dvc_remote(tmp_path) == "store"


def test_lock_travels_in_one_log_line_that_the_stream_hides():
    lock = b"schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n"
    logs = f"training...\n{encode_lock(lock)}\ndone\n"
    assert decode_lock(logs) == lock
    assert decode_lock("no marker here\n") is None
    shown: list[str] = []
    lines = _LineFilter(shown.append)
    for start in range(0, len(logs), 7):  # chunk boundaries fall inside lines
        lines.feed(logs[start : start + 7])
    lines.close()
    assert "".join(shown) == "training...\ndone\n"


def test_job_package_of_this_repo_is_small_and_leaves_data_and_secrets_home(tmp_path):
    """Zip the repo with Ray's own packaging code and the runtime env dpsrgan submit builds."""
    from ray._private.runtime_env.packaging import create_package

    runtime_env = build_runtime_env(REPO, {})
    package = tmp_path / "pkg.zip"
    create_package(
        runtime_env["working_dir"], package, include_gitignore=True, excludes=runtime_env["excludes"]
    )
    names = zipfile.ZipFile(package).namelist()
    top = {name.split("/")[0] for name in names}
    assert {"dpsrgan", "pipelines", "params.yaml"} <= top
    assert not top & {".git", ".venv", "data", "models", "outputs", "mlruns"}
    assert not [n for n in names if n.startswith((".dvc/cache/", ".dvc/tmp/")) or n == ".dvc/config.local"]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "dpsrgan/data/__init__.py" in names  # "/data" is anchored at the root
    assert package.stat().st_size < 5 * 1024**2, f"job package is {package.stat().st_size / 1024**2:.1f} MiB"
    assert set(JOB_EXCLUDES) <= set(runtime_env["excludes"])
    assert "pip" not in runtime_env and "conda" not in runtime_env  # the cluster env is pinned


def test_unreachable_job_server_is_a_one_line_error(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpsrgan.cli",
            "submit",
            "--address",
            f"http://127.0.0.1:{free_port()}",
            "--",
            "echo",
            "hi",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("dpsrgan submit: error: Ray job server at http://127.0.0.1:")
    )


# ----------------------------------------------------------------------------- on the cluster

SMOKE_DVC_YAML = {
    "stages": {
        "train": {
            "cmd": "python train_job.py --params params.yaml --out model",
            "deps": ["train_job.py"],
            "params": ["train.steps", "ray.num_workers", "ray.storage_path"],
            "outs": ["model"],
        }
    }
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory, s3_server):
    """A git + DVC project: one Ray Train stage, an S3 DVC remote, decoys that must stay home."""
    repo = tmp_path_factory.mktemp("smoke-project")
    s3 = s3_server.client()
    for bucket in ("smoke-dvc", "smoke-ray"):
        s3.create_bucket(Bucket=bucket)
    endpoint = s3_server.endpoint_url
    host = endpoint.removeprefix("http://")
    _git(repo, "init", "-q")
    _dvc(repo, "init", "-q")
    _dvc(repo, "remote", "add", "-d", "store", "s3://smoke-dvc/store")
    _dvc(repo, "remote", "modify", "store", "endpointurl", endpoint)
    _dvc(repo, "remote", "modify", "store", "region", "us-east-1")
    # How a user keeps remote credentials out of git; the job package must not carry them.
    _dvc(repo, "remote", "modify", "--local", "store", "access_key_id", TEST_AWS_ENV["AWS_ACCESS_KEY_ID"])
    _dvc(
        repo,
        "remote",
        "modify",
        "--local",
        "store",
        "secret_access_key",
        TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    shutil.copy(Path(__file__).with_name("_cluster_smoke_job.py"), repo / "train_job.py")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(SMOKE_DVC_YAML, sort_keys=False))
    storage = f"s3://smoke-ray/checkpoints?endpoint_override={host}&scheme=http&region=us-east-1"
    params = {"train": {"steps": 3}, "ray": {"num_workers": 2, "storage_path": storage}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / ".gitignore").write_text("/data\n/.venv\n/mlruns\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "smoke project")
    for decoy in ("data/big.bin", ".venv/lib/marker", "mlruns/0/meta.yaml"):
        (repo / decoy).parent.mkdir(parents=True, exist_ok=True)
        (repo / decoy).write_bytes(b"x" * 1024)
    return repo


@pytest.fixture(scope="module")
def smoke_run(ray_cluster, smoke_project, mlflow_server):
    """``dpsrgan submit --fetch-outs -- dvc repro``, exactly as a user types it."""
    env = ray_cluster.env(MLFLOW_TRACKING_URI=mlflow_server.tracking_uri, RAY_ADDRESS="")
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpsrgan.cli",
            "submit",
            "--address",
            ray_cluster.address,
            "--fetch-outs",
            "--",
            "dvc",
            "repro",
        ],
        cwd=smoke_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    wall = time.monotonic() - started
    ranks = sorted((smoke_project / "model").glob("rank-*.json")) if done.returncode == 0 else []
    placement = ", ".join(
        f"rank {json.loads(r.read_text())['rank']} on node {json.loads(r.read_text())['node_id'][:8]}"
        for r in ranks
    )
    print(f"\n[smoke job] exit {done.returncode} after {wall:.1f}s wall; {placement}", file=sys.stderr)
    return done, wall


@pytest.mark.slow
def test_training_job_succeeds_with_workers_on_both_nodes(smoke_run, smoke_project, ray_cluster):
    done, _ = smoke_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "SUCCEEDED" in done.stderr
    assert "Running stage 'train'" in done.stdout  # the job's log was streamed here
    weights = torch.load(smoke_project / "model" / "model.pt", weights_only=True)
    assert set(weights) == {"weight", "bias"} and weights["weight"].shape == (1, 4)
    placed = {json.loads((smoke_project / "model" / f"rank-{r}.json").read_text())["node_id"] for r in (0, 1)}
    assert placed == {node["node_id"] for node in ray_cluster.alive_nodes()}
    assert len(placed) == 2


@pytest.mark.slow
def test_checkpoints_live_in_shared_storage(smoke_run, s3_server):
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="smoke-ray").get("Contents", [])]
    names = {key.rsplit("/", 1)[-1] for key in keys}
    assert {"model.pt", "rank-0.json", "rank-1.json"} <= names, keys


@pytest.mark.slow
def test_outs_come_back_through_the_dvc_remote(smoke_run, smoke_project, s3_server):
    lock = yaml.safe_load((smoke_project / "dvc.lock").read_text())
    assert lock["stages"]["train"]["outs"][0]["path"] == "model"
    assert s3_server.client().list_objects_v2(Bucket="smoke-dvc").get("KeyCount", 0) > 0
    status = _dvc(smoke_project, "status", "--json")
    assert json.loads(status.stdout) == {}  # the pulled outs match the cluster's dvc.lock


@pytest.mark.slow
def test_job_package_left_git_data_venv_and_local_config_home(smoke_run, smoke_project):
    package = set(json.loads((smoke_project / "model" / "package.json").read_text()))
    assert {"train_job.py", "dvc.yaml", "params.yaml", ".dvc"} <= package
    assert not package & {".git", ".venv", "data", "mlruns", "model"}
    # The job's .dvc/config.local is the one cluster_job wrote, not ours with the keys.
    assert "no_scm" in (smoke_project / "model" / "config-local.txt").read_text()
    assert TEST_AWS_ENV["AWS_ACCESS_KEY_ID"] not in (smoke_project / "model" / "config-local.txt").read_text()


@pytest.mark.slow
def test_run_lands_on_the_shared_tracking_server(smoke_run, smoke_project, mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.tracking_uri)
    experiment = client.get_experiment_by_name("cluster-smoke")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params == {"steps": "3", "num_workers": "2"}
    assert run.data.tags["git_commit"] == _git(smoke_project, "rev-parse", "HEAD").strip()
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/model.pt"]


@pytest.mark.slow
def test_no_credentials_in_cluster_logs_job_log_lock_or_mlflow(
    smoke_run, smoke_project, ray_cluster, mlflow_server
):
    from mlflow.tracking import MlflowClient

    done, _ = smoke_run
    leaks = find_secrets(
        [
            *ray_cluster.node_dirs,
            smoke_project / "dvc.lock",
            smoke_project / "params.yaml",
            smoke_project / "model",
        ],
        SECRETS,
    )
    assert leaks == [], leaks
    assert not [s for s in SECRETS if s in done.stdout or s in done.stderr]
    client = MlflowClient(mlflow_server.tracking_uri)
    for run in client.search_runs([client.get_experiment_by_name("cluster-smoke").experiment_id]):
        shown = json.dumps({"params": run.data.params, "tags": run.data.tags})
        assert not [s for s in SECRETS if s in shown]


@pytest.mark.slow
def test_failed_job_gives_a_nonzero_exit_and_its_status(ray_cluster, smoke_project):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpsrgan.cli",
            "submit",
            "--address",
            ray_cluster.address,
            "--",
            "python",
            "-c",
            "import sys; print('about to fail'); sys.exit(3)",
        ],
        cwd=smoke_project,
        env=ray_cluster.env(RAY_ADDRESS=""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "about to fail" in done.stdout
    assert "FAILED" in done.stderr


@pytest.mark.slow
def test_a_client_without_the_cluster_token_is_refused(ray_cluster, smoke_project):
    env = {k: v for k, v in ray_cluster.env().items() if k != "RAY_AUTH_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "dpsrgan.cli", "submit", "--address", ray_cluster.address, "--", "echo", "hi"],
        cwd=smoke_project,
        env={**env, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "RAY_AUTH_MODE=token" in done.stderr.strip().splitlines()[-1]
