"""DPSRGAN discriminator: a conditional Markovian discriminator (PatchGAN) with SRGAN's conv stack.

The candidate HR image is judged *given* its LR input: ``forward(candidate_hr, lr)`` upsamples
the LR image bicubically to the candidate's size and concatenates the two (2 × in_channels
channels) before the convs, so the training loop never builds the conditioned input itself::

    candidate HR ─ [residual_input: − LR↑, × 4] ─┐
    LR ─ bicubic ×s (align_corners=False) = LR↑ ─┴─ concat (6 ch) ─ block 0 (3×3 conv, LReLU 0.2)
       ─ blocks 1..7 (3×3 conv, BN, LReLU 0.2; widths c, 2c, 2c, 4c, 4c, 8c, 8c; stride 2 in
         blocks 1, 3, 5, 7) ─ logits (3×3 conv → 1 channel) ─ N×1×⌈H/16⌉×⌈W/16⌉ logits

SRGAN (Ledig et al., 2017) ends the same stack with Dense(1024), LeakyReLU, Dense(1); DPSRGAN
drops that dense head, which holds most of SRGAN's discriminator parameters at 128×128 (see
:func:`srgan_discriminator_parameter_count`), and outputs one real/fake logit per patch. Each
logit sees a 93×93 HR-pixel patch (:meth:`Discriminator.patch_receptive_field`). Any input size
works: a 128×128 candidate gives an 8×8 logit map.

``residual_input=True`` (our default, ``model.d_residual_input``) feeds the candidate as its
detail over bicubic, ``RESIDUAL_GAIN · (candidate − LR↑)``, beside LR↑: an invertible linear
recoding of the paper's (candidate, LR↑) pair, so D judges exactly the same conditional
information, but what tells an MSE-trained SR image from HR — the missing high frequencies — is
no longer a ±1 % ripple on the image's own values. Measured with D alone against the quickstart's
frozen pretrained generator (benchmarks/results/gan-*, batches of 8, real and fake in one batch):
mean D(real) − D(fake) 0.13 over the first 25 steps and 0.54 over steps 101–125, against 0.02 and
0.18 with the paper's input; ``False`` is the paper's input.

``spectral_norm=True`` wraps every conv in spectral normalisation (Miyato et al., 2018; the
stabilisation the paper names as future work) and drops BN, as Miyato et al. do: batch
statistics would undo the Lipschitz bound SN enforces. The logits are raw (use BCE-with-logits).

Module names (``blocks``, ``logits``) are state_dict keys: do not rename them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from dpsrgan.errors import DpsrganError
from dpsrgan.models.checks import require_ints
from dpsrgan.models.discriminator_blocks import SRGAN_BLOCKS, SRGAN_DENSE_WIDTH, srgan_conv_stack
from dpsrgan.models.srgan_discriminator import SRGANDiscriminator

RESIDUAL_GAIN = 4.0
"""Scale of the candidate's residual over LR↑ (``residual_input``): HR's detail over bicubic has
about a quarter of an image's spread, so ×4 puts it on the scale the first conv was initialised for."""


