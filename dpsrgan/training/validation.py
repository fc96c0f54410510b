"""The training stages' per-epoch validation: the evaluated generator on every whole valid image.

Every rank measures the valid rows it owns (a stable hash of the image id), one image at a time
because valid images may differ in size; sums (and the worst colour shift) are all-reduced, so
every rank returns the same numbers. Rank 0 also keeps the images of the comparison grid.

Reported (``val/*``): mean PSNR-Y and SSIM-Y of the generator and of MATLAB bicubic (measured
once: the images do not change), mean HF energy (Laplacian energy relative to HR: sharpness) and
the worst image's colour shift (0–255) — what the tune objective constrains — and, in the GAN
stage, the mean VGG feature distance (``val/perceptual``). Metrics are fp32 on uint8-rounded
output, like a saved image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from dpsrgan.data.loading import decode_row, owns_row
from dpsrgan.degradation import bicubic_upscale
from dpsrgan.image_tensors import images_to_tensor, tensor_to_images
from dpsrgan.metrics import batch_psnr_y, batch_ssim_y, color_shift, high_frequency_ratio
from dpsrgan.training.precision import images_to_device

SUMMED = ("psnr_y", "ssim_y", "hf_ratio", "perceptual", "images")
"""Per-image values summed over the split (means are sum / images)."""

GridImages = dict[str, tuple[np.ndarray, ...]]
"""image id → (LR, bicubic, SR, HR), uint8 H×W×3."""


@dataclass
class Validator:
    """Validation of one rank; ``run`` once per epoch (bicubic's numbers are kept after the first)."""

    scale: int
    crop_border: int
    rank: int
    world: int
    device: torch.device
    channels_last: bool
    grid_ids: tuple[str, ...] = ()
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    _bicubic: dict[str, float] | None = field(default=None, repr=False)

    @torch.no_grad()
    def run(self, model: torch.nn.Module, batches: Iterable[dict[str, np.ndarray]]) -> tuple[dict[str, float], GridImages]:
        """``val/*`` metrics of ``model`` (eval mode meanwhile) over the valid rows in ``batches``."""
        was_training = model.training
        model.eval()
        sums = dict.fromkeys(SUMMED, 0.0)
        bicubic = {"psnr_y_bicubic": 0.0, "ssim_y_bicubic": 0.0}
        worst_shift, grid = 0.0, {}
        for image_id, hr, lr in self._rows(batches):
            sr = self._super_resolve(model, lr)
            in_grid = self.rank == 0 and image_id in self.grid_ids
            base = bicubic_upscale(lr, self.scale) if self._bicubic is None or in_grid else None
            if in_grid:
                grid[image_id] = (lr, base, sr, hr)
            if not owns_row(image_id, self.rank, self.world):
                continue
            for key, value in self._measure(sr, hr).items():
                sums[key] += value
            worst_shift = max(worst_shift, color_shift(sr, hr, self.crop_border))
            if self._bicubic is None:
                hr_t, base_t = images_to_tensor(hr), images_to_tensor(base)
                bicubic["psnr_y_bicubic"] += float(batch_psnr_y(base_t, hr_t, self.crop_border).sum())
                bicubic["ssim_y_bicubic"] += float(batch_ssim_y(base_t, hr_t, self.crop_border).sum())
        model.train(was_training)
        *totals, worst_shift = self._all_reduce([*sums.values(), *bicubic.values()], worst_shift)
        summed = dict(zip([*sums, *bicubic], totals, strict=True))
        if self._bicubic is None:
            self._bicubic = {key: summed[key] for key in bicubic}
        return self._metrics(summed, worst_shift), grid

    def _rows(self, batches: Iterable[dict[str, np.ndarray]]):
        """(id, HR, LR) of the rows this rank measures or shows in the grid."""
        for batch in batches:
            for image_id, hr, lr in zip(batch["id"], batch["hr"], batch["lr"], strict=True):
                image_id = str(image_id)
                if owns_row(image_id, self.rank, self.world) or (self.rank == 0 and image_id in self.grid_ids):
                    yield decode_row({"id": image_id, "hr": hr, "lr": lr})

    def _measure(self, sr: np.ndarray, hr: np.ndarray) -> dict[str, float]:
        sr_t, hr_t = images_to_tensor(sr), images_to_tensor(hr)
        values = {
            "psnr_y": float(batch_psnr_y(sr_t, hr_t, self.crop_border).sum()),
            "ssim_y": float(batch_ssim_y(sr_t, hr_t, self.crop_border).sum()),
            "hf_ratio": high_frequency_ratio(sr, hr, self.crop_border),
            "perceptual": 0.0,
            "images": 1.0,
        }
        if self.perceptual is not None:  # GAN stage: the VGG distance the generator is trained on
            values["perceptual"] = float(self.perceptual(sr_t.to(self.device), hr_t.to(self.device)))
        return values

    def _all_reduce(self, sums: list[float], worst_shift: float) -> list[float]:
        """Sums over ranks, and the worst colour shift over ranks (the last entry)."""
        summed = torch.tensor(sums, dtype=torch.float64, device=self.device)
        worst = torch.tensor([worst_shift], dtype=torch.float64, device=self.device)
        if dist.is_available() and dist.is_initialized() and self.world > 1:
            dist.all_reduce(summed)
            dist.all_reduce(worst, op=dist.ReduceOp.MAX)
        return [*summed.cpu().tolist(), float(worst.item())]

    def _metrics(self, summed: dict[str, float], worst_shift: float) -> dict[str, float]:
        count = max(summed["images"], 1.0)
        metrics = {f"val/{key}": summed[key] / count for key in ("psnr_y", "ssim_y", "hf_ratio")}
        metrics.update({f"val/{key}": self._bicubic[key] / count for key in self._bicubic})
        metrics["val/color_shift_max"] = worst_shift
        metrics["val/images"] = summed["images"]
        if self.perceptual is not None:
            metrics["val/perceptual"] = summed["perceptual"] / count
        return metrics

    def _super_resolve(self, model: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
        """uint8 h×w×3 → uint8 H×W×3 through ``model`` in fp32 (the metrics must not carry
        bf16's rounding), rounded like a saved image."""
        x = images_to_device(torch.from_numpy(lr)[None], self.device, self.channels_last)
        sr = model(x)
        return tensor_to_images(sr)[0]
