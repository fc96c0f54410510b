"""Self-describing generator checkpoints, and the atomic save / safe load they are built on.

A generator checkpoint is one ``torch.save`` file holding only tensors and plain data, so it
loads with ``torch.load(weights_only=True)`` (no pickled code runs)::

    {"format": "dpsrgan-generator", "format_version": 1,
     "architecture": {"scale": 4, "channels": 64, ...},   # Generator.config
     "state_dict": {...},                                # CPU tensors
     "provenance": {...},                                # whatever the caller passed: run id, data hash, ...
     "saved_with": {"dpsrgan": "0.1.0", "torch": "2.13.0"}}

:func:`save_generator` / :func:`load_generator` write and rebuild it. Underneath, any checkpoint
(the training loop's full states too) goes through :func:`atomic_torch_save` — a temporary file
in the target directory renamed over the target (``os.replace``), so a crash never leaves a
half-written file under the real name — and :func:`read_checkpoint`, the weights-only load that
turns every unreadable file into one :class:`~dpsrgan.errors.DpsrganError` line naming it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpsrgan import __version__
from dpsrgan.atomic_io import atomic_file
from dpsrgan.errors import DpsrganError
from dpsrgan.models.generator import Generator

FORMAT = "dpsrgan-generator"
FORMAT_VERSION = 1

# What torch.load raises for a truncated, empty, foreign or code-carrying file (measured on
# torch 2.13: OSError for a cut zip, RuntimeError for a cut legacy file, EOFError when empty,
# KeyError for text, UnpicklingError for pickled objects weights_only refuses).
_UNREADABLE = (OSError, RuntimeError, EOFError, LookupError, ValueError, pickle.UnpicklingError)
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module under DistributedDataParallel (``.module``) and ``torch.compile``
    (``._orig_mod``) wrappers, in any nesting, so saved keys never carry their prefixes."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename it over ``path``."""
    with atomic_file(path) as file:
        torch.save(obj, file)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Any checkpoint dict written by :func:`atomic_torch_save` (training states included),
    loaded with ``torch.load(weights_only=True)``; every way the file can be missing, cut short,
    foreign or carry pickled code is one :class:`DpsrganError` line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DpsrganError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as error:
        raise DpsrganError(
            f"{path}: not loadable as a weights-only PyTorch file (truncated, foreign or pickled code): "
            f"{_reason(error)}"
        ) from error
    if not isinstance(checkpoint, dict):
        raise DpsrganError(f"{path}: expected a checkpoint dict, found a {type(checkpoint).__name__}")
    return checkpoint


def _reason(error: Exception) -> str:
    """One line out of torch.load's multi-paragraph messages."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    unpickler = [line for line in lines if line.startswith("WeightsUnpickler error:")]
    if unpickler:
        detail = unpickler[0].removeprefix("WeightsUnpickler error:").split(". Please")[0].strip()
        return f"refused by weights_only: {detail}"
    return f"{type(error).__name__}: {lines[0] if lines else 'empty or cut short'}"


def save_generator(model: nn.Module, path: str | os.PathLike, **provenance: Any) -> Path:
    """Save a :class:`Generator` (wrappers stripped) with its architecture and ``provenance``
    (plain data only: str/int/float/bool/None in lists and str-keyed dicts). Returns the path."""
    model = unwrap(model)
    if not isinstance(model, Generator):
        raise TypeError(f"save_generator expects a dpsrgan Generator, got {type(model).__name__}")
    _check_plain(provenance, "provenance")
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.config,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "provenance": provenance,
        "saved_with": {"dpsrgan": __version__, "torch": str(torch.__version__)},
    }
    return atomic_torch_save(checkpoint, path)


def read_generator_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """A generator checkpoint dict (see the module docstring), after checking that it is one."""
    checkpoint = read_checkpoint(path, map_location)
    if checkpoint.get("format") != FORMAT:
        found = sorted(map(str, checkpoint))[:6]
        raise DpsrganError(
            f"{path}: not a DPSRGAN generator checkpoint (found keys {found}); "
            "save one with dpsrgan.save_generator"
        )
    if checkpoint.get("format_version") != FORMAT_VERSION:
        raise DpsrganError(
            f"{path}: checkpoint format version {checkpoint.get('format_version')!r} is not "
            f"{FORMAT_VERSION}; use the dpsrgan version that wrote it ({checkpoint.get('saved_with')})"
        )
    return checkpoint


def load_generator(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Generator:
    """Rebuild the generator a checkpoint describes, load its weights, return it in eval mode."""
    return generator_from_checkpoint(read_generator_checkpoint(path, map_location), path).to(map_location)


def generator_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike) -> Generator:
    """The generator of a checkpoint already read by :func:`read_generator_checkpoint` (eval mode,
    on the checkpoint's device), for callers that also need the rest of the dict; ``path`` names it
    in errors."""
    try:
        model = Generator.from_config(checkpoint["architecture"])
    except (DpsrganError, TypeError) as error:
        raise DpsrganError(f"{path}: invalid architecture config: {error}") from error
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise DpsrganError(
            f"{path}: weights do not match its architecture {checkpoint['architecture']} ({detail})"
        ) from error
    return model.eval()


def _check_plain(value: Any, where: str) -> None:
    """Reject values weights_only loading would refuse (or that would pickle code)."""
    if type(value) in _PLAIN_SCALARS:  # exact types: numpy scalars and str subclasses pickle as code
        return
    if type(value) in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where}: keys must be str, got {key!r}")
            _check_plain(item, f"{where}.{key}")
        return
    raise TypeError(
        f"{where} must be plain data (str, int, float, bool, None, list, dict), got {type(value).__name__}"
    )
