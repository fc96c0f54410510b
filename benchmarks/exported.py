"""Exported-model rows for the inference section: the same generator exported with
``dpsrgan export`` and run by ONNX Runtime (fp32) and OpenVINO (fp32, bf16 where the CPU has
it, NNCF int8), each through :class:`~dpsrgan.inference.exported.ExportedUpscaler` on the same
photograph as the torch engine's ``upscaler_prepared`` row (tile 0, 8-bit in and out), timed in
the same round-robin, so every ratio to the SRResNet-16 anchor is same-run.

Quality: PSNR-Y (border 4) of each backend's 8-bit output against HR, minus torch fp32's, on the
inference section's held-out photographs. int8 is calibrated on 64 LR patches of
scikit-learn's two photographs (china, flower), none of which are scored; its row is measured
whether or not it passes the export's 0.05 dB gate (the page says which).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dpsrgan.checkpoint import save_generator
from dpsrgan.export.build import Int8Options, export
from dpsrgan.export.quantize import MAX_DELTA_DB
from dpsrgan.inference.exported import ExportedUpscaler
from dpsrgan.inference.planes import Planes
from dpsrgan.metrics import psnr
from dpsrgan.models.generator import Generator

CALIBRATION_PATCH = 128  # HR pixels: 32² LR patches


def _calibration_folder(folder: Path, count: int = 64) -> Path:
    """``count`` HR patches on a grid over scikit-learn's two sample photographs."""
    from dpsrgan.data.folder import bundled_photos

    folder.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.open(path).convert("RGB")) for rel, path in bundled_photos().items() if rel.startswith("sklearn/")]
    index = 0
    while index < count:
        for photo in photos:
            size = CALIBRATION_PATCH
            rows, cols = (photo.shape[0] - size) // size, (photo.shape[1] - size) // size
            y, x = divmod(index // len(photos), max(cols, 1))
            top, left = (y % max(rows, 1)) * size, x * size
            Image.fromarray(photo[top : top + size, left : left + size]).save(folder / f"{index:03d}.png")
            index += 1
    return folder


def exported_upscalers(model: Generator, heldout: dict[str, np.ndarray], workdir: Path) -> tuple[dict[str, ExportedUpscaler], dict[str, Any]]:
    """Export ``model`` (ONNX, OpenVINO fp32 and int8) under ``workdir``; the upscalers to time
    and what the exports reported (verification diffs, the int8 gate's measurement)."""
    checkpoint = save_generator(model, workdir / "generator.pt")
    onnx = export(str(checkpoint), "onnx", workdir / "generator.onnx")
    ir = export(str(checkpoint), "openvino", workdir / "generator.xml")
    heldout_dir = workdir / "heldout"
    heldout_dir.mkdir()
    for name, hr in heldout.items():
        Image.fromarray(hr).save(heldout_dir / f"{name}.png")
    int8 = export(
        str(checkpoint), "openvino", workdir / "generator.int8.xml",
        int8_options=Int8Options(_calibration_folder(workdir / "calibration"), heldout_dir, max_delta_db=float("inf")),
    )
    assert int8.quality is not None
    upscalers = {
        "onnxruntime_fp32": ExportedUpscaler.prepare(str(onnx.path), "onnxruntime", precision="fp32"),
        "openvino_fp32": ExportedUpscaler.prepare(str(ir.path), "openvino", precision="fp32"),
        "openvino_int8": ExportedUpscaler.prepare(str(int8.path), "openvino", precision="fp32"),
    }
    try:
        upscalers["openvino_bf16"] = ExportedUpscaler.prepare(str(ir.path), "openvino", precision="bf16")
        upscalers["openvino_int8_bf16"] = ExportedUpscaler.prepare(str(int8.path), "openvino", precision="bf16")
    except Exception as error:  # noqa: BLE001 - no native bf16: the rows are absent, the page says why
        upscalers_note = f"no bf16 rows: {error}"
    else:
        upscalers_note = ""
    info = {
        "verify_max_abs_diff": {"onnx": onnx.max_abs_diff, "openvino": ir.max_abs_diff, "tolerance": onnx.tolerance},
        "int8_gate": {
            "delta_mean_db": int8.quality.delta_mean, "delta_worst_db": int8.quality.delta_worst,
            "images": int8.quality.images, "limit_db": MAX_DELTA_DB,
            "passes": abs(int8.quality.delta_mean) <= MAX_DELTA_DB,
        },
        "note": upscalers_note,
    }
    return upscalers, info


def timed_paths(upscalers: dict[str, ExportedUpscaler], photo: np.ndarray) -> dict[str, Callable[[], object]]:
    """One call per backend: the whole 8-bit photograph in, 8-bit ×4 out (as ``upscaler_prepared``)."""
    return {name: (lambda up=up: up.upscale_planes(Planes(photo))) for name, up in upscalers.items()}


def backend_quality(upscalers: dict[str, ExportedUpscaler], torch_outputs: dict[str, dict[str, np.ndarray]],
                    heldout: dict[str, np.ndarray], scale: int) -> dict[str, Any]:
    """Per row (torch paths given as outputs, exported backends run here): mean PSNR-Y against
    HR and its difference to ``torch_outputs["fp32_eager"]`` (dB), keyed like the timing rows."""
    from dpsrgan.degradation import bicubic_downscale

    outputs = dict(torch_outputs)
    for backend, up in upscalers.items():
        outputs[backend] = {name: up.upscale_planes(Planes(bicubic_downscale(hr, scale))).color for name, hr in heldout.items()}
    scores = {row: {name: psnr(images[name], hr, scale) for name, hr in heldout.items()} for row, images in outputs.items()}
    reference = scores["fp32_eager"]
    result: dict[str, Any] = {}
    for row, per_image in scores.items():
        deltas = [per_image[name] - reference[name] for name in heldout]
        result[row] = {
            "psnr_y": float(np.mean(list(per_image.values()))),
            "delta_db": float(np.mean(deltas)),
            "worst_image_delta_db": float(max(deltas, key=abs)),
        }
    return result
