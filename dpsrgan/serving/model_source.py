"""The model a replica serves: a checkpoint file, or a registry alias pinned to the version it
points at now (so a replica can tell when the alias moves, and every answer names its version)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpsrgan.errors import DpsrganError
from dpsrgan.inference.engine import Upscaler
from dpsrgan.inference.resolve import resolve_model
from dpsrgan.lifecycle.client import REGISTRY_PREFIX
from dpsrgan.storage.checksum import sha256_file
from dpsrgan.upscale_defaults import DEFAULT_TILE


@dataclass(frozen=True)
class Pinned:
    """``uri``: what to load (a file, or ``models:/NAME/VERSION``); ``version``: its label."""

    uri: str
    version: str


@dataclass(frozen=True)
class LoadedModel:
    upscaler: Upscaler
    version: str


def follows_alias(spec: str) -> bool:
    """True for ``models:/NAME@ALIAS``: the version behind it can change while we serve."""
    return spec.startswith(REGISTRY_PREFIX) and "@" in spec


def pin(spec: str) -> Pinned:
    """Resolve ``spec`` to one loadable version: an alias is looked up in the registry now (one
    line on an unknown name/alias or an unreachable server); a file is named by its content."""
    if not spec.startswith(REGISTRY_PREFIX):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DpsrganError(
                f"--model {spec}: no such checkpoint file; pass a file written by dpsrgan or "
                "a registry URI like models:/dpsrgan@champion"
            )
        return Pinned(str(path), f"{path.name}@{sha256_file(path)[:12]}")
    name, sep, alias = spec.removeprefix(REGISTRY_PREFIX).strip("/").partition("@")
    if not sep:
        name, _, number = name.partition("/")
        if not name or not number:
            raise DpsrganError(f"--model {spec}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        return Pinned(f"{REGISTRY_PREFIX}{name}/{number}", f"{name}/{number}")
    from dpsrgan.lifecycle.client import alias_version, connect

    version = alias_version(connect(), name, alias, required=True)
    assert version is not None
    return Pinned(f"{REGISTRY_PREFIX}{name}/{version.version}", f"{name}/{version.version}")


def load(pinned: Pinned, device: str) -> LoadedModel:
    """The pinned generator (weights only), prepared as ``dpsrgan upscale`` prepares it: same
    tile, the model's own pad, precision auto, so served pixels equal the CLI's."""
    from dpsrgan.inference.runtime import resolve_device

    generator = resolve_model(pinned.uri, resolve_device(device))
    return LoadedModel(Upscaler.prepare(generator, tile=DEFAULT_TILE, device=device), pinned.version)
