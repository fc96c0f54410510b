"""Images ↔ model tensors, the two layouts every stage meets:

- an image: integer H×W×C (or a batch N×H×W×C), uint8 unless said otherwise, numpy or torch;
- a model tensor: float32 N×C×H×W in [0, 1] (the generator's input and output).

Going back clamps to [0, 1], scales by 255 and rounds to nearest (ties to even), which is how
``dpsrgan upscale`` writes a PNG, so metrics on these images are metrics on saved files.
"""

from __future__ import annotations

import numpy as np
import torch


def images_to_tensor(images: np.ndarray | torch.Tensor, full_scale: float = 255.0) -> torch.Tensor:
    """Integer images H×W×C or N×H×W×C (numpy or torch; ``full_scale`` is the value meaning
    1.0: 255 for uint8, 65535 for uint16) → float32 N×C×H×W in [0, 1], on the input's device."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if tensor.ndim == 3:
        tensor = tensor[None]
    return tensor.permute(0, 3, 1, 2).float().div_(full_scale)


def tensor_to_images(batch: torch.Tensor) -> np.ndarray:
    """Float N×C×H×W (any float dtype, any device) → uint8 N×H×W×C numpy on the CPU: clamped to
    [0, 1], ×255, rounded to nearest."""
    return batch.float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
