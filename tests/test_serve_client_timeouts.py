"""Every command that talks to a server gives one line within 30 s when the server is
unreachable, answers 5xx, or hangs — and `dpsrgan export` leaves nothing behind on SIGTERM.

The servers are small loopback HTTP servers started here that do exactly that: refuse (a free
port nobody listens on), answer ``/health`` 200 and everything else 500, or answer ``/health``
(and Ray's ``/api/version``) and then never answer the API. The commands run as the CLI runs
them (``register``'s parser, then ``run``); the ones of one case run side by side, since
waiting out a hung server is most of their time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pytest
import torch
from PIL import Image

from dpsrgan.checkpoint import save_generator
from dpsrgan.cli import COMMANDS, build_parser
from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import CLIENT_LIMITS
from dpsrgan.models.generator import Generator
from tests.fixtures.services import free_port

BOUND_S = 30.0


class _Handler(BaseHTTPRequestHandler):
    server: _FaultyServer

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        if self.path.startswith("/health"):
            return self._send(200, b"OK")
        if self.path == "/api/version" and self.server.mode == "hang":
            return self._send(200, json.dumps({"ray_version": "2.60.0", "version": "4"}).encode())
        if self.server.mode == "hang":
            self.server.release.wait(120)  # accept, read, never answer
            return None
        return self._send(500, b'{"error_code": "INTERNAL_ERROR", "message": "database is down"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class _FaultyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.mode = mode
        self.release = threading.Event()


@pytest.fixture(params=["unreachable", "5xx", "hang"])
def server(request) -> Iterator[str]:
    """The URL of a server in one of the three failure modes."""
    if request.param == "unreachable":
        yield f"http://127.0.0.1:{free_port()}"
        return
    faulty = _FaultyServer(request.param)
    threading.Thread(target=faulty.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{faulty.server_address[1]}"
    finally:
        faulty.release.set()
        faulty.shutdown()
        faulty.server_close()


@pytest.fixture()
def client_env(server) -> Iterator[str]:
    """The tracking URI → the server (set as MLflow sets it: other tests may have set it before);
    afterwards the previous URI, and none of the limits the commands set."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    saved = {key: os.environ.pop(key, None) for key in CLIENT_LIMITS}
    mlflow.set_tracking_uri(server)
    yield server
    mlflow.set_tracking_uri(previous)
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value


def _run(argv: list[str]) -> str:
    """Run one command as the CLI does; its one-line error (a command must not succeed here)."""
    import importlib

    args = build_parser().parse_args(argv)
    try:
        importlib.import_module(COMMANDS[args.command]).run(args)
    except DpsrganError as error:
        return str(error)
    raise AssertionError(f"{argv[0]} succeeded against a broken server")


def test_every_server_command_fails_in_one_line_within_30_s(client_env, tmp_path):
    url = client_env
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    (tmp_path / "repo").mkdir()
    threaded = {
        "promote": ["promote", "--name", "m", "--params", str(tmp_path / "none.yaml")],
        "upscale": ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", "models:/m@champion"],
        "serve": ["serve", "--model", "models:/m@champion", "--port", str(free_port())],
        "submit": ["submit", "--address", url, "--working-dir", str(tmp_path / "repo"), "--", "python", "-c", "pass"],
    }
    results: dict[str, str | BaseException] = {}

    def run(name: str, argv: list[str]) -> None:
        try:
            results[name] = _run(argv)
        except BaseException as error:  # noqa: BLE001 - reported by the assertions below
            results[name] = error

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=item, daemon=True) for item in threaded.items()]
    for thread in threads:
        thread.start()
    # export installs a SIGTERM handler, which only the main thread may do
    run("export", ["export", "models:/m@champion", "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    for thread in threads:
        thread.join(max(0.0, BOUND_S - (time.monotonic() - start)))
    elapsed = time.monotonic() - start
    assert elapsed < BOUND_S and len(results) == 5, f"still waiting after {elapsed:.0f} s: {set(threaded) - set(results)}"
    for name, outcome in results.items():
        assert isinstance(outcome, str), f"{name}: {outcome!r}"
        assert "\n" not in outcome and url.split("//")[1] in outcome, f"{name}: {outcome}"
    assert not list(tmp_path.glob(".m.onnx.*"))  # export left no staging folder


def test_export_removes_its_staging_folder_on_sigterm(tmp_path):
    torch.manual_seed(0)
    checkpoint = save_generator(Generator(), tmp_path / "g.pt")  # full size: export takes seconds
    output = tmp_path / "out" / "g.onnx"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dpsrgan.cli", "export", str(checkpoint), "--format", "onnx", "-o", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(output.parent.glob(".g.onnx.*.tmp")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        assert list(output.parent.glob(".g.onnx.*.tmp")), "the export never staged"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err.decode()
    assert list(output.parent.iterdir()) == []  # no staging folder, no partial file
