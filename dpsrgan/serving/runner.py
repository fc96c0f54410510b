"""``dpsrgan serve`` in the foreground: check what can be checked before Ray starts, run the app
on a local Ray (or ``RAY_ADDRESS``), print one ready line, and stop within
:data:`STOP_BUDGET_S` on SIGTERM/SIGINT.

Stopping: the ingress is told to drain (new requests 503, ``/healthz`` 503), open requests get
up to :data:`DRAIN_S` to finish, then the local Ray — Serve, replicas, every process it started —
is shut down (on a cluster only our application is deleted). Should that overrun the budget, a
watchdog kills the processes this command started, by PID, and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import REGISTRY_PREFIX
from dpsrgan.serving.model_source import Pinned, pin
from dpsrgan.serving.settings import ServeSettings

logger = logging.getLogger(__name__)

APP_NAME = "dpsrgan"
DRAIN_S = 4.0
STOP_BUDGET_S = 12.0
FORWARDED_ENV = ("MLFLOW_TRACKING_URI",)
"""Sent to a remote cluster's replicas (settings, never credentials: the cluster has its own)."""


def preflight(settings: ServeSettings, remote: bool) -> Pinned:
    """Everything that can fail in one line before Ray starts: the port, the model spec (an
    alias is resolved, bounded), a checkpoint file that does not load."""
    if not remote:
        with socket.socket() as probe:
            try:
                probe.bind((settings.host, settings.port))
            except OSError as error:
                raise DpsrganError(
                    f"--host {settings.host} --port {settings.port}: cannot listen there "
                    f"({error.strerror or error}); choose another --port"
                ) from None
    pinned = pin(settings.model)
    if not pinned.uri.startswith(REGISTRY_PREFIX):
        from dpsrgan.checkpoint import load_generator

        load_generator(pinned.uri, map_location="cpu")
    return pinned


def _print_now(line: str) -> None:
    print(line, flush=True)  # a supervisor reading a pipe must see the ready line at once


def serve_foreground(settings: ServeSettings, write: Callable[[str], Any] = _print_now) -> int:
    """Run until SIGTERM/SIGINT; 0 after a clean stop."""
    from dpsrgan.lifecycle.client import apply_client_limits

    apply_client_limits()  # before Ray starts, so local replicas inherit the bounds
    remote = bool(os.environ.get("RAY_ADDRESS"))
    pinned = preflight(settings, remote)
    stop = threading.Event()
    with _ray(settings, remote):
        with _stop_on_signals(stop, _Watchdog()):
            url = _deploy(settings, remote)
            write(
                f"dpsrgan serve: ready at {url} (POST /upscale, POST /invocations, GET /healthz) serving "
                f"{pinned.version}, {settings.replicas} replica(s), deadline {settings.timeout_s:g} s; "
                "SIGTERM or Ctrl-C stops"
            )
            while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                pass
        _drain()
    write("dpsrgan serve: stopped")
    return 0


@contextmanager
def _ray(settings: ServeSettings, remote: bool) -> Iterator[None]:
    """A local Ray of this machine's cores (or a connection to ``RAY_ADDRESS``), torn down after."""
    from ray import serve  # noqa: F401 - importing it configures its logger, which ray_session quiets

    from dpsrgan.cluster.runtime import ray_session

    env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    with ray_session(num_cpus=os.cpu_count(), runtime_env={"env_vars": env} if remote else None):
        try:
            yield
        finally:
            _delete_remote_app(remote)


def _deploy(settings: ServeSettings, remote: bool) -> str:
    from ray import serve

    from dpsrgan.serving.app import build_app

    serve.start(http_options={"host": settings.host, "port": settings.port,
                              "request_timeout_s": settings.timeout_s + 10})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    where = "" if not remote else " (on RAY_ADDRESS; Serve's proxy keeps the cluster's host/port if it was running)"
    return f"http://{host}:{settings.port}{where}"


def _drain() -> None:
    """New work refused from now on; open requests get up to :data:`DRAIN_S` to finish."""
    from ray import serve

    try:
        ingress = serve.get_app_handle(APP_NAME)
        open_requests = ingress.drain.remote().result(timeout_s=2)
        deadline = time.monotonic() + DRAIN_S
        while open_requests and time.monotonic() < deadline:
            time.sleep(0.2)
            open_requests = ingress.open_requests.remote().result(timeout_s=2)
    except Exception as error:  # noqa: BLE001 - stopping goes on whatever the app's state
        logger.warning("drain skipped: %s", str(error).splitlines()[0] if str(error) else type(error).__name__)


def _delete_remote_app(remote: bool) -> None:
    """On a cluster the app outlives this process unless deleted (a local Ray stops with it)."""
    from ray import serve

    if remote:
        try:
            serve.delete(APP_NAME)
        except Exception as error:  # noqa: BLE001 - disconnect anyway
            logger.warning("could not delete the app: %s", error)


@contextmanager
def _stop_on_signals(stop: threading.Event, watchdog: _Watchdog) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` and start the ``watchdog`` (the stop budget counts from
    the signal: Ctrl-C or a service manager signal Ray's own processes too, which can leave the
    drain or Ray's shutdown waiting on processes that are gone); a second signal stops waiting."""
    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        watchdog.start()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Watchdog(threading.Thread):
    """Started by the stop signal: remembers this process's descendants (the Ray processes it
    started) at once — a signalled raylet's workers are re-parented and would no longer be
    found — and past :data:`STOP_BUDGET_S` SIGKILLs those still alive, by PID, and exits 1."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="dpsrgan-stop-watchdog")
        self._recorded: list[psutil.Process] = []

    def start(self) -> None:
        self._recorded = psutil.Process().children(recursive=True)
        super().start()

    def run(self) -> None:
        time.sleep(STOP_BUDGET_S)
        logger.warning("stop took over %.0f s; killing the processes this command started", STOP_BUDGET_S)
        for child in {*self._recorded, *psutil.Process().children(recursive=True)}:
            try:
                child.kill()  # psutil checks the PID still belongs to the process we recorded
            except psutil.NoSuchProcess:
                pass
        os._exit(1)
