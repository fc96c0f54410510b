"""What each method costs: generator parameters and GFLOPs, the parameters of the discriminator
it was trained with, and the published layouts counted the same way — the paper's claim is about
size as much as quality, so the table shows both."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def generator_costs(generators: Mapping[str, torch.nn.Module], scale: int) -> dict[str, dict[str, float]]:
    """Per method: generator parameters (``num_params``) and conv GFLOPs per output megapixel
    (``gflops_per_output_mp``); bicubic has no parameters (its few FLOPs are not counted)."""
    from dpsrgan.models.complexity import gflops_per_output_megapixel, parameter_count

    costs: dict[str, dict[str, float]] = {"bicubic": {"num_params": 0}}
    for method, generator in generators.items():
        costs[method] = {
            "num_params": parameter_count(generator),
            "gflops_per_output_mp": round(gflops_per_output_megapixel(generator, scale), 2),
        }
    return costs


def discriminator_params(checkpoints: Mapping[str, str]) -> dict[str, int]:
    """Per method: parameters of the discriminator it was trained with, from its checkpoint
    (SRGAN's as built for the training crop: its dense head grows with H×W)."""
    from dpsrgan.checkpoint import read_checkpoint
    from dpsrgan.models.complexity import parameter_count
    from dpsrgan.models.discriminator import build_discriminator

    return {
        method: parameter_count(build_discriminator(read_checkpoint(path)["architecture"]))
        for method, path in checkpoints.items()
    }


def published_parameter_counts() -> dict[str, int]:
    """The published layouts counted the same way (64 channels, 16 blocks, ×4, RGB; SRGAN's D at
    its paper's 96×96 HR input; the PatchGAN's count does not depend on the input size)."""
    from dpsrgan.models.complexity import parameter_count
    from dpsrgan.models.discriminator import Discriminator, srgan_discriminator_parameter_count
    from dpsrgan.models.generator import Generator
    from dpsrgan.models.srresnet import srresnet_parameter_count

    counts = {
        "srresnet_g": srresnet_parameter_count(),
        "srgan_d_96": srgan_discriminator_parameter_count(96, 96),
        "dpsrgan_g": parameter_count(Generator()),
        "dpsrgan_d": parameter_count(Discriminator()),
    }
    counts["srgan_total_96"] = counts["srresnet_g"] + counts["srgan_d_96"]
    counts["dpsrgan_total"] = counts["dpsrgan_g"] + counts["dpsrgan_d"]
    return counts
