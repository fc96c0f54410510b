"""The shared MLflow tracking server of infra/mlflow, for real: PostgreSQL, S3, basic auth.

``mlflow server --app-name basic-auth`` runs with the committed ``infra/mlflow/basic_auth.ini``
(only its database host/port swapped for the test's PostgreSQL), runs and the registry in
PostgreSQL (Debian's server, tests/fixtures/postgres.py), artefacts in S3 (moto over HTTP),
the admin account and the database password from the environment — as docker-compose.yml
wires it. Clients talk to it without any S3 credentials: artefacts are proxied by the server.

The promotion goes through ``dpsrgan promote``, as a user would run it against the shared server.
"""

from __future__ import annotations

import configparser
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.services import free_port, stop_group, wait_http

INFRA_MLFLOW = Path(__file__).resolve().parents[1] / "infra" / "mlflow"
BUCKET = "tracking-artifacts"


@dataclass(frozen=True)
class TrackingServer:
    uri: str
    admin: tuple[str, str]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory, postgres, s3_server):
    root = tmp_path_factory.mktemp("tracking")
    for database in ("mlflow", "mlflow_auth"):
        postgres.create_database(database)
    s3_server.client().create_bucket(Bucket=BUCKET)
    auth = configparser.ConfigParser()
    auth.read(INFRA_MLFLOW / "basic_auth.ini")
    auth["mlflow"]["database_uri"] = postgres.url("mlflow_auth")
    with open(root / "basic_auth.ini", "w") as file:
        auth.write(file)
    admin = ("admin", secrets.token_urlsafe(16))
    port = free_port()
    env = {
        **os.environ,
        "PGPASSWORD": postgres.password,
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": admin[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            postgres.url("mlflow"),
            "--artifacts-destination",
            f"s3://{BUCKET}/mlflow",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", timeout=120, proc=proc)
        yield TrackingServer(uri, admin)
    finally:
        stop_group(proc)
        log.close()


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    headers = {"Authorization": "Basic " + b64encode(":".join(auth).encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _as_user(monkeypatch, username: str, password: str) -> None:
    """Credentials the way a user or the cluster gives them: env, and no S3 keys at all."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _create_user(server: TrackingServer, monkeypatch, username: str) -> str:
    from mlflow.server import get_app_client

    password = secrets.token_urlsafe(16)
    with monkeypatch.context() as admin_env:
        _as_user(admin_env, *server.admin)
        get_app_client("basic-auth", tracking_uri=server.uri).create_user(username, password)
    return password


@pytest.mark.slow
def test_unauthenticated_and_wrong_password_requests_are_refused(tracking_server):
    search = f"{tracking_server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(search) == 401
    assert _get(search, ("admin", "wrong-password")) == 401
    assert _get(search, tracking_server.admin) == 200
    assert _get(f"{tracking_server.uri}/health") == 200  # load balancers may probe without auth


@pytest.mark.slow
def test_run_artifact_model_version_and_aliases_through_the_server(
    tracking_server, monkeypatch, tmp_path, postgres, s3_server
):
    from mlflow.tracking import MlflowClient

    _as_user(monkeypatch, "ray-cluster", _create_user(tracking_server, monkeypatch, "ray-cluster"))
    client = MlflowClient(tracking_server.uri)
    experiment_id = client.create_experiment("shared-smoke")
    run = client.create_run(experiment_id, run_name="smoke")
    client.log_param(run.info.run_id, "gan.adv_weight", "0.001")
    client.log_metric(run.info.run_id, "psnr_y", 27.5)
    (tmp_path / "generator.txt").write_text("weights stand-in")
    client.log_artifact(run.info.run_id, str(tmp_path / "generator.txt"), artifact_path="model")
    client.set_terminated(run.info.run_id)

    client.create_registered_model("dpsrgan-shared")
    version = client.create_model_version(
        "dpsrgan-shared", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    ).version
    client.set_registered_model_alias("dpsrgan-shared", "challenger", version)  # as the register stage
    assert client.get_model_version_by_alias("dpsrgan-shared", "challenger").run_id == run.info.run_id
    promote = [sys.executable, "-m", "dpsrgan.cli", "promote", "--name", "dpsrgan-shared"]
    gate = ["--tracking-uri", tracking_server.uri, "--absolute", "psnr_y=20"]
    done = subprocess.run([*promote, *gate], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client.get_model_version_by_alias("dpsrgan-shared", "champion").version == version
    tags = client.get_model_version("dpsrgan-shared", version).tags
    assert tags["promotion.decision"] == "promoted" and tags["promotion.value.psnr_y"] == "27.5"

    # Where it all went: the run in PostgreSQL, the artefact in S3 (written by the server).
    with postgres.connect("mlflow") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT value FROM metrics WHERE run_uuid = %s AND key = 'psnr_y'", (run.info.run_id,))
        assert cursor.fetchone() == (27.5,)
    monkeypatch.undo()  # the test's own S3 credentials, to look into the bucket
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix="mlflow/")["Contents"]]
    assert any(key.endswith(f"{run.info.run_id}/artifacts/model/generator.txt") for key in keys), keys


@pytest.mark.slow
def test_a_reader_can_read_but_not_move_an_alias(tracking_server, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    password = _create_user(tracking_server, monkeypatch, "reader")
    with monkeypatch.context() as owner_env:
        _as_user(owner_env, *tracking_server.admin)
        owner = MlflowClient(tracking_server.uri)
        owner.create_registered_model("dpsrgan-guarded")
        version = owner.create_model_version("dpsrgan-guarded", source="s3://elsewhere/model").version
        owner.set_registered_model_alias("dpsrgan-guarded", "champion", version)
    _as_user(monkeypatch, "reader", password)
    reader = MlflowClient(tracking_server.uri)
    assert reader.get_model_version_by_alias("dpsrgan-guarded", "champion").version == version
    with pytest.raises(MlflowException, match="Permission denied"):
        reader.set_registered_model_alias("dpsrgan-guarded", "champion", "999")
