"""``dpsrgan submit`` against a real two-node Ray cluster on loopback.

One cluster for the module (tests/fixtures/cluster.py): a head and a joined node, one CPU each,
token auth, the nodes holding the S3 credentials as an instance profile would. The job is this
repository's own pipeline — a clone with its photos, DVC remote and Ray storage in S3 (moto) and
a shrunken generator — and its MLflow run goes to a real tracking server. It is submitted the
way a user would, ``dpsrgan submit --fetch-outs -- dvc repro train_gan``, with the test
credentials in the submitting environment and in ``.dvc/config.local``: neither may reach the
cluster. The cluster runs download, degrade (Ray Data), pretrain (Ray Train, a worker per node),
tune (Ray Tune trials, each a Ray Train run) and train_gan; the outs come back through the DVC
remote and the job's log.

The fast tests at the top check the submission rules without a cluster, using Ray's own
packaging code on this repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from dpsrgan.cluster import results as job_results
from dpsrgan.errors import DpsrganError
from dpsrgan.cluster.submit import (
    FORWARDED_ENV,
    JOB_EXCLUDES,
    _LineFilter,
    build_runtime_env,
    forwarded_env,
    job_entrypoint,
    require_dvc_remote,
    resolve_address,
    stage_targets,
)
from tests.fixtures.dvc_project import QUICK_DATA, add_s3_remote, clone, dvc, git, update_params
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
        == "python -m dpsrgan.cluster.job train_gan"
    )
    assert job_entrypoint(["dvc", "repro"], fetch_outs=False) == "python -m dpsrgan.cluster.job"
    assert job_entrypoint(["python", "-m", "pipelines.pretrain", "--x", "a b"], False) == (
        "python -m pipelines.pretrain --x 'a b'"
    )
    with pytest.raises(DpsrganError, match="only `dvc repro` runs on a cluster"):
        job_entrypoint(["dvc", "exp", "run"], fetch_outs=False)
    with pytest.raises(DpsrganError, match="must be `dvc repro"):
        job_entrypoint(["python", "x.py"], fetch_outs=True)
    assert stage_targets(["-f", "train_gan", "evaluate"]) == ["--with-deps", "train_gan", "evaluate"]
    assert stage_targets(["--pull"]) == []


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


def test_results_travel_in_one_log_line_that_the_stream_hides():
    results = {"dvc.lock": b"schema: '2.0'\nstages: {}\n", "metrics/pretrain.json": b'{"psnr_y": 30.1}'}
    logs = f"training...\n{job_results.encode(results)}\ndone\n"
    assert job_results.decode(logs) == results
    assert job_results.decode("no marker here\n") is None
    shown: list[str] = []
    lines = _LineFilter(shown.append)
    for start in range(0, len(logs), 7):  # chunk boundaries fall inside lines
        lines.feed(logs[start : start + 7])
    lines.close()
    assert "".join(shown) == "training...\ndone\n"


def test_results_from_a_job_log_write_only_declared_uncached_outs(tmp_path):
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    job_results.install(tmp_path, {"dvc.lock": b"x", "metrics/pretrain.json": b"{}"})
    assert (tmp_path / "metrics" / "pretrain.json").read_bytes() == b"{}"
    for hostile in ("../escape.txt", "models/pretrain/generator.pt", "/etc/passwd"):
        with pytest.raises(DpsrganError, match="not uncached outs in dvc.yaml"):
            job_results.install(tmp_path, {"dvc.lock": b"y", hostile: b"z"})
    assert (tmp_path / "dvc.lock").read_bytes() == b"x"  # a refused bundle writes nothing
    assert not (tmp_path.parent / "escape.txt").exists()


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
    assert not top & {".git", ".venv", "data", "models", "mlruns", "tests"}
    assert not [n for n in names if n.startswith("outputs/ray/")]  # local checkpoints
    cached = set(job_results.cached_out_paths(REPO))
    assert "models/pretrain/generator.pt" in cached and not cached & set(names)
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

# The real pipeline, shrunk: one photo per split, a generator with 8 channels and 2 blocks, one
# epoch of two steps (the GAN stage's first is D's warm-up), two tune trials. 0.6 CPU per worker
# on 1-CPU nodes places exactly one worker on each node. The head must still fit a read (0.1) beside whatever lands there: a
# worker (0.6) and a tune trial's driver (0.3).
TINY_STEPS = {"epochs": 1, "batch_size": 2, "steps_per_epoch": 2, "precision": "fp32"}
TINY_PIPELINE = {
    "model": {"channels": 8, "num_blocks": 2, "d_channels": 8},
    "loss": {"vgg_weights": "random", "vgg_layer": "relu2_2"},
    "pretrain": TINY_STEPS,
    "gan": {**TINY_STEPS, "d_warmup_steps": 1},  # one D-only step, then one full GAN step
    "tune": {"num_samples": 2, "epochs": 1, "cpus_per_trial": 0.3, "max_concurrent_trials": 1},
    "ray": {"num_workers": 2, "cpus_per_worker": 0.6, "cpus_per_data_task": 0.1, "max_failures": 0},
    "mlflow": {"experiment": "cluster-pipeline"},
}
STAGES_RUN = ("download", "degrade", "pretrain", "tune", "train_gan")
BUCKETS = {"source": "cluster-source", "remote": "cluster-dvc", "storage": "cluster-ray"}


@pytest.fixture(scope="module")
def cluster_project(tmp_path_factory, s3_server):
    """A clone of this repo set up as a team would for a cluster: photos in S3, an S3 DVC remote
    in ``.dvc/config``, ``ray.storage_path`` in S3; credentials only in ``.dvc/config.local`` and
    the environment; local decoys that must not ride along in the job package."""
    from dpsrgan.data.folder import skimage_photos

    root = tmp_path_factory.mktemp("cluster-project")
    s3 = s3_server.client()
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    with zipfile.ZipFile(root / "photos.zip", "w") as archive:
        for photo in skimage_photos():
            archive.write(photo, photo.name)
    s3.upload_file(str(root / "photos.zip"), BUCKETS["source"], "photos.zip")

    repo = clone(REPO, root / "repo")
    endpoint = s3_server.endpoint_url
    shared = {
        "data": {"uri": f"s3://{BUCKETS['source']}/photos.zip", "s3_endpoint_url": endpoint, **QUICK_DATA},
        "ray": {"storage_path": f"s3://{BUCKETS['storage']}/ray", "s3_endpoint_url": endpoint},
    }
    update_params(repo, **{key: {**TINY_PIPELINE.get(key, {}), **shared.get(key, {})} for key in {*TINY_PIPELINE, *shared}})
    add_s3_remote(repo, f"s3://{BUCKETS['remote']}/store", endpoint)
    git(repo, "commit", "-q", "-am", "cluster run: photos, DVC remote and Ray storage in S3")
    for key, value in (
        ("access_key_id", TEST_AWS_ENV["AWS_ACCESS_KEY_ID"]),
        ("secret_access_key", TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"]),
    ):
        dvc(repo, "remote", "modify", "--local", "store", key, value)
    for decoy in ("data/decoy.bin", ".venv/lib/marker", "mlruns/0/meta.yaml"):
        (repo / decoy).parent.mkdir(parents=True, exist_ok=True)
        (repo / decoy).write_bytes(b"x" * 1024)
    return repo


@pytest.fixture(scope="module")
def cluster_run(ray_cluster, cluster_project, mlflow_server):
    """``dpsrgan submit --fetch-outs -- dvc repro train_gan``, exactly as a user types it."""
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
            "train_gan",
        ],
        cwd=cluster_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.monotonic() - started
    workers = train_worker_nodes(ray_cluster)
    print(
        f"\n[cluster train_gan] exit {done.returncode} after {wall:.1f}s wall; "
        f"{len(ray_cluster.alive_nodes())} nodes; train workers on {sorted(n[:8] for n in workers)}",
        file=sys.stderr,
    )
    return done


def train_worker_nodes(cluster) -> list[str]:
    """The node of every Ray Train worker actor the cluster has run (alive or finished)."""
    actors = cluster.get("/api/v0/actors?detail=1&limit=1000")["data"]["result"]["result"]
    return [actor["node_id"] for actor in actors if actor["class_name"] == "RayTrainWorker"]


def read_task_nodes(cluster) -> dict[str, set[str]]:
    """Node ids per Ray Data task that reads files: the Parquet reads and degrade's file reads."""
    tasks = cluster.get("/api/v0/tasks?detail=1&limit=10000")["data"]["result"]["result"]
    nodes: dict[str, set[str]] = {}
    for task in tasks:
        name = task.get("name") or ""
        if task.get("node_id") and ("_read_parquet_files" in name or "_read_files" in name):
            nodes.setdefault(name, set()).add(task["node_id"])
    return nodes


