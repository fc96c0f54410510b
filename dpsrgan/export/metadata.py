"""What an exported model says about itself: the generator's config and where it came from.

Stored as flat string pairs under the ``dpsrgan.`` prefix: ONNX ``metadata_props``
(``dpsrgan.scale`` …) and OpenVINO ``rt_info`` (``<rt_info><dpsrgan><scale …>``). Structured
values are JSON. The runtime backends read ``scale`` and ``receptive_radius`` from here, so a
server can tile an exported model exactly without the checkpoint or torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dpsrgan.errors import DpsrganError

PREFIX = "dpsrgan."
FORMAT = "dpsrgan-generator-export/1"
REQUIRED = ("format", "architecture", "scale", "receptive_radius")


def describe(
    architecture: Mapping[str, Any],
    *,
    receptive_radius: int,
    source: str,
    checkpoint_sha256: str,
    checkpoint_provenance: Mapping[str, Any],
    precision: str = "fp32",
) -> dict[str, str]:
    """The metadata of one export (all values strings). ``source`` is the checkpoint path or the
    ``models:/`` URI it was exported from; git commit and versions are those of the exporter."""
    from importlib.metadata import version

    from dpsrgan import __version__
    from dpsrgan.provenance import commit_tag

    return {
        "format": FORMAT,
        "architecture": json.dumps(dict(architecture), sort_keys=True),
        "scale": str(architecture["scale"]),
        "receptive_radius": str(receptive_radius),
        "precision": precision,
        "source": source,
        "checkpoint_sha256": checkpoint_sha256,
        "checkpoint_provenance": json.dumps(dict(checkpoint_provenance), sort_keys=True),
        "dpsrgan_version": __version__,
        "git_commit": commit_tag(),
        "torch_version": version("torch"),
    }


def prefixed(metadata: Mapping[str, str]) -> dict[str, str]:
    return {PREFIX + key: value for key, value in metadata.items()}


def unprefixed(pairs: Mapping[str, str], where: str) -> dict[str, str]:
    """The ``dpsrgan.*`` pairs of a model file, prefix removed; one line if it has none."""
    found = {key.removeprefix(PREFIX): value for key, value in pairs.items() if key.startswith(PREFIX)}
    missing = [key for key in REQUIRED if key not in found]
    if missing:
        raise DpsrganError(
            f"{where}: not a dpsrgan export (metadata lacks {', '.join(PREFIX + k for k in missing)}); "
            "export it with `dpsrgan export`"
        )
    return found


def architecture(metadata: Mapping[str, str]) -> dict[str, Any]:
    return json.loads(metadata["architecture"])
