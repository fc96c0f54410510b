"""``dpsrgan export MODEL --format onnx|openvino [-o PATH]``: a generator for runtimes without PyTorch.

    dpsrgan export models/gan/generator.pt --format onnx             # -> models/gan/generator.onnx
    dpsrgan export models:/dpsrgan@champion --format openvino -o sr.xml   # + sr.bin
    dpsrgan export models/gan/generator.pt --format openvino --int8 --calibration data/processed/train
        --heldout data/processed/test                                 # -> generator.int8.xml

MODEL is a checkpoint written by dpsrgan or a registry URI (models:/NAME@ALIAS). The file has
dynamic batch, height and width (ONNX opset 17) and carries the generator's config and
provenance (checkpoint sha256 or model URI, dpsrgan version, git commit) in its metadata.

Export verifies itself: the exported model and torch run the same inputs (1x3x23x37 and
2x3x16x20); a max difference over 1e-3 (on the [0, 1] scale) fails the export. --int8
quantises the OpenVINO model with NNCF on --calibration images (training split) and writes it
only if mean |ΔPSNR-Y| against fp32 on --heldout photographs is at most --max-delta-db
(0.05 dB). Any failure is one line and a non-zero exit, and nothing is left at -o; SIGTERM, like
Ctrl-C, removes the hidden staging folder beside -o before exiting (130).

Run an export with: dpsrgan upscale IN -o OUT --backend onnxruntime|openvino --model FILE.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a generator to ONNX or OpenVINO (verified against torch; optional int8)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="generator checkpoint or models:/NAME@ALIAS")
    parser.add_argument("--format", dest="fmt", required=True, choices=("onnx", "openvino"), help="onnx: .onnx file; openvino: .xml + .bin")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH", help="file to write (default: beside the checkpoint, or NAME-ALIAS.onnx/.xml here)")
    parser.add_argument("--int8", action="store_true", help="quantise to int8 with NNCF (needs --format openvino, --calibration, --heldout)")
    parser.add_argument("--calibration", type=Path, metavar="DIR", help="training images: a processed split (data/processed/train) or a folder of photographs")
    parser.add_argument("--heldout", type=Path, metavar="DIR", help="held-out photographs for the int8 quality gate (data/processed/test or a folder)")
    parser.add_argument("--max-delta-db", type=float, default=0.05, metavar="DB", help="largest |mean ΔPSNR-Y| int8 may lose against fp32 (default 0.05)")


def run(args: argparse.Namespace) -> int:
    from dpsrgan.errors import DpsrganError
    from dpsrgan.export.build import Int8Options, export

    options = None
    if args.int8:
        if args.calibration is None or args.heldout is None:
            raise DpsrganError("--int8 needs --calibration DIR (training images) and --heldout DIR (held-out photographs)")
        options = Int8Options(args.calibration, args.heldout, args.max_delta_db)
    elif args.calibration is not None or args.heldout is not None:
        raise DpsrganError("--calibration and --heldout only apply with --int8")
    if args.model.startswith("models:/"):
        from dpsrgan.lifecycle.client import apply_client_limits

        apply_client_limits()
    with _sigterm_as_interrupt():
        result = export(args.model, args.fmt, args.output, int8_options=options)
    verified = f"verified: max |diff| vs torch {result.max_abs_diff:.2g} <= {result.tolerance:g}"
    quality = f"; {result.quality.line()}" if result.quality else ""
    print(f"dpsrgan export: wrote {', '.join(map(str, result.files))} ({verified}{quality})")
    return 0


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does: the export's ``finally`` then removes
    its staging folder (the default action would end the process with the folder left behind)."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
