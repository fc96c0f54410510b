"""Turn the ``--model`` string into a generator: one function, one branch per kind of spec."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import REGISTRY_PREFIX


def resolve_model(spec: str, device: str | torch.device = "cpu") -> nn.Module:
    """Load the model that ``spec`` names, its weights on ``device``.

    - ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: a model in the MLflow registry.
    - anything else: a checkpoint file written by :func:`dpsrgan.save_generator`.
    """
    if spec.startswith(REGISTRY_PREFIX):
        return _load_registry_model(spec, device)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DpsrganError(
            f"--model {spec}: no such checkpoint file; pass a file written by dpsrgan "
            f"(e.g. a train_gan output) or a registry URI like models:/dpsrgan@champion"
        )
    from dpsrgan.checkpoint import load_generator

    return load_generator(path, map_location=str(device))


def _load_registry_model(uri: str, device: str | torch.device) -> nn.Module:
    """Registry branch: download the version's weights from MLflow, load with load_generator."""
    from dpsrgan.lifecycle.client import load_registered_generator

    return load_registered_generator(uri, device)
