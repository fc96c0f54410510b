"""The one place the pipeline connects to Ray: ``ray.init``, its quiet environment, the resource
check that keeps Ray Data's reads from starving, and the guard that keeps credentials out of
Ray Tune's runtime envs. Every stage, ``dpsrgan serve`` and the degrade stage's cluster path use it.

:func:`ray_session` connects to the cluster named by ``ray.address`` / ``RAY_ADDRESS``, reuses a
Ray this process already started, or starts a private local Ray, stopped on exit. A local Ray
gets its dashboard on a free loopback port, exported to all its processes as
``RAY_API_SERVER_ADDRESS``: Ray Train's PlacementGroupCleaner (when a Tune trial is stopped, or a
controller dies) finds the cluster through the state API, which — on a machine running other
local Ray instances, none of them from ``ray start`` — refuses to guess ("Found multiple active
Ray instances"); a leaked placement group then starves every later run and the stage hangs.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from dpsrgan.errors import DpsrganError

logger = logging.getLogger(__name__)

Mode = Literal["existing", "cluster", "local"]

QUIET_RAY_ENV = {
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
"""Ray's own chatter, off unless the user sets them (API-FACTS "Log noise and knobs")."""
API_SERVER_ENV = "RAY_API_SERVER_ADDRESS"
TUNE_COPIED_CREDENTIALS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}
)
"""What Ray Tune copies from the driver's environment into every trial actor's runtime env."""


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    log_to_driver: bool = False,
    num_cpus: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
) -> Iterator[Mode]:
    """Ray for the duration of the block; yields how it was reached (see the module doc).

    ``address`` (else ``RAY_ADDRESS``) names a cluster; ``num_cpus`` sizes a local Ray (default:
    Ray's count of this machine's cores); ``runtime_env`` is sent with a cluster connection.
    """
    import ray

    for key, value in QUIET_RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        quiet_ray_logs()
        yield "existing"
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": log_to_driver}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=dict(runtime_env or {}) or None, **options)
        mode: Mode = "cluster"
        saved: dict[str, str | None] = {}
    else:
        saved = _local_ray_environment()
        port = os.environ[API_SERVER_ENV].rsplit(":", 1)[1]
        ray.init(address="local", num_cpus=num_cpus, dashboard_host="127.0.0.1", dashboard_port=int(port), **options)
        mode = "local"
    quiet_ray_logs()
    try:
        yield mode
    finally:
        ray.shutdown()
        _restore(saved)


def _local_ray_environment() -> dict[str, str | None]:
    """Token auth off for a private local Ray (silences its notice) and the dashboard's address
    exported; returns what to restore."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", API_SERVER_ENV)}
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ[API_SERVER_ENV] = f"http://127.0.0.1:{port}"
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def quiet_ray_logs() -> None:
    """Ray's and Ray Data's driver INFO lines off ("execution finished", "progress bars
    disabled"); warnings (e.g. a starved read) still show."""
    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def cluster_resources() -> dict[str, float]:
    """The connected cluster's schedulable resources (CPU, GPU, memory, ...)."""
    import ray

    return {
        key: float(value)
        for key, value in ray.cluster_resources().items()
        if not key.startswith(("node:", "accelerator_type"))
    }


def check_resources(
    num_workers: int, cpus_per_worker: float, cpus_per_data_task: float, gpus_per_worker: float | None, mode: Mode
) -> dict[str, float]:
    """The cluster's resources, checked for what a training run asks: a local Ray without a CPU
    left for Ray Data's reads would hang (an error); on a cluster that may autoscale, a warning.
    ``gpus_per_worker`` None: no GPUs asked."""
    resources = cluster_resources()
    need = num_workers * cpus_per_worker
    spare = resources.get("CPU", 0.0) - need
    problems = []
    if spare < cpus_per_data_task:
        problems.append(
            f"ray.num_workers × ray.cpus_per_worker = {need:g} CPUs leaves {spare:g} of the cluster's "
            f"{resources.get('CPU', 0):g}, less than ray.cpus_per_data_task={cpus_per_data_task:g} for a "
            "Ray Data read (it would never start); lower ray.cpus_per_worker (e.g. 0.5), ray.num_workers "
            "or ray.cpus_per_data_task"
        )
    if gpus_per_worker is not None and resources.get("GPU", 0) < num_workers * gpus_per_worker:
        problems.append(
            f"ray.use_gpu: the cluster has {resources.get('GPU', 0):g} GPUs for {num_workers} workers × "
            f"{gpus_per_worker:g}; lower ray.num_workers or set ray.use_gpu: false"
        )
    for message in problems:
        if mode != "cluster":
            raise DpsrganError(message)
        logger.warning("%s (fine if the cluster autoscales)", message)
    return resources


def keep_credentials_out_of_trial_env() -> None:
    """Stop Ray Tune from putting AWS credentials into the trials' runtime env.

    Ray writes every runtime env, ``env_vars`` included, in plain text to
    ``runtime_env_agent.log`` on each node (tests/test_submit_cluster.py found the test keys
    there). Trials get credentials as every other Ray worker does: from their node (an instance
    profile, the environment of ``ray start``; a local Ray inherits this process's).
    """
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = class_cache.ENV_VARS_TO_PROPAGATE - TUNE_COPIED_CREDENTIALS
