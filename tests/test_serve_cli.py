"""`dpsrgan serve` as users run it: a child process with its own local Ray, serving
``models:/NAME@champion`` from a real ``mlflow server``. It prints one ready line, follows the
alias when ``champion`` moves (the answers' X-Model-Version changes without a restart), and on
SIGTERM drains and exits 0 within 15 s, leaving none of the processes it started behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import mlflow
import psutil
import pytest
import requests
from mlflow import MlflowClient
from PIL import Image

from dpsrgan.lifecycle.client import CHAMPION
from dpsrgan.lifecycle.serving import log_pyfunc
from tests._tiny import save_tiny_generator, smooth_image
from tests.fixtures.services import free_port

pytestmark = pytest.mark.slow
STOP_BOUND_S = 15


def _png(side: int, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(smooth_image(seed, side)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def registered(mlflow_server, tmp_path) -> str:
    """Two versions of a tiny generator on the tracking server; champion → version 1."""
    name = f"serve-cli-{uuid.uuid4().hex[:8]}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(mlflow_server.tracking_uri)
    try:
        mlflow.set_experiment(f"test-{name}")
        for seed in (1, 2):
            with mlflow.start_run():
                log_pyfunc(save_tiny_generator(tmp_path / f"g{seed}.pt", seed=seed), registered_model_name=name)
    finally:
        mlflow.set_tracking_uri(previous)
    MlflowClient(mlflow_server.tracking_uri).set_registered_model_alias(name, CHAMPION, "1")
    return name


def _ready_line(proc: subprocess.Popen, limit_s: float) -> str:
    """The first stdout line (read in a thread so that a silent child cannot hang the test)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(limit_s)
    assert lines and lines[0], f"no ready line within {limit_s:.0f} s (exit code {proc.poll()})"
    return lines[0]


def _served_version(base: str) -> str:
    answer = requests.post(f"{base}/upscale", data=_png(16), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-model-version"]


def test_serve_follows_the_champion_and_stops_cleanly_on_sigterm(registered, mlflow_server, tmp_path):
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.tracking_uri, RAY_AUTH_MODE="disabled")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dpsrgan.cli", "serve", "--model", f"models:/{registered}@{CHAMPION}",
         "--port", str(port), "--reload-interval", "1", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=log, env=env, cwd=tmp_path, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _ready_line(proc, limit_s=240)
        assert ready.startswith(f"dpsrgan serve: ready at {base} ") and f"{registered}/1" in ready
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200
        assert _served_version(base) == f"{registered}/1"

        MlflowClient(mlflow_server.tracking_uri).set_registered_model_alias(registered, CHAMPION, "2")
        deadline = time.monotonic() + 60
        while _served_version(base) != f"{registered}/2":
            assert time.monotonic() < deadline, "the app never followed the moved alias"
            time.sleep(0.5)

        started = psutil.Process(proc.pid).children(recursive=True)
        assert any("raylet" in child.name() for child in started)
        answers: list[object] = []

        def in_flight() -> None:
            try:
                answers.append(requests.post(f"{base}/upscale", data=_png(64), timeout=60).status_code)
            except requests.ConnectionError as closed:  # the server went away mid-request: an answer too
                answers.append(closed)

        request = threading.Thread(target=in_flight, daemon=True)
        request.start()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BOUND_S) == 0
        assert proc.stdout.read().decode().strip().endswith("dpsrgan serve: stopped")
        left = [child for child in started if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
        assert left == [], [f"{child.pid} {child.name()}" for child in left]
        request.join(30)
        assert answers, "the request in flight was left hanging"  # answered (200/503) or closed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_serve_refuses_a_missing_checkpoint_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dpsrgan.cli", "serve", "--model", str(tmp_path / "none.pt"), "--port", str(free_port())],
        capture_output=True, timeout=120,
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "no such checkpoint file" in lines[0], lines
