"""Mixed precision and memory layout for training: which autocast dtype, whether a GradScaler.

``auto`` picks what is fast *and* safe on the device at hand:

- CUDA with bf16 support (Ampere and newer): bf16 autocast, no scaler (bf16 keeps fp32's range).
- Older CUDA GPUs: fp16 autocast with a :class:`torch.amp.GradScaler` (fp16 underflows without).
- CPUs with bf16 hardware, AMX tiles (Xeon Sapphire Rapids and newer) or AVX-512-BF16 (Zen 4,
  Cooper Lake): bf16 autocast. Measured with benchmarks/train_throughput.py (paper's generator,
  HR 128, batch 8): 1.7× (MSE) and 2.5× (GAN) the fp32 samples/s on a 16-core AMX Xeon, about
  1.5× and 1.4× on 2 AVX-512-BF16 cores. Other CPUs emulate bf16 slowly: fp32.

Losses are always computed in fp32 (the step functions cast outputs up before the loss).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from dpsrgan.errors import DpsrganError
from dpsrgan.hardware import cpu_has_fast_bf16
from dpsrgan.image_tensors import images_to_tensor

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PrecisionPlan:
    """The resolved precision for one device: ``name`` is ``fp32``, ``bf16`` or ``fp16``."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        """Autocast dtype, or None for plain fp32."""
        return _DTYPES.get(self.name)

    @property
    def needs_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only for fp16 (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)


def select_precision(requested: str, device: torch.device) -> PrecisionPlan:
    """Resolve ``auto|fp32|bf16|fp16`` (the ``*.precision`` param) for ``device``."""
    kind = device.type
    if requested == "auto":
        if kind == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            requested = "bf16" if cpu_has_fast_bf16() else "fp32"
    match requested:
        case "fp32":
            pass
        case "bf16":
            if kind == "cuda" and not torch.cuda.is_bf16_supported():
                raise DpsrganError("precision bf16: this GPU has no bf16; set precision: fp16 or auto")
        case "fp16":
            if kind != "cuda":
                raise DpsrganError(
                    f"precision fp16 needs a CUDA GPU (device is {kind}); set precision: bf16, fp32 or auto"
                )
        case _:
            raise DpsrganError(f"precision {requested!r}: choose one of auto, fp32, bf16, fp16")
    return PrecisionPlan(requested, kind)


def to_channels_last(module: nn.Module, enabled: bool) -> nn.Module:
    """NHWC weights: faster convolutions with oneDNN and cuDNN tensor cores."""
    return module.to(memory_format=torch.channels_last) if enabled else module


def images_to_device(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 N×H×W×C (Ray Data's layout) → float N×C×H×W in [0, 1] on ``device``."""
    images = images_to_tensor(batch.to(device, non_blocking=True))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return images.contiguous(memory_format=memory_format)
