"""What the CPU offers that changes a default: native bf16.

Training (``pretrain.precision`` / ``gan.precision: auto``, :mod:`dpsrgan.training.precision`) and
inference (``--precision auto``, :mod:`dpsrgan.inference.runtime`) both ask
:func:`cpu_has_fast_bf16`, so they choose bf16 on the same machines.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU flags of native bf16 dot products (oneDNN's bf16 kernels): AMX tiles, or AVX512-BF16
(``vdpbf16ps``, e.g. AMD Zen 4/5, Intel Cooper Lake). Measured on a 2-core Zen 5 without AMX:
the generator runs 2.3× faster in bf16 than in fp32 (benchmarks/, ``python -m benchmarks``)."""


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 dot products natively (:data:`FAST_BF16_FLAGS`); without
    them oneDNN emulates bf16, which is no faster than fp32.

    On Linux the kernel's flag list decides: it names what the CPU has *and* the kernel enabled
    (AMX needs the kernel's permission), while ``torch.backends.cpu.get_cpu_capability()`` stops
    at "AVX512". Elsewhere torch's own CPUID probes (private, so looked up defensively) answer.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = set(cpuinfo.read_text(errors="replace").split())
        return any(flag in flags for flag in FAST_BF16_FLAGS)
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(bool(probe()) for probe in probes if probe is not None)
