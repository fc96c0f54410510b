"""An exported .onnx → OpenVINO IR (``.xml`` graph + ``.bin`` weights) with the metadata in
``rt_info``. Weights stay fp32 (``compress_to_fp16=False``): fp16 weights would shift outputs by
~1e-3 and fail verification; the CPU plugin chooses the compute precision at load time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_onnx(onnx_path: Path) -> Any:
    import openvino as ov

    return ov.convert_model(str(onnx_path))


def save_ir(model: Any, xml_path: Path, metadata: Mapping[str, str]) -> Path:
    """Write ``model`` as ``xml_path`` + its ``.bin`` with ``metadata`` under rt_info ``dpsrgan``."""
    import openvino as ov

    for key, value in metadata.items():
        model.set_rt_info(value, ["dpsrgan", key])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path
