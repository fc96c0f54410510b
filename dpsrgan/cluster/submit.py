"""Run a pipeline command on a Ray cluster through Ray's job server and bring its results back.

``dpsrgan submit -- dvc repro`` is ``ray job submit --working-dir . -- dvc repro`` with the
project's rules built in:

* **A small job package.** The working directory is the repo root minus :data:`JOB_EXCLUDES`
  (``.git``, the DVC cache, data, MLflow stores, virtualenvs, outputs). Data reaches the
  workers through S3 (the DVC remote, ``ray.storage_path``), never through the package.
* **A pinned cluster environment.** The runtime env carries code and settings only (no
  ``pip``/``conda``): the cluster's Python environment comes from its image or setup commands
  (``infra/ray``), so nothing is re-installed per job.
* **No credentials in transit.** Ray writes every job's ``runtime_env`` — ``env_vars``
  included — in plain text to ``runtime_env_agent.log`` on each node, and shows it in
  ``ray job list``. So only the non-secret settings in :data:`FORWARDED_ENV` travel with the
  job; the cluster gets credentials from its own identity (EC2 instance profile, a Kubernetes
  Secret, or the environment of ``ray start``). Secret-looking names are refused.
* **Provenance without .git.** The commit (and whether the tree was dirty) goes into the job
  metadata and ``DPSRGAN_GIT_COMMIT`` / ``DPSRGAN_GIT_DIRTY``, since ``.git`` stays home.
* **Results come back.** Checkpoints live in ``ray.storage_path`` and runs on the shared MLflow
  server (``MLFLOW_TRACKING_URI`` is forwarded). ``dvc repro`` runs on the cluster through
  :mod:`dpsrgan.cluster.job`: deps come from the DVC remote, cached outs go back to it, and
  ``dvc.lock`` with the uncached outs (metrics, plots) comes back through the job log
  (:mod:`dpsrgan.cluster.results`). With ``fetch_outs`` those are written here and ``dvc pull``
  checks the cached outs out, as if ``dvc repro`` had run here.
"""

from __future__ import annotations

import asyncio
import configparser
import datetime as dt
import getpass
import logging
import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from dpsrgan.cluster import results as job_results
from dpsrgan.errors import DpsrganError
from dpsrgan.provenance import COMMIT_ENV, DIRTY_ENV, git_provenance

logger = logging.getLogger(__name__)

# gitwildmatch patterns relative to the repo root. A leading "/" anchors at the root, so "/data"
# leaves the dpsrgan/data package in; no trailing "/", or Ray would still walk the directory and
# test every file in it. Everything large or secret stays home.
JOB_EXCLUDES: tuple[str, ...] = (
    ".git",
    "/.dvc/cache",
    "/.dvc/tmp",
    "/.dvc/config.local",  # `dvc remote modify --local` puts credentials here
    "/.venv",
    "/venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    "*.egg-info",
    "/data",
    "/models",
    "/outputs/ray",  # local Ray Train storage (checkpoints)
    "/mlruns",
    "/mlartifacts",
    "/mlflow.db",
    "/dvc_plots",
    "/.ray",
    "/benchmarks/results",
    "/tests",  # not run on a cluster; its fixtures hold dummy credentials a leak scan would flag
    "/infra/ray/.build",
)

# Settings a job needs and that are safe to show in Ray's logs and job list.
FORWARDED_ENV: tuple[str, ...] = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)

# Names that look like credentials are never forwarded, even when asked for with --env.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE|API_KEY", re.I)

_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}

SUBMIT_DEADLINE_S = 20.0
"""Connecting to the job server and submitting (package upload included) must finish within
this: Ray's job client sets no HTTP timeout, so a server that accepts connections and never
answers would hang ``dpsrgan submit`` for ever."""


