"""The generator → an ONNX file with dynamic batch, height and width and its metadata.

Exporter: torch's TorchScript-based exporter (``dynamo=False``). The dynamo exporter, torch
2.13's default, fails on the bicubic skip: its symmetric padding indexes with ``arange(H) %
(2·H)`` and onnxscript 0.7 cannot translate a remainder by a symbolic size. The TorchScript
exporter records those shape computations as graph ops (Shape/Range/Mod), so every H, W ≥ 1
works, 1 px included. Opset 17: BatchNorm is folded into the convs by constant folding, and
every op here (Conv with dilation, PRelu, DepthToSpace for PixelShuffle, Gather, Range, Mod) is
in it; ONNX Runtime 1.17+ and OpenVINO 2023+ read it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from dpsrgan.export.metadata import prefixed

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "lr", "sr"
_EXAMPLE_SIZE = 16


def export_onnx(generator: nn.Module, path: Path, metadata: Mapping[str, str]) -> Path:
    """Write ``generator`` (eval mode, CPU, float32) to ``path`` with ``metadata`` as
    ``dpsrgan.*`` metadata_props. The caller owns atomicity (write to a temp path)."""
    import onnx
    import torch

    generator = generator.eval().float().cpu()
    example = torch.rand(1, generator.config["in_channels"], _EXAMPLE_SIZE, _EXAMPLE_SIZE)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice (see the docstring)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            generator,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "batch", 2: "sr_height", 3: "sr_width"}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, prefixed(metadata))
    model.doc_string = "DPSRGAN x{} generator: float32 N×3×H×W in [0, 1] → N×3×sH×sW (unclamped)".format(
        generator.config["scale"]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
