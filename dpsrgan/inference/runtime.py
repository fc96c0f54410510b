"""Where and in what precision inference runs: device and precision choice, and the checks that
make reduced precision safe to use by default."""

from __future__ import annotations

import logging
from typing import Literal

import torch

from dpsrgan.errors import DpsrganError
from dpsrgan.hardware import FAST_BF16_FLAGS, cpu_has_fast_bf16  # noqa: F401  (FAST_BF16_FLAGS: re-exported)

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ReducedPrecisionFailure(RuntimeError):
    """A bf16/fp16 tile came out non-finite or blank; the caller retries the image in fp32."""


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    match device:
        case "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        case "cpu":
            return torch.device("cpu")
        case "cuda":
            if not torch.cuda.is_available():
                raise DpsrganError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
            return torch.device("cuda")
        case _:
            raise DpsrganError(f"device must be one of {list(DEVICES)}, got {device!r}")


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """``auto`` → bf16 on CPUs with native bf16 (AMX or AVX512-BF16) and bf16-capable GPUs, else
    fp32; fp16 is CUDA-only."""
    match precision:
        case "auto":
            if device.type == "cuda":
                return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
            return "bf16" if cpu_has_fast_bf16() else "fp32"
        case "fp32" | "bf16":
            return precision
        case "fp16":
            if device.type != "cuda":
                raise DpsrganError("--precision fp16 runs on CUDA only; on CPU use bf16 or fp32")
            return "fp16"
        case _:
            raise DpsrganError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")


def check_reduced_output(lr: torch.Tensor, sr: torch.Tensor, precision: Precision) -> None:
    """Raise :class:`ReducedPrecisionFailure` if a reduced-precision output is unusable:
    non-finite (fp16 overflow), or blank (constant) although its input was not flat."""
    if not torch.isfinite(sr).all():
        raise ReducedPrecisionFailure(f"{precision} output has non-finite values")
    flat_output = float(sr.amax() - sr.amin()) < 1e-6
    if flat_output and float(lr.amax() - lr.amin()) > 1 / 255:
        raise ReducedPrecisionFailure(f"{precision} output is blank (constant) for a non-flat input")