@dataclass(frozen=True)
class SubmitRequest:
    """Everything ``dpsrgan submit`` needs; built from argv by :mod:`dpsrgan.commands.submit`."""

    command: tuple[str, ...]
    """The command to run on the cluster, e.g. ``("dvc", "repro")``."""
    address: str
    """The Ray job server, e.g. ``http://127.0.0.1:8265``."""
    repo_root: Path
    fetch_outs: bool = False
    wait: bool = True
    submission_id: str | None = None
    extra_env: tuple[str, ...] = ()
    """More environment variable names to forward (values come from the environment only)."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def resolve_address(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The job server URL: ``--address``, then ``RAY_API_SERVER_ADDRESS``, then ``RAY_ADDRESS``.

    The same order as ``ray job submit``; only an ``http(s)://`` dashboard URL can take jobs.
    """
    for source, value in (
        ("--address", explicit),
        ("RAY_API_SERVER_ADDRESS", environ.get("RAY_API_SERVER_ADDRESS")),
        ("RAY_ADDRESS", environ.get("RAY_ADDRESS")),
    ):
        if not value:
            continue
        if not value.startswith(("http://", "https://")):
            raise DpsrganError(
                f"{source}={value!r} is not a job server URL; pass the dashboard address, "
                "e.g. --address http://127.0.0.1:8265"
            )
        return value.rstrip("/")
    raise DpsrganError(
        "no Ray cluster given; pass --address http://HEAD:8265 or set RAY_API_SERVER_ADDRESS "
        "(for a remote cluster, `ray dashboard infra/ray/cluster-aws.yaml` forwards it to 8265)"
    )


def find_repo_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding ``dvc.yaml``, ``.dvc`` or ``.git``."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in ("dvc.yaml", ".dvc", ".git")):
            return candidate
    raise DpsrganError(f"{start}: not inside a DVC/git project; run from the repo or pass --working-dir")


def forwarded_env(environ: Mapping[str, str], extra_names: Sequence[str] = ()) -> dict[str, str]:
    """The job's ``env_vars``: the non-secret settings that are set here, nothing else.

    Raises for an extra name that looks like a credential and for a tracking URI that embeds
    one (``http://user:password@host``): Ray would write either to every node's logs.
    """
    for name in extra_names:
        if _SECRET_NAME.search(name):
            raise DpsrganError(
                f"--env {name}: credentials are not forwarded (Ray logs a job's env_vars on every "
                "node); give them to the cluster itself (instance profile, Kubernetes Secret, or "
                "the environment of `ray start`)"
            )
    env = {name: environ[name] for name in (*FORWARDED_ENV, *extra_names) if environ.get(name)}
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if urlsplit(uri).password is not None:
        raise DpsrganError(
            "MLFLOW_TRACKING_URI contains a password; use a plain URL and give the cluster "
            "MLFLOW_TRACKING_USERNAME/PASSWORD through its own environment"
        )
    return env


def dvc_out_excludes(repo_root: Path) -> list[str]:
    """Anchored excludes for the cached outs declared in ``dvc.yaml``.

    They reach the cluster through the DVC remote (``dvc repro --pull``), so a local copy must
    not ride along in the job package. Uncached outs (metrics, small plots) do ride along, as
    git would carry them: without them ``dvc repro`` would re-run their unchanged stages.
    """
    return ["/" + path for path in job_results.cached_out_paths(repo_root)]


def build_runtime_env(
    repo_root: Path, environ: Mapping[str, str], extra_env: Sequence[str] = ()
) -> dict[str, Any]:
    """The job's runtime env: the repo as working_dir minus the excludes, settings, provenance."""
    env_vars = forwarded_env(environ, extra_env)
    commit, dirty = git_provenance(repo_root)
    if commit:
        env_vars[COMMIT_ENV] = commit
        env_vars[DIRTY_ENV] = "1" if dirty else "0"
    excludes = [*JOB_EXCLUDES, *dvc_out_excludes(repo_root)]
    return {"working_dir": str(repo_root), "excludes": excludes, "env_vars": env_vars}


def job_entrypoint(command: Sequence[str], fetch_outs: bool) -> str:
    """The shell line Ray runs. ``dvc repro`` goes through :mod:`dpsrgan.cluster.job` (no git
    on the cluster, deps pulled from and outs pushed to the DVC remote); anything else runs as is.
    """
    if not command:
        raise DpsrganError("nothing to run; give the command after --, e.g. dpsrgan submit -- dvc repro")
    shown = shlex.join(command)
    if command[0] == "dvc":
        if list(command[:2]) != ["dvc", "repro"]:
            raise DpsrganError(
                f"`{shown}`: of the dvc commands only `dvc repro` runs on a cluster (.git stays home)"
            )
        return shlex.join(["python", "-m", "dpsrgan.cluster.job", *command[2:]])
    if fetch_outs:
        raise DpsrganError(
            f"--fetch-outs brings back DVC outs, so the command must be `dvc repro [...]`, got `{shown}`"
        )
    return shown


