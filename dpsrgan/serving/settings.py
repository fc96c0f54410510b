"""What a `dpsrgan serve` application is configured with: one frozen dataclass, checked once.

The same settings come from the command line (``dpsrgan serve --max-batch-size 8``) and from a
Serve config file's ``args:`` (``max_batch_size: 8``, :meth:`ServeSettings.from_args`); the limits
Serve enforces (ongoing requests per replica, the queue) are derived here so that the ingress'
capacity and the deployments' options cannot disagree.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpsrgan.errors import DpsrganError
from dpsrgan.upscale_defaults import SERVE_MAX_PIXELS

DEVICES = ("auto", "cpu", "cuda")
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """One application's settings; field docs name the ``dpsrgan serve`` flag."""

    model: str
    """``--model``: a generator checkpoint file or ``models:/NAME@ALIAS`` (or ``/VERSION``)."""
    host: str = "127.0.0.1"
    """``--host``: the interface Serve's HTTP proxy binds (loopback unless you mean otherwise)."""
    port: int = 8000
    """``--port``."""
    replicas: int = 1
    """``--replicas``: model replicas (a Serve config file may autoscale instead)."""
    max_batch_size: int = 4
    """``--max-batch-size``: same-sized single-tile images run as one batch of up to this many."""
    batch_wait_s: float = 0.005
    """How long a single-tile image waits for same-sized company before its batch runs."""
    max_queued: int = 16
    """``--max-queued``: requests waiting for a replica slot; past it: 503 with Retry-After."""
    timeout_s: float = 60.0
    """``--timeout``: a request's deadline from arrival; past it: 504 and its work is cancelled."""
    max_pixels: int = SERVE_MAX_PIXELS
    """``--max-pixels``: larger inputs are refused with 413 before any work."""
    device: str = "auto"
    """``--device``: auto (CUDA if the replica sees a GPU), cpu or cuda."""
    reload_interval_s: float = 30.0
    """``--reload-interval``: with an alias, how often replicas check whether it moved (0: never)."""
    cpus_per_replica: float = 0.0
    """CPUs Ray reserves per model replica (its torch threads follow); 0: the local machine's
    cores shared among the replicas."""

    def __post_init__(self) -> None:
        _at_least("replicas", self.replicas, 1)
        _at_least("max_batch_size", self.max_batch_size, 1)
        _at_least("max_queued", self.max_queued, 0)
        _at_least("max_pixels", self.max_pixels, 1)
        _at_least("port", self.port, 1)
        if not 0 < self.timeout_s <= 3600:
            raise DpsrganError(f"timeout_s (--timeout) must be in (0, 3600] seconds, got {self.timeout_s}")
        if not 0 <= self.batch_wait_s <= 1:
            raise DpsrganError(f"batch_wait_s must be in [0, 1] seconds, got {self.batch_wait_s}")
        if self.reload_interval_s < 0:
            raise DpsrganError(f"reload_interval_s (--reload-interval) must be >= 0, got {self.reload_interval_s}")
        if self.device not in DEVICES:
            raise DpsrganError(f"device (--device) must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.cpus_per_replica < 0:
            raise DpsrganError(f"cpus_per_replica must be >= 0, got {self.cpus_per_replica}")

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> ServeSettings:
        """From a Serve config file's ``args:``; an unknown key is an error naming the valid ones."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise DpsrganError(f"serve config args: unknown key(s) {unknown}; valid: {sorted(known)}")
        if "model" not in args:
            raise DpsrganError("serve config args: 'model' is required (a checkpoint or models:/NAME@ALIAS)")
        return cls(**dict(args))

    @property
    def max_ongoing(self) -> int:
        """Requests a model replica holds at once (Serve's ``max_ongoing_requests``). The replica's
        admission decides how much *work* it takes (what fits the deadline); this bounds threads
        and memory (a waiting request holds only its decoded upload), and it is set well above
        what admission lets in, so that a small request finds a slot while big ones are admitted
        instead of queueing behind them."""
        return 4 * self.max_batch_size + 8

    @property
    def ingress_capacity(self) -> int:
        """Requests the ingress keeps open before ``/healthz`` says it is full."""
        return self.replicas * self.max_ongoing + self.max_queued

    @property
    def max_body_bytes(self) -> int:
        """Largest upload read: an uncompressed 16-bit RGBA file of ``max_pixels``, plus slack."""
        return max(32 * MIB, self.max_pixels * 8 + MIB)

    def replica_cpus(self) -> float:
        """Ray CPUs per model replica: as configured, else this machine's cores shared out."""
        if self.cpus_per_replica > 0:
            return self.cpus_per_replica
        return (os.cpu_count() or 1) / self.replicas


def _at_least(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or value < low:
        flag = "--" + name.replace("_", "-")
        raise DpsrganError(f"{name} ({flag}) must be an integer >= {low}, got {value!r}")
