"""What a training stage reads, checked and hashed before Ray starts, and the run's identity.

:func:`inspect_inputs` checks that the degrade outputs (and, in the GAN stage, the pretrained
generator and the VGG weights) exist and fit the params, and hashes them; :func:`run_name` names
the Ray Train run by a hash of everything that shapes its result (the inputs' hashes and the
relevant params). Ray Train resumes whenever a run name and storage path are reused, so a killed
stage re-run unchanged continues from its last checkpoint, while any change to its inputs or
params gives a new name and a fresh start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpsrgan.config import Params
from dpsrgan.errors import DpsrganError
from dpsrgan.storage.checksum import sha256_file
from dpsrgan.training.spec import Stage

MANIFEST = "manifest.json"


def fingerprint(stage: Stage, params: Params, inputs: dict[str, str]) -> str:
    """Hash of what decides the run's result: the stage's params and its inputs' hashes.

    Operational knobs (where Ray runs, storage, retries, logging, MLflow) are left out, so a
    killed run resumes on another cluster too; ``ray.num_workers`` is in (it sets the global
    batch and the data split).
    """
    section = params.pretrain if stage == "pretrain" else params.gan
    payload: dict[str, Any] = {
        "stage": stage,
        "inputs": inputs,
        "model": params.model.model_dump(mode="json"),
        "scale": params.degrade.scale,
        "train": section.model_dump(mode="json"),
        "num_workers": params.ray.num_workers,
    }
    if stage == "gan":
        payload["loss"] = params.loss.model_dump(mode="json")
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_name(stage: Stage, params: Params, inputs: dict[str, str]) -> str:
    return f"{stage}-{fingerprint(stage, params, inputs)[:12]}"


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads, checked and hashed by :func:`inspect_inputs`."""

    data_dir: Path
    train_rows: int
    valid_ids: tuple[str, ...]
    valid_capped: bool
    """True when ``valid_max_images`` left out part of the valid split."""
    hashes: dict[str, str]
    pretrained_state: dict[str, Any] | None = None
    pretrained_config: dict[str, int] | None = None
    data_node: str | None = None
    """The Ray node whose disk holds ``data_dir`` (set once Ray is up): reads are pinned there."""


def inspect_inputs(stage: Stage, params: Params, data_dir: Path, pretrained: Path | None) -> StageInputs:
    """Check the degrade outputs (and pretrained generator / VGG file) exist; hash them."""
    from dpsrgan.data.loading import split_ids, split_row_count

    data_dir = Path(data_dir).resolve()
    manifest = data_dir / MANIFEST
    if not manifest.is_file():
        raise DpsrganError(f"{manifest}: not found; run the degrade stage first (dvc repro degrade)")
    for split in ("train", "valid"):
        if not any((data_dir / split).glob("part-*.parquet")):
            raise DpsrganError(f"{data_dir / split}: no part-*.parquet shards; re-run the degrade stage")
    hashes = {"data_manifest": sha256_file(manifest)}
    section = params.pretrain if stage == "pretrain" else params.gan
    all_valid_ids = split_ids(data_dir / "valid")
    valid_ids = all_valid_ids[: section.valid_max_images] if section.valid_max_images else all_valid_ids
    inputs: dict[str, Any] = {}
    if stage == "gan":
        if pretrained is None:
            raise DpsrganError("the GAN stage needs --pretrained PATH (the pretrain stage's generator)")
        from dpsrgan.checkpoint import load_generator

        generator = load_generator(pretrained)
        expected = {
            "channels": params.model.channels,
            "num_blocks": params.model.num_blocks,
            "dilation": params.model.dilation,
            "bicubic_skip": params.model.bicubic_skip,
            "scale": params.degrade.scale,
        }
        found = {key: generator.config.get(key) for key in expected}
        if found != expected:
            raise DpsrganError(
                f"{pretrained}: generator {found} does not match params {expected} (model.*, degrade.scale); "
                "re-run the pretrain stage (dvc repro pretrain)"
            )
        hashes["pretrained"] = sha256_file(pretrained)
        inputs = {"pretrained_state": generator.state_dict(), "pretrained_config": generator.config}
        weights = params.loss.vgg_weights
        if weights not in ("random", "torch-hub") and "://" not in weights:
            hashes["vgg_weights"] = sha256_file(weights) if Path(weights).is_file() else "missing"
        if weights != "random":  # fail fast here, not in every worker; warms the torch-hub cache
            from dpsrgan.models.vgg import load_vgg19_state_dict

            load_vgg19_state_dict(weights)
    return StageInputs(
        data_dir,
        split_row_count(data_dir / "train"),
        tuple(valid_ids),
        len(valid_ids) < len(all_valid_ids),
        hashes,
        **inputs,
    )


def steps_per_epoch(train_rows: int, batch_size: int, num_workers: int, cap: int | None, key: str) -> int:
    """Optimiser steps per epoch: full batches of each worker's equal share, capped."""
    available = (train_rows // num_workers) // batch_size
    if available == 0:
        raise DpsrganError(
            f"the train split has {train_rows} rows, fewer than ray.num_workers × {key}.batch_size = "
            f"{num_workers * batch_size}; lower {key}.batch_size or ray.num_workers, or add data"
        )
    return min(available, cap) if cap else available