def new_submission_id() -> str:
    """A readable, unique job id: ``dpsrgan-20261126-081500-1a2b3c``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"dpsrgan-{stamp}-{secrets.token_hex(3)}"


class _LineFilter:
    """Re-chunks streamed log text into whole lines and drops the results carrier line."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self._write = write
        self._pending = ""

    def feed(self, chunk: str) -> None:
        *lines, self._pending = (self._pending + chunk).split("\n")
        for line in lines:
            if not line.startswith(job_results.MARKER):
                self._write(line + "\n")

    def close(self) -> None:
        if self._pending and not self._pending.startswith(job_results.MARKER):
            self._write(self._pending)
        self._pending = ""


def stream_logs(client: Any, job_id: str, write: Callable[[str], Any]) -> None:
    """Copy the job's driver log to ``write`` as it grows, until the job ends."""
    lines = _LineFilter(write)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            lines.feed(chunk)

    asyncio.run(tail())
    lines.close()


def wait_for_end(client: Any, job_id: str, poll_s: float = 1.0) -> str:
    """Poll until the job reaches a terminal status; returns its name (``SUCCEEDED``, ...)."""
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in _TERMINAL:
            return status
        time.sleep(poll_s)


def stage_targets(repro_args: Sequence[str]) -> list[str]:
    """``dvc push``/``dvc pull`` arguments for the stages a ``dvc repro`` ran: its targets with
    their deps (every stage when it named none).

    Every ``dvc repro`` option is a flag, so the positional arguments are exactly the targets.
    """
    targets = [arg for arg in repro_args if not arg.startswith("-")]
    return ["--with-deps", *targets] if targets else []


def fetch_outs(repo_root: Path, results: Mapping[str, bytes], repro_args: Sequence[str]) -> None:
    """Install the job's ``dvc.lock`` and uncached outs here, then check out the cached outs of
    the stages it ran from the DVC remote (not every stage's: one that never ran has none)."""
    job_results.install(repo_root, results)
    done = subprocess.run([sys.executable, "-m", "dvc", "pull", *stage_targets(repro_args)], cwd=repo_root)
    if done.returncode != 0:
        raise DpsrganError(
            "the job succeeded and dvc.lock was updated, but `dvc pull` failed; check the DVC "
            "remote's credentials here (AWS_* or `dvc remote modify --local`) and rerun `dvc pull`"
        )


def _warn_about_local_storage(repo_root: Path) -> None:
    """Checkpoints on a multi-node cluster must live in shared storage, not a node's disk."""
    params_path = repo_root / "params.yaml"
    if not params_path.is_file():
        return
    raw = yaml.safe_load(params_path.read_text()) or {}
    ray_section = raw.get("ray") if isinstance(raw, dict) else None
    storage = ray_section.get("storage_path") if isinstance(ray_section, dict) else None
    if isinstance(storage, str) and "://" not in storage:
        logger.warning(
            "params.yaml: ray.storage_path=%r is a local path; on a multi-node cluster set it to "
            "shared storage, e.g. s3://BUCKET/ray",
            storage,
        )


def require_dvc_remote(repo_root: Path) -> str:
    """The default DVC remote named in the committed ``.dvc/config``; a one-line error if none.

    On the cluster, ``dvc repro`` pulls unchanged inputs from that remote and pushes its outs to
    it, and ``.dvc/config.local`` stays home, so the remote must be in ``.dvc/config``.
    """
    config = configparser.ConfigParser()
    config.read(repo_root / ".dvc" / "config")
    name = config.get("core", "remote", fallback=None)
    if not name or not config.has_option(f"'remote \"{name}\"'", "url"):
        raise DpsrganError(
            f"{repo_root / '.dvc' / 'config'}: no default DVC remote; `dvc repro` on a cluster gets its "
            "inputs from and returns its outs through one: `dvc remote add -d store s3://BUCKET/dvc` "
            "(see infra/README.md)"
        )
    return name


