"""``dpsrgan export``'s flow: a checkpoint or registry model → verified files, all or nothing.

1. Load the generator (a checkpoint file, weights-only, or ``models:/NAME@ALIAS`` from the
   registry) and describe it (:mod:`~dpsrgan.export.metadata`).
2. Export into a hidden staging folder beside ``-o`` (so an unwritable ``-o`` fails before any
   work), convert to OpenVINO if asked, and verify against torch (:mod:`~dpsrgan.export.verify`).
3. int8 (opt-in): quantise with NNCF on calibration images, measure ΔPSNR-Y on held-out
   photographs, refuse if it does not hold (:mod:`~dpsrgan.export.quantize`).
4. Rename the files into place (an IR's ``.bin`` before its ``.xml``, so a visible ``.xml``
   always has its weights) and remove the staging folder, on success or failure alike.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dpsrgan.errors import DpsrganError
from dpsrgan.export import metadata as meta
from dpsrgan.export import quantize as int8
from dpsrgan.export.runtime import load_exported
from dpsrgan.export.samples import load_pairs
from dpsrgan.export.verify import TOLERANCE, verify
from dpsrgan.lifecycle.client import REGISTRY_PREFIX
from dpsrgan.storage.checksum import sha256_file

logger = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "openvino": ".xml"}


@dataclass(frozen=True)
class Int8Options:
    calibration: Path
    heldout: Path
    max_delta_db: float = int8.MAX_DELTA_DB
    calibration_images: int = int8.CALIBRATION_IMAGES


@dataclass(frozen=True)
class ExportResult:
    path: Path
    files: tuple[Path, ...]
    max_abs_diff: float
    tolerance: float
    quality: int8.Quality | None = None


def default_output(source: str, fmt: str, quantised: bool = False) -> Path:
    """``models/gan/generator.pt`` → ``models/gan/generator.onnx`` (``.xml``, ``.int8.xml``);
    ``models:/dpsrgan@champion`` → ``dpsrgan-champion.onnx`` in the current folder."""
    suffix = (".int8" if quantised else "") + FORMATS[fmt]
    if source.startswith(REGISTRY_PREFIX):
        name = source.removeprefix(REGISTRY_PREFIX).strip("/").replace("@", "-").replace("/", "-")
        return Path(name + suffix)
    return Path(source).with_suffix(suffix)


def export(
    source: str,
    fmt: str,
    output: Path | None = None,
    *,
    int8_options: Int8Options | None = None,
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export ``source`` to ``output`` in ``fmt`` (``onnx`` or ``openvino``); see the module
    docstring. Every user-fixable failure is one :class:`DpsrganError` line, with nothing left."""
    if fmt not in FORMATS:
        raise DpsrganError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if int8_options is not None and fmt != "openvino":
        raise DpsrganError("--int8 needs --format openvino (NNCF quantises the OpenVINO model)")
    output = Path(output) if output is not None else default_output(source, fmt, int8_options is not None)
    if output.suffix.lower() != FORMATS[fmt]:
        raise DpsrganError(f"-o {output}: a {fmt} export is written as a {FORMATS[fmt]} file; end -o in {FORMATS[fmt]}")
    if output.is_dir():
        raise DpsrganError(f"-o {output} is a folder; name the {FORMATS[fmt]} file to write")
    staging = _staging_folder(output)
    try:
        generator, metadata = _load_source(source, staging)
        onnx_path = staging / "model.onnx"
        from dpsrgan.export.onnx import export_onnx

        export_onnx(generator, onnx_path, metadata)
        if fmt == "onnx":
            diff = verify(load_exported(onnx_path, "onnxruntime", "fp32"), generator, tolerance)
            return ExportResult(output, _publish({onnx_path: output}), diff, tolerance)
        from dpsrgan.export.openvino import read_onnx, save_ir

        fp32_xml = save_ir(read_onnx(onnx_path), staging / "model.xml", metadata)
        fp32 = load_exported(fp32_xml, "openvino", "fp32")
        diff = verify(fp32, generator, tolerance)
        if int8_options is None:
            return ExportResult(output, _publish(_ir_files(fp32_xml, output)), diff, tolerance)
        quality = _quantise(fp32, staging, metadata, int8_options)
        logger.info("%s", quality.line())
        return ExportResult(output, _publish(_ir_files(staging / "int8.xml", output)), diff, tolerance, quality)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantise(fp32, staging: Path, metadata: dict[str, str], options: Int8Options) -> int8.Quality:
    from dpsrgan.export.openvino import read_onnx, save_ir

    scale = fp32.scale
    calibration = load_pairs(options.calibration, scale, options.calibration_images, "--calibration")
    heldout = load_pairs(options.heldout, scale, None, "--heldout")
    quantised = int8.quantize(read_onnx(staging / "model.onnx"), calibration)
    int8_xml = save_ir(quantised, staging / "int8.xml", {**metadata, "precision": "int8"})
    quality = int8.measure(fp32, load_exported(int8_xml, "openvino", "fp32"), heldout)
    int8.check(quality, options.max_delta_db)
    return quality


def _load_source(source: str, staging: Path):
    """The generator (eval, CPU) and the export's metadata, from a checkpoint or the registry."""
    from dpsrgan.checkpoint import generator_from_checkpoint, read_generator_checkpoint

    if source.startswith(REGISTRY_PREFIX):
        from dpsrgan.lifecycle.client import WEIGHTS_KEY, download_registered_artifact

        checkpoint_path = download_registered_artifact(source, WEIGHTS_KEY, staging / "registry")
    else:
        checkpoint_path = Path(source).expanduser()
        if not checkpoint_path.is_file():
            raise DpsrganError(
                f"{source}: no such checkpoint file; pass a file written by dpsrgan.save_generator "
                "or a registry URI like models:/dpsrgan@champion"
            )
    checkpoint = read_generator_checkpoint(checkpoint_path)
    generator = generator_from_checkpoint(checkpoint, checkpoint_path)
    metadata = meta.describe(
        generator.config,
        receptive_radius=generator.receptive_radius,
        source=source,
        checkpoint_sha256=sha256_file(checkpoint_path),
        checkpoint_provenance=checkpoint.get("provenance", {}),
    )
    return generator, metadata


def _staging_folder(output: Path) -> Path:
    """A hidden temp folder beside ``output`` (same filesystem: the final rename is atomic)."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"))
    except OSError as error:
        raise DpsrganError(
            f"-o {output}: cannot write in {output.parent} ({error.strerror or error}); choose another -o"
        ) from None


def _ir_files(staged_xml: Path, output: Path) -> dict[Path, Path]:
    """Staged IR → final names, ``.bin`` first (published in this order)."""
    return {staged_xml.with_suffix(".bin"): output.with_suffix(".bin"), staged_xml: output}


def _publish(moves: dict[Path, Path]) -> tuple[Path, ...]:
    for staged, final in moves.items():
        os.replace(staged, final)
    return tuple(moves.values())
