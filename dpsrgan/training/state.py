"""The training state a checkpoint holds, as plain data: G, D, optimisers, scalers, EMA, progress
counters, per-epoch history and every rank's RNG state.

Everything here is tensors, numbers, strings, lists and dicts, so a checkpoint loads with
``torch.load(weights_only=True)`` (no pickled code). Models are stored unwrapped (no DDP
``module.`` prefix), so a run can resume with a different number of workers.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dpsrgan.checkpoint import atomic_torch_save, read_checkpoint, unwrap
from dpsrgan.training.ema import EMA

STATE_FILE = "state.pt"
FORMAT = "dpsrgan-train-state/1"


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint."""

    epoch: int = 0
    """Index of the current epoch (== epochs when the run is finished)."""
    step_in_epoch: int = 0
    """Optimiser steps already taken in the current epoch."""
    global_step: int = 0
    lr_scale: float = 1.0
    """Product of the guard's learning-rate cuts so far."""
    guard_restores: int = 0
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    epoch_sums: dict[str, float] = field(default_factory=dict)
    """Sums of the step metrics over the current epoch so far (its history row is their mean)."""
    epoch_counts: dict[str, int] = field(default_factory=dict)
    """Steps that reported each metric (D-only warm-up steps report no generator losses)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One row per finished epoch: the epoch's mean losses and validation metrics."""
    starts: list[int] = field(default_factory=list)
    """Global step at each (re)start of the worker loop: [0] for a run never interrupted."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(**data)


@dataclass
class TrainingParts:
    """What a stage trains; the GAN-only parts are None in the MSE pretraining."""

    generator: nn.Module
    optimizer_g: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    discriminator: nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    scaler_d: torch.amp.GradScaler | None = None
    ema: EMA | None = None

    def set_learning_rates(self, rates: dict[str, float]) -> None:
        """Set the generator's (``g``) and discriminator's (``d``) optimiser learning rates."""
        for name, optimizer in (("g", self.optimizer_g), ("d", self.optimizer_d)):
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["lr"] = rates[name]


def cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor detached and copied to the CPU (safe to keep while training)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: cpu_copy(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(value) for value in obj)
    return obj


def rng_state() -> dict[str, Any]:
    """This process's torch / CUDA / NumPy / Python RNG states as weights_only-loadable data."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture(
    parts: TrainingParts, progress: Progress, rng: list[dict[str, Any]], meta: dict[str, Any]
) -> dict:
    """The full training state as a CPU-only plain-data dict (a snapshot, not references)."""
    state: dict[str, Any] = {
        "format": FORMAT,
        "meta": meta,
        "progress": asdict(progress),
        "rng": rng,
        "generator": unwrap(parts.generator).state_dict(),
        "optimizer_g": parts.optimizer_g.state_dict(),
        "scaler_g": parts.scaler_g.state_dict(),
    }
    if parts.discriminator is not None:
        state["discriminator"] = unwrap(parts.discriminator).state_dict()
        state["optimizer_d"] = parts.optimizer_d.state_dict()
        state["scaler_d"] = parts.scaler_d.state_dict()
    if parts.ema is not None:
        state["ema"] = parts.ema.state_dict()
    return cpu_copy(state)


def restore(parts: TrainingParts, state: dict[str, Any]) -> Progress:
    """Load ``state`` (from :func:`capture`) into ``parts``; returns its progress."""
    unwrap(parts.generator).load_state_dict(state["generator"])
    parts.optimizer_g.load_state_dict(state["optimizer_g"])
    parts.scaler_g.load_state_dict(state["scaler_g"])
    if parts.discriminator is not None:
        unwrap(parts.discriminator).load_state_dict(state["discriminator"])
        parts.optimizer_d.load_state_dict(state["optimizer_d"])
        parts.scaler_d.load_state_dict(state["scaler_d"])
    if parts.ema is not None:
        parts.ema.load_state_dict(state["ema"])
    return Progress.from_dict(state["progress"])


def save_state(state: dict[str, Any], directory: Path) -> Path:
    """Write ``state`` as ``directory/state.pt`` (atomically)."""
    path = Path(directory) / STATE_FILE
    atomic_torch_save(state, path)
    return path


def load_state(directory: Path) -> dict[str, Any]:
    """Read a checkpoint directory's ``state.pt`` (weights_only)."""
    return read_checkpoint(Path(directory) / STATE_FILE)