class Discriminator(nn.Module):
    """Conditional PatchGAN. ``forward(candidate_hr, lr)``: candidate N×C×H×W and its LR input
    N×C×h×w (any h, w; usually H/4, W/4), floats in [0, 1] → logits N×1×⌈H/16⌉×⌈W/16⌉
    (see :meth:`patch_grid`).

    Args:
        in_channels: image channels (3 for RGB); the convs see twice as many.
        channels: width of the first block (64 in SRGAN); later blocks use 2×, 4×, 8×.
        spectral_norm: spectral-normalise every conv and drop BN.
        residual_input: judge the candidate's detail over LR↑ (see the module doc); False is the paper's.
    """

    def __init__(
        self, in_channels: int = 3, channels: int = 64, spectral_norm: bool = False, residual_input: bool = False
    ) -> None:
        super().__init__()
        require_ints("discriminator", in_channels=in_channels, channels=channels)
        self._config = {
            "in_channels": in_channels,
            "channels": channels,
            "spectral_norm": spectral_norm,
            "residual_input": residual_input,
        }
        self.residual_input = residual_input
        self.blocks = srgan_conv_stack(2 * in_channels, channels, spectral_norm)  # N×8c×⌈H/16⌉×⌈W/16⌉
        logits = nn.Conv2d(channels * SRGAN_BLOCKS[-1][0], 1, 3, padding=1)
        self.logits = _spectral_norm(logits) if spectral_norm else logits

    @property
    def config(self) -> dict[str, int | bool]:
        """The constructor arguments as plain data (a copy)."""
        return dict(self._config)

    def forward(self, candidate_hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        lr_up = F.interpolate(lr, size=candidate_hr.shape[-2:], mode="bicubic", align_corners=False)
        if self.residual_input:
            candidate_hr = RESIDUAL_GAIN * (candidate_hr - lr_up)  # the detail G adds over bicubic
        x = torch.cat([candidate_hr, lr_up], dim=1)  # N×2C×H×W: judge HR given its LR
        return self.logits(self.blocks(x))  # N×1×⌈H/16⌉×⌈W/16⌉

    def patch_grid(self, height: int, width: int) -> tuple[int, int]:
        """Logit-map size (rows, cols) for an H×W candidate: ⌈·/2⌉ per stride-2 conv."""
        for conv in self._convs():
            height, width = (_conv_out(n, conv) for n in (height, width))
        return height, width

    def patch_receptive_field(self) -> int:
        """Side, in HR pixels, of the input patch one logit judges (93 for SRGAN's stack)."""
        field, jump = 1, 1
        for conv in self._convs():
            field += conv.dilation[0] * (conv.kernel_size[0] - 1) * jump
            jump *= conv.stride[0]
        return field

    def _convs(self) -> list[nn.Conv2d]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]


def _conv_out(size: int, conv: nn.Conv2d) -> int:
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    padding, dilation = conv.padding[0], conv.dilation[0]
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def srgan_discriminator_parameter_count(
    height: int = 128, width: int = 128, in_channels: int = 3, channels: int = 64
) -> int:
    """Trainable parameters of SRGAN's discriminator (Ledig et al., 2017, Fig. 4) for an H×W
    input, counted from its layer shapes: eight 3×3 conv blocks (BN after all but the first),
    then Dense(1024), LeakyReLU, Dense(1). Unlike a PatchGAN its dense head grows with H×W.
    """
    count, cin, rows, cols = 0, in_channels, height, width
    for index, (multiplier, stride) in enumerate(SRGAN_BLOCKS):
        cout = channels * multiplier
        count += 3 * 3 * cin * cout + cout  # conv weight + bias
        count += 2 * cout if index > 0 else 0  # BN gamma + beta
        rows, cols = math.ceil(rows / stride), math.ceil(cols / stride)  # 'same' padding
        cin = cout
    flat = cin * rows * cols
    count += flat * SRGAN_DENSE_WIDTH + SRGAN_DENSE_WIDTH  # Dense(1024)
    count += SRGAN_DENSE_WIDTH + 1  # Dense(1)
    return count


def build_discriminator(architecture: dict) -> nn.Module:
    """Either discriminator from its architecture dict (a checkpoint's, or the trainer's): ``kind``
    ``patchgan`` (the default when absent: DPSRGAN's, :class:`Discriminator`) or ``srgan``
    (:class:`~dpsrgan.models.srgan_discriminator.SRGANDiscriminator`, the SRGAN baseline's)."""
    config = dict(architecture)
    match config.pop("kind", "patchgan"):
        case "patchgan":
            return Discriminator(**config)
        case "srgan":
            return SRGANDiscriminator(**config)
        case other:
            raise DpsrganError(f"discriminator kind must be 'patchgan' or 'srgan', got {other!r}")