@pytest.mark.slow
def test_training_stages_succeed_with_a_worker_on_each_node(cluster_run, cluster_project, ray_cluster):
    from dpsrgan.checkpoint import load_generator

    done = cluster_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "SUCCEEDED" in done.stderr
    for stage in STAGES_RUN:  # the job's log was streamed here
        assert f"Running stage '{stage}'" in done.stdout, done.stdout[-3000:]
    for stage in ("pretrain", "gan"):
        generator = load_generator(cluster_project / "models" / stage / "generator.pt")
        assert generator.config["channels"] == 8 and generator.config["num_blocks"] == 2
    assert json.loads((cluster_project / "outputs" / "tune" / "best.json").read_text())["adv_weight"] > 0
    # Uncached outs (in git, not in the DVC remote) came back through the job log.
    history = (cluster_project / "plots" / "pretrain" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # header + the one epoch
    assert json.loads((cluster_project / "metrics" / "pretrain.json").read_text())["epochs"] == 1
    nodes = {node["node_id"] for node in ray_cluster.alive_nodes()}
    assert len(nodes) == 2
    assert set(train_worker_nodes(ray_cluster)) == nodes


@pytest.mark.slow
def test_data_is_read_on_the_node_that_holds_it(cluster_run, ray_cluster):
    """The job's DVC outs exist on the driver's node (the head) only; every file read runs there.

    On this one-host cluster a read on the other node would work by accident, which is why the
    placement itself is checked: on separate hosts it is the difference between a run and a
    FileNotFoundError."""
    assert cluster_run.returncode == 0
    head = next(node["node_id"] for node in ray_cluster.alive_nodes() if node["is_head_node"])
    reads = read_task_nodes(ray_cluster)
    assert any("_read_parquet_files" in name for name in reads), reads  # train/valid shards
    assert any("_read_files" in name for name in reads), reads  # degrade's photos
    assert {name: nodes for name, nodes in reads.items() if nodes != {head}} == {}
    # The work after a read is not fused into it, or it would inherit the pin and run on the head.
    assert [name for name in reads if "->" in name] == []


@pytest.mark.slow
def test_checkpoints_live_in_shared_storage(cluster_run, s3_server):
    assert cluster_run.returncode == 0
    keys = [
        o["Key"] for o in s3_server.client().list_objects_v2(Bucket=BUCKETS["storage"]).get("Contents", [])
    ]
    for run in ("ray/pretrain-", "ray/gan-", "ray/tune-"):
        assert [key for key in keys if key.startswith(run) and "/checkpoint" in key], (run, keys)


@pytest.mark.slow
def test_outs_come_back_through_the_dvc_remote(cluster_run, cluster_project, s3_server):
    assert cluster_run.returncode == 0
    lock = yaml.safe_load((cluster_project / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(STAGES_RUN)
    assert s3_server.client().list_objects_v2(Bucket=BUCKETS["remote"]).get("KeyCount", 0) > 0
    status = dvc(cluster_project, "status", "--json", "train_gan")
    assert json.loads(status.stdout) == {}  # the pulled outs match the cluster's dvc.lock


@pytest.mark.slow
def test_job_package_left_git_data_venv_and_local_config_home(cluster_run, ray_cluster):
    """What Ray unpacked on the nodes: the code and the DVC config, nothing large or secret."""
    assert cluster_run.returncode == 0
    packages = [
        path
        for node_dir in ray_cluster.node_dirs
        for path in node_dir.glob("session_*/runtime_resources/working_dir_files/*")
        if (path / "dvc.yaml").is_file()
    ]
    assert packages
    for package in packages:
        top = {path.name for path in package.iterdir()}
        assert {"dpsrgan", "pipelines", "params.yaml", "dvc.yaml", ".dvc"} <= top
        assert not top & {".git", ".venv", "data", "mlruns", "models"}
        assert not (package / ".dvc" / "config.local").exists()


@pytest.mark.slow
def test_run_lands_on_the_shared_tracking_server(cluster_run, cluster_project, mlflow_server):
    from mlflow.tracking import MlflowClient

    assert cluster_run.returncode == 0
    client = MlflowClient(mlflow_server.tracking_uri)
    experiment = client.get_experiment_by_name("cluster-pipeline")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.tags["stage"] for run in runs) == ["gan", "pretrain", "tune", "tune", "tune"]
    run = next(run for run in runs if run.data.tags["stage"] == "pretrain")
    assert run.info.status == "FINISHED"
    assert run.data.params["model.channels"] == "8"
    assert run.data.tags["lineage.git_commit"] == git(cluster_project, "rev-parse", "HEAD").strip()
    assert run.data.metrics["global_step"] == 2 and run.data.metrics["loss/g_mse"] > 0


@pytest.mark.slow
def test_no_credentials_in_cluster_logs_job_log_lock_or_mlflow(
    cluster_run, cluster_project, ray_cluster, mlflow_server
):
    from mlflow.tracking import MlflowClient

    leaks = find_secrets(
        [
            *ray_cluster.node_dirs,
            cluster_project / "dvc.lock",
            cluster_project / "params.yaml",
            cluster_project / "models",
            cluster_project / "metrics",
        ],
        SECRETS,
    )
    assert leaks == [], leaks
    assert not [s for s in SECRETS if s in cluster_run.stdout or s in cluster_run.stderr]
    client = MlflowClient(mlflow_server.tracking_uri)
    for run in client.search_runs([client.get_experiment_by_name("cluster-pipeline").experiment_id]):
        shown = json.dumps({"params": run.data.params, "tags": run.data.tags})
        assert not [s for s in SECRETS if s in shown]


@pytest.mark.slow
def test_failed_job_gives_a_nonzero_exit_and_its_status(ray_cluster, cluster_project):
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
        cwd=cluster_project,
        env=ray_cluster.env(RAY_ADDRESS=""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "about to fail" in done.stdout
    assert "FAILED" in done.stderr


@pytest.mark.slow
def test_a_client_without_the_cluster_token_is_refused(ray_cluster, cluster_project):
    env = {k: v for k, v in ray_cluster.env().items() if k != "RAY_AUTH_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "dpsrgan.cli", "submit", "--address", ray_cluster.address, "--", "echo", "hi"],
        cwd=cluster_project,
        env={**env, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "RAY_AUTH_MODE=token" in done.stderr.strip().splitlines()[-1]
