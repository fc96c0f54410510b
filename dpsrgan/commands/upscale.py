"""``dpsrgan upscale INPUT... -o OUT --model CHECKPOINT``: super-resolve image files and folders.

OUT is a file when the input is one file (its extension picks the format), a folder otherwise
(same base names, PNG unless --format says otherwise; --recursive mirrors subfolders).

Any image size: the image is cut into --tile x --tile tiles (LR pixels) that each read
--tile-pad pixels of real neighbouring image as context; neighbouring tiles are cross-faded, so
peak memory follows the tile, not the image. The default generator's receptive field is 112 LR
pixels wide (radius 56): with --tile-pad >= 56 (the default: the model's own radius) tiled and
untiled results agree to float rounding; a smaller pad is faster and blends away its seams.
On CUDA out-of-memory the tile is halved and the image retried.

Modes: RGB, grayscale (stays grayscale), RGBA/LA (alpha upscaled bicubically, kept), palette
(written as RGB/RGBA), 16-bit grayscale PNG (stays 16-bit). EXIF orientation is applied and the
ICC profile kept. Reduced precision (bf16/fp16) falls back to fp32 with a warning when its
output is non-finite or blank.

Backends: --backend torch (default) runs a checkpoint; --backend onnxruntime runs an .onnx file
and --backend openvino an OpenVINO .xml (or .onnx) written by `dpsrgan export`, or the ONNX
file registered with models:/NAME@ALIAS. They tile, treat image modes and round exactly like
the torch backend and do not import torch (a server needs only dpsrgan[onnx] or
dpsrgan[openvino]). --precision: onnxruntime runs fp32; openvino's auto is bf16 on CPUs with
native bf16, like torch's.

Safety: an output path that is an input, and an output folder that cannot be created or
written, are refused before the model loads (one line, exit 2); writes are atomic (temp file +
rename), so --skip-existing can resume an interrupted run. A corrupt, empty or non-image input,
or an output that still fails to write, is reported as one error line and the run exits 1
after writing the rest.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dpsrgan.errors import DpsrganError
from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS, DEFAULT_TILE

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "upscale",
        help="super-resolve images (files or folders, any size) with a trained generator",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files and/or folders")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output file or folder")
    parser.add_argument(
        "--model", required=True, metavar="MODEL",
        help="generator checkpoint file (dpsrgan save_generator format) or models:/NAME@ALIAS; "
        "with --backend onnxruntime/openvino an exported .onnx/.xml file (dpsrgan export)",
    )
    parser.add_argument(
        "--backend", choices=("torch", "onnxruntime", "openvino"), default="torch",
        help="what runs the model (default torch; see 'Backends' above)",
    )
    parser.add_argument(
        "--tile", type=int, default=DEFAULT_TILE, metavar="T",
        help=f"tile size in LR pixels; 0 = whole image at once (default {DEFAULT_TILE})",
    )
    parser.add_argument(
        "--tile-pad", type=int, default=None, metavar="P",
        help="LR pixels of real context read around each tile (default: the model's receptive radius, "
        "56 for the default generator, which makes tiling exact)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto (CUDA if available)")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
        help="auto: bf16 on CPUs with AMX or AVX512-BF16 and on bf16-capable GPUs, else fp32; "
        "fp16 is CUDA-only",
    )
    parser.add_argument(
        "--format", dest="output_format", choices=("png", "jpg", "webp", "tiff", "same"), default="png",
        help="output format for folder outputs (same: keep each input's format; default png)",
    )
    parser.add_argument("--recursive", action="store_true", help="descend into subfolders and mirror them in OUT")
    parser.add_argument("--skip-existing", action="store_true", help="skip inputs whose output already exists (resume)")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
        help=f"refuse inputs with more pixels than this (default {DEFAULT_MAX_PIXELS:,}: Pillow's "
        "decompression-bomb limit applied to the x4 output)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from dpsrgan.inference import upscale_paths

    if args.model.startswith("models:/"):
        from dpsrgan.lifecycle.client import apply_client_limits

        apply_client_limits()
    if args.max_pixels < 1:
        raise DpsrganError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    with logging_redirect_tqdm():
        report = upscale_paths(
            args.inputs,
            args.output,
            args.model,
            backend=args.backend,
            tile=args.tile,
            tile_pad=args.tile_pad,
            device=args.device,
            precision=args.precision,
            recursive=args.recursive,
            skip_existing=args.skip_existing,
            output_format=args.output_format,
            max_pixels=args.max_pixels,
            progress=False if args.no_progress else None,
        )
    summary = f"wrote {len(report.written)}, skipped {len(report.skipped)} existing, failed {len(report.failed)}"
    print(f"dpsrgan upscale: {summary}" + (f" -> {args.output}" if report.written else ""))
    return 0 if report.ok else 1
