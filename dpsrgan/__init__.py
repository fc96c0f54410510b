"""DPSRGAN: a dilated-convolution x4 super-resolution GAN (SRResNet generator with dilated
convolutions in alternating blocks, conditional PatchGAN discriminator, VGG19 perceptual loss).

The top-level names are imported lazily so that ``import dpsrgan`` (and the CLI's ``--help``)
stays fast; the heavy modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Generator": "dpsrgan.models.generator",
    "Discriminator": "dpsrgan.models.discriminator",
    "save_generator": "dpsrgan.checkpoint",
    "load_generator": "dpsrgan.checkpoint",
    "upscale": "dpsrgan.inference",
    "DpsrganError": "dpsrgan.errors",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from dpsrgan.checkpoint import load_generator, save_generator
    from dpsrgan.errors import DpsrganError
    from dpsrgan.inference import upscale
    from dpsrgan.models.discriminator import Discriminator
    from dpsrgan.models.generator import Generator


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpsrgan' has no attribute {name!r}")
