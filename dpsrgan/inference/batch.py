"""Files and folders: map inputs to outputs, refuse unsafe plans up front, then upscale one file
at a time so that a bad file costs one error line and never the rest of the run.

torch is imported only for the torch backend: with ``backend="onnxruntime"`` or ``"openvino"``
the exported model runs through :mod:`dpsrgan.inference.exported` on a machine without torch."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from tqdm import tqdm

from dpsrgan.errors import DpsrganError
from dpsrgan.inference.images import from_planes, load_planes, pillow_format, save_image
from dpsrgan.lifecycle.client import REGISTRY_PREFIX
from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE

if TYPE_CHECKING:
    from torch import nn

BACKENDS = ("torch", "onnxruntime", "openvino")

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif", "same": None}
"""``--format`` choices → output extension (``same``: keep the input's extension)."""


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    pil_format: str


@dataclass
class UpscaleReport:
    """What a run did; ``failed`` holds (input, one-line reason) pairs."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _readable_extensions() -> set[str]:
    return {ext for ext, name in Image.registered_extensions().items() if name in Image.OPEN}


def _folder_images(folder: Path, recursive: bool, exclude: Path) -> list[Path]:
    """Image files (by extension, not hidden) in ``folder``, sorted, skipping those under
    ``exclude`` (the output folder, when it is a subfolder of the input tree: reruns must not
    upscale their own outputs)."""
    extensions = _readable_extensions()
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in extensions:
            continue
        inside_output = exclude != folder.resolve() and path.resolve().is_relative_to(exclude)
        if path.is_file() and not inside_output:
            found.append(path)
    return sorted(found)


def plan_jobs(
    inputs: Sequence[Path], output: Path, *, recursive: bool = False, output_format: str = "png"
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Map inputs to output paths. Returns (jobs, missing inputs with a reason).

    One input file → ``output`` is the file (format from its extension) unless it is an
    existing folder or ends with a separator. Otherwise ``output`` is a folder: files keep their
    base names, folder contents keep their relative paths (``recursive`` mirrors the tree).
    Raises DpsrganError for a plan that would overwrite an input or write one file twice.
    """
    if output_format not in OUTPUT_FORMATS:
        raise DpsrganError(f"--format must be one of {list(OUTPUT_FORMATS)}, got {output_format!r}")
    missing = [(path, f"{path}: no such file or folder") for path in inputs if not path.exists()]
    present = [path for path in inputs if path.exists()]
    as_folder = output.is_dir() or str(output).endswith(("/", os.sep))
    if len(inputs) == 1 and present and present[0].is_file() and not as_folder:
        target_format = pillow_format(output)
        if target_format is None:
            raise DpsrganError(f"-o {output}: unknown image extension; end it in .png, .jpg, .webp or .tif")
        jobs = [Job(present[0], output, target_format)]
    else:
        if output.is_file():
            raise DpsrganError(f"-o {output} is a file; several inputs need an output folder")
        sources: list[tuple[Path, Path]] = []  # (file, path relative to the output folder)
        for path in present:
            if path.is_dir():
                sources += [(file, file.relative_to(path)) for file in _folder_images(path, recursive, output.resolve())]
            else:
                sources.append((path, Path(path.name)))
        jobs = [_folder_job(file, output / relative, output_format) for file, relative in sources]
    if not jobs and not missing:
        hint = "" if recursive else " (--recursive descends into subfolders)"
        raise DpsrganError(f"no image files in {', '.join(map(str, inputs))}{hint}")
    _refuse_unsafe(jobs)
    return jobs, missing


def _folder_job(source: Path, target: Path, output_format: str) -> Job:
    extension = OUTPUT_FORMATS[output_format] or source.suffix
    target = target.with_suffix(extension)
    target_format = pillow_format(target)
    if target_format is None:
        raise DpsrganError(f"{source}: Pillow cannot write {extension} files; use --format png")
    return Job(source, target, target_format)


def _refuse_unsafe(jobs: list[Job]) -> None:
    """An output must never replace an input, and two inputs must never share an output."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    claimed: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in inputs:
            raise DpsrganError(
                f"{job.target} would overwrite the input {inputs[target]}; choose another -o or --format"
            )
        if target in claimed:
            raise DpsrganError(
                f"{claimed[target]} and {job.source} would both be written to {job.target}; "
                "rename one or upscale them into different folders"
            )
        claimed[target] = job.source


def upscale_paths(
    inputs: Sequence[str | Path],
    output: str | Path,
    model: nn.Module | str,
    *,
    backend: str = "torch",
    scale: int | None = None,
    tile: int = DEFAULT_TILE,
    tile_pad: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    recursive: bool = False,
    skip_existing: bool = False,
    output_format: str = "png",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool | None = None,
) -> UpscaleReport:
    """Upscale files and folders into ``output`` (see :func:`plan_jobs` for the mapping).

    ``model`` is a module or a ``--model`` spec (see :func:`resolve_model`); with an exported
    ``backend`` (``onnxruntime``/``openvino``) it is an exported file (.onnx, or .xml for
    OpenVINO) or ``models:/NAME@ALIAS``, whose registered ONNX file is used. It is loaded only if
    there is work to do and only after every output folder has been created and proved
    writable (DpsrganError otherwise). Each unreadable/refused input, and each output that
    still fails to write, is logged as one error line and listed in the report's ``failed``;
    the other files are still written. ``skip_existing`` skips outputs that exist: writes are
    atomic, so an existing output is a complete one.
    ``progress`` None shows a bar on a terminal when there are several files.
    """
    jobs, missing = plan_jobs(
        [Path(path) for path in inputs], Path(output), recursive=recursive, output_format=output_format
    )
    report = UpscaleReport(failed=list(missing))
    for _, reason in missing:
        logger.error("%s", reason)
    todo = []
    for job in jobs:
        if skip_existing and job.target.exists():
            report.skipped.append(job.target)
        else:
            todo.append(job)
    if not todo:
        return report
    _prepare_output_folders(todo, Path(output))
    with _upscaler(model, backend, scale=scale, tile=tile, tile_pad=tile_pad, device=device, precision=precision) as upscaler:
        _run_jobs(todo, upscaler, report, max_pixels, progress)
    return report


@contextmanager
def _upscaler(model: Any, backend: str, *, scale: int | None, tile: int, tile_pad: int | None, device: str,
              precision: str) -> Iterator[Any]:
    """The prepared engine for ``backend``: the torch :class:`Upscaler`, or an
    :class:`ExportedUpscaler` (a registry model's ONNX file is downloaded for the run)."""
    if backend not in BACKENDS:
        raise DpsrganError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        from dpsrgan.inference.engine import Upscaler
        from dpsrgan.inference.resolve import resolve_model
        from dpsrgan.inference.runtime import resolve_device

        if isinstance(model, str):
            model = resolve_model(model, resolve_device(device))
        yield Upscaler.prepare(model, scale=scale, tile=tile, tile_pad=tile_pad, device=device, precision=precision)
        return
    from dpsrgan.inference.exported import ExportedUpscaler

    if not isinstance(model, str):
        raise DpsrganError(f"--backend {backend} runs an exported file; pass its path (dpsrgan export writes it)")
    if device == "cuda":
        raise DpsrganError(f"--backend {backend} runs on the CPU here; use --device auto or cpu")
    with tempfile.TemporaryDirectory(prefix="dpsrgan-exported-") as tmp:
        if model.startswith(REGISTRY_PREFIX):
            from dpsrgan.lifecycle.client import ONNX_KEY, download_registered_artifact

            model = str(download_registered_artifact(model, ONNX_KEY, tmp))
        yield ExportedUpscaler.prepare(model, backend, tile=tile, tile_pad=tile_pad, precision=precision)


def _run_jobs(todo: list[Job], upscaler: Any, report: UpscaleReport, max_pixels: int, progress: bool | None) -> None:
    logger.info(
        "upscaling %d file(s) x%d on %s in %s, tile %d, pad %d",
        len(todo), upscaler.scale, upscaler.device, upscaler.precision, upscaler.tile, upscaler.pad,
    )
    hide = True if len(todo) < 2 else None if progress is None else not progress  # None: tqdm asks the tty
    for job in tqdm(todo, unit="image", desc="upscale", disable=hide):
        try:
            _upscale_file(job, upscaler, max_pixels)
        except DpsrganError as error:
            logger.error("%s", error)
            report.failed.append((job.source, str(error)))
        else:
            report.written.append(job.target)


def _prepare_output_folders(jobs: list[Job], output: Path) -> None:
    """Create every folder the jobs write into and write a hidden temp file in each, the way
    :func:`save_image` will. This runs before the model loads, so an -o that cannot hold the
    results costs one line and no work, instead of a failure after the whole run.

    Raises DpsrganError naming ``-o``, the folder and the reason.
    """
    for folder in dict.fromkeys(job.target.parent for job in jobs):  # each folder once, in order
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DpsrganError(f"-o {output}: {_not_creatable(folder, error)}; choose another -o") from error
        try:  # the leading dot: a probe left by a crash is ignored like a partial write (.*.tmp)
            tempfile.NamedTemporaryFile(dir=folder, prefix=".dpsrgan-write-check.", suffix=".tmp").close()
        except OSError as error:
            reason = error.strerror or str(error)
            raise DpsrganError(
                f"-o {output}: cannot write in the folder {folder} ({reason}); choose another -o"
            ) from error


def _not_creatable(folder: Path, error: OSError) -> str:
    """Why ``folder`` cannot be created. A file where a folder should be is the usual cause and
    the OS's words for it ("File exists", "Not a directory") do not say which path is the file."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a file, not a folder"
            break
    return f"cannot create the folder {folder} ({error.strerror or error})"


def _upscale_file(job: Job, upscaler: Any, max_pixels: int) -> None:
    planes, mode, icc_profile = load_planes(job.source, max_pixels)
    try:
        result = upscaler.upscale_planes(planes)
    except DpsrganError as error:
        raise DpsrganError(f"{job.source}: {error}") from error
    del planes
    save_image(from_planes(result, mode, icc_profile), job.target, job.pil_format)
