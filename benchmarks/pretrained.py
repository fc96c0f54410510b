"""A generator briefly MSE-pretrained on scikit-image's photographs, for the bf16-vs-fp32 PSNR
rows where no trained checkpoint exists (CelebA cannot be downloaded on offline machines).

Run: ``python -m benchmarks.pretrained [--steps 350] -o photo-generator.pt``, then
``python -m benchmarks --checkpoint photo-generator.pt``. About 8 minutes on a quiet 2-core CPU
(1.4 s a step); 350 steps reach about 25 dB on the benchmark's crops: far from a trained model,
but a network that reproduces images, unlike random weights, whose deep residual stack
amplifies rounding (in bf16 vs fp32, random weights deviate by 43-64 dB depending on their BN
statistics, this one by about 55 dB).

The steps are :func:`dpsrgan.training.steps.pretrain_step` on random 64² HR patches (×4 LR by
the degrade stage's MATLAB bicubic) of :func:`training_photos`, batch 16, Adam 3e-4, in bf16
where the CPU has native bf16 (the ``auto`` precision of inference), else fp32.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from skimage import data

from dpsrgan.checkpoint import save_generator
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.inference.runtime import resolve_precision
from dpsrgan.models.generator import Generator
from dpsrgan.training.precision import PrecisionPlan
from dpsrgan.training.steps import pretrain_step

logger = logging.getLogger(__name__)


def training_photos() -> list[np.ndarray]:
    """scikit-image's bundled colour photographs (the benchmark's four test crops among them:
    this model is for measuring bf16 rounding, not generalisation)."""
    return [
        data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(), data.cat(),
        data.hubble_deep_field(), data.retina()[200:1200, 200:1200],
    ]


def patches(rng: np.random.Generator, photos: list[np.ndarray], count: int, hr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random (LR, HR) pairs, float N×3×H×W in [0, 1], channels-last."""
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(photo.shape[0] - hr), rng.integers(photo.shape[1] - hr)
        crop = photo[top : top + hr, left : left + hr]
        crops.append(np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop))

    def stack(images: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
        return batch.contiguous(memory_format=torch.channels_last)

    return stack([bicubic_downscale(crop, 4) for crop in crops]), stack(crops)


def pretrain_on_photos(steps: int, seed: int = 0, batch: int = 16, hr: int = 64) -> Generator:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    photos = training_photos()
    generator = Generator().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(generator.parameters(), lr=3e-4)
    plan = PrecisionPlan(resolve_precision("auto", torch.device("cpu")), "cpu")
    for step in range(1, steps + 1):
        lr, target = patches(rng, photos, batch, hr)
        losses = pretrain_step(generator, optimizer, lr, target, precision=plan)
        if step % 50 == 0 or step == steps:
            logger.info("step %d/%d: MSE %.5f (%s)", step, steps, losses["loss/g_mse"], plan.name)
    return generator.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pretrained", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--steps", type=int, default=350)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    generator = pretrain_on_photos(args.steps, args.seed)
    save_generator(generator, args.output, purpose="benchmark: MSE pretrain on scikit-image photographs",
                   steps=args.steps, seed=args.seed)
    logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
