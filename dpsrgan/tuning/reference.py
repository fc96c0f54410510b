"""The bar a trial is held to: the pretrained generator on the same (capped) valid images,
measured by the training loop's own :class:`~dpsrgan.training.validation.Validator`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from dpsrgan.checkpoint import load_generator
from dpsrgan.data.shards import iter_encoded_batches
from dpsrgan.errors import DpsrganError
from dpsrgan.training.validation import Validator
from dpsrgan.tuning.objective import Reference


def reference_metrics(pretrained: Path, valid_dir: Path, ids: tuple[str, ...], scale: int, crop_border: int) -> Reference:
    """Mean validation PSNR-Y and HF energy of the pretrained generator on the valid rows ``ids``."""
    validator = Validator(scale, crop_border, rank=0, world=1, device=torch.device("cpu"), channels_last=False)
    metrics, _ = validator.run(load_generator(pretrained), _rows_of(valid_dir, set(ids)))
    if not metrics["val/images"]:
        raise DpsrganError(f"{valid_dir}: no validation images; the tune objective needs a valid split")
    return Reference(psnr_y=metrics["val/psnr_y"], hf_ratio=metrics["val/hf_ratio"])


def _rows_of(valid_dir: Path, wanted: set[str]) -> Iterator[dict[str, list]]:
    for batch in iter_encoded_batches(valid_dir, 16):
        keep = [index for index, image_id in enumerate(batch["id"]) if image_id in wanted]
        yield {key: [values[index] for index in keep] for key, values in batch.items()}
