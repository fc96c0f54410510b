"""Training-time augmentation of aligned (LR, HR) batches: random crops and the 8 dihedral
transforms (flips and 90° rotations), as EDSR and BasicSR train.

Both act on float N×C×h×w LR and N×C×H×W HR tensors with H = scale·h, keep the pairs aligned
pixel for pixel, and draw from a ``torch.Generator`` so a worker's stream is reproducible. On
a small photo set they are what stops a few minutes of training from memorising patches:
smaller crops give more, more varied steps per second, and the dihedral group multiplies the
distinct samples by 8 without changing their statistics (photos have no preferred orientation
for the detail bicubic misses).
"""

from __future__ import annotations

import torch


def random_crop(
    lr: torch.Tensor, hr: torch.Tensor, hr_crop: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One aligned ``hr_crop``² window per sample (``hr_crop/scale``² of LR), at a random LR-pixel
    offset. ``hr_crop`` must be a multiple of the scale and at most the HR side (which it
    returns unchanged)."""
    scale = hr.shape[-1] // lr.shape[-1]
    crop = hr_crop // scale
    if hr_crop % scale or crop > lr.shape[-1] or crop > lr.shape[-2]:
        raise ValueError(f"HR crop {hr_crop} must be a multiple of {scale} and fit in {tuple(hr.shape[-2:])}")
    if crop == lr.shape[-1] == lr.shape[-2]:
        return lr, hr
    tops = torch.randint(0, lr.shape[-2] - crop + 1, (lr.shape[0],), generator=generator).tolist()
    lefts = torch.randint(0, lr.shape[-1] - crop + 1, (lr.shape[0],), generator=generator).tolist()
    lr_out = torch.stack([x[:, t : t + crop, l : l + crop] for x, t, l in zip(lr, tops, lefts, strict=True)])
    hr_out = torch.stack(
        [x[:, t * scale : (t + crop) * scale, l * scale : (l + crop) * scale] for x, t, l in zip(hr, tops, lefts, strict=True)]
    )
    return lr_out, hr_out


def random_dihedral(
    lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pair turned by one of the 8 symmetries of the square (same one for its LR and HR).
    Square crops keep the batch stackable; non-square ones are only flipped."""
    square = lr.shape[-1] == lr.shape[-2]
    codes = torch.randint(0, 8 if square else 4, (lr.shape[0],), generator=generator).tolist()
    pairs = [(_turn(x, code), _turn(y, code)) for x, y, code in zip(lr, hr, codes, strict=True)]
    return torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])


def _turn(image: torch.Tensor, code: int) -> torch.Tensor:
    """C×H×W: bit 0 flips left-right, bit 1 flips up-down, bit 2 transposes."""
    if code & 1:
        image = image.flip(-1)
    if code & 2:
        image = image.flip(-2)
    if code & 4:
        image = image.transpose(-1, -2)
    return image
