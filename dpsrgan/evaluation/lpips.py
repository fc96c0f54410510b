"""LPIPS, when it can run here without a download.

LPIPS needs the ``lpips`` package, torchvision, and torchvision's AlexNet ImageNet weights in the
torch hub cache; none of them is a dependency of this project and the weights cannot be
downloaded offline, so :func:`lpips_status` detects them and the metrics carry a note instead.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch

logger = logging.getLogger("dpsrgan.evaluation")

LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet ImageNet file, the backbone of LPIPS v0.1 (net='alex')."""


def lpips_status() -> tuple[bool, str]:
    """Whether LPIPS can run here without a download, and why not when it cannot."""
    if importlib.util.find_spec("lpips") is None or importlib.util.find_spec("torchvision") is None:
        return (
            False,
            "skipped: the lpips and torchvision packages are not installed (pip install lpips torchvision)",
        )
    weights = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_WEIGHTS
    if not weights.is_file():
        return (
            False,
            f"skipped: LPIPS backbone weights not found at {weights} (torchvision's AlexNet; copy it there)",
        )
    return True, "lpips v0.1 (alex)"


def load_lpips() -> torch.nn.Module | None:
    """The LPIPS network when available (see :func:`lpips_status`), else None."""
    available, note = lpips_status()
    if not available:
        logger.info("LPIPS %s", note)
        return None
    import lpips  # optional: only present when the user installed it with its weights

    return lpips.LPIPS(net="alex", verbose=False).eval()