@contextmanager
def _job_server(address: str) -> Iterator[None]:
    """Turn the job server being unreachable or refusing us into one line that says what to check."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except (ConnectionError, RuntimeError, AuthenticationError, requests.RequestException) as error:
        lines = str(error).strip().splitlines()
        raise DpsrganError(
            f"Ray job server at {address}: {lines[0] if lines else type(error).__name__} (is the dashboard "
            "port reachable? on a token-auth cluster set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)"
        ) from None


def _within(seconds: float, call: Callable[[], Any], address: str) -> Any:
    """``call()`` in a daemon thread: its result or its exception, or one line after ``seconds``
    (the thread is abandoned; the command is about to exit)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True, name="dpsrgan-submit")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise DpsrganError(
            f"Ray job server at {address} did not answer within {seconds:.0f} s (it accepts connections "
            "but does not respond); check the cluster's head node"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _submit(
    request: SubmitRequest, entrypoint: str, runtime_env: dict[str, Any], metadata: dict[str, str]
) -> tuple[Any, str]:
    """Connect to the job server and submit, within :data:`SUBMIT_DEADLINE_S`: (client, job id)."""
    from ray.job_submission import JobSubmissionClient

    def submit() -> tuple[Any, str]:
        client = JobSubmissionClient(request.address)
        job_id = client.submit_job(
            entrypoint=entrypoint,
            runtime_env=runtime_env,
            submission_id=request.submission_id or new_submission_id(),
            metadata=metadata,
        )
        return client, job_id

    with _job_server(request.address):
        return _within(SUBMIT_DEADLINE_S, submit, request.address)


def run_on_cluster(request: SubmitRequest, write: Callable[[str], Any] = sys.stdout.write) -> int:
    """Submit, stream the logs, fetch the outs; returns 0 when the job SUCCEEDED, else 1."""
    entrypoint, runtime_env = _prepare(request)
    # One "Ignoring upload ... .gitignore" INFO line per .gitignore, twice over: noise.
    logging.getLogger("ray._private.runtime_env.packaging").setLevel(logging.WARNING)
    client, job_id = _submit(request, entrypoint, runtime_env, _job_metadata(request, runtime_env))
    commit = runtime_env["env_vars"].get(COMMIT_ENV, "")
    logger.info("submitted %s to %s (commit %s)", job_id, request.address, commit[:12] or "unknown")
    follow = f"ray job logs --follow {job_id} --address {request.address}"
    if not request.wait:
        write(f"{job_id}\n")
        logger.info("follow it with: %s", follow)
        return 0
    status = _watch(client, job_id, request.address, follow, write)
    if status != "SUCCEEDED":
        message = (client.get_job_info(job_id).message or "").strip().splitlines()
        logger.error("job %s %s%s", job_id, status, f": {message[-1]}" if message else "")
        return 1
    logger.info("job %s SUCCEEDED", job_id)
    if request.fetch_outs:
        _fetch_job_outs(client, job_id, request, follow)
    return 0


def _prepare(request: SubmitRequest) -> tuple[str, dict[str, Any]]:
    """Check the request before anything is uploaded (a DVC remote for ``dvc repro``, waiting
    for ``--fetch-outs``) and build the job's entrypoint and runtime env (with its warnings)."""
    entrypoint = job_entrypoint(request.command, request.fetch_outs)
    if request.command[:2] == ("dvc", "repro"):
        require_dvc_remote(request.repo_root)
    if request.fetch_outs and not request.wait:
        raise DpsrganError("--fetch-outs needs to wait for the job; drop --no-wait")
    runtime_env = build_runtime_env(request.repo_root, request.environ, request.extra_env)
    if "MLFLOW_TRACKING_URI" not in runtime_env["env_vars"]:
        logger.warning("MLFLOW_TRACKING_URI is not set: the job's MLflow runs stay on the cluster's disk")
    _warn_about_local_storage(request.repo_root)
    return entrypoint, runtime_env


def _job_metadata(request: SubmitRequest, runtime_env: Mapping[str, Any]) -> dict[str, str]:
    """What ``ray job list`` shows about the submission: who, which commit (dirty or not), what."""
    return {
        "submitted_by": getpass.getuser(),
        "git_commit": runtime_env["env_vars"].get(COMMIT_ENV, ""),
        "git_dirty": runtime_env["env_vars"].get(DIRTY_ENV, ""),
        "command": shlex.join(request.command),
    }


def _watch(client: Any, job_id: str, address: str, follow: str, write: Callable[[str], Any]) -> str:
    """Stream the job's logs to ``write`` until it ends; its final status. Ctrl-C stops watching,
    not the job, and says how to follow or stop it."""
    try:
        stream_logs(client, job_id, write)
        return wait_for_end(client, job_id)
    except KeyboardInterrupt:
        logger.warning(
            "stopped watching; %s keeps running. Follow: %s; stop: ray job stop %s --address %s",
            job_id,
            follow,
            job_id,
            address,
        )
        raise


def _fetch_job_outs(client: Any, job_id: str, request: SubmitRequest, follow: str) -> None:
    """The succeeded job's ``dvc.lock`` (carried in its log) → here, and its outs from the remote."""
    results = job_results.decode(client.get_job_logs(job_id))
    if results is None:
        raise DpsrganError(f"job {job_id} succeeded but its log carries no dvc.lock; see {follow}")
    fetch_outs(request.repo_root, results, request.command[2:])
    logger.info("dvc.lock updated and outs pulled from the DVC remote")
