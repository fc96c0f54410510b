"""A plain ``pip install .`` (no ``onnx`` extra) runs the register stage to the end: one log line
says the ONNX artefact was skipped and how to get it, and the model version is registered with
its weights, on a real local MLflow store (sqlite in a temp folder).

The stage runs in a subprocess where ``import onnx`` and ``import onnxruntime`` fail
(``sys.modules[name] = None``: Python's own way to make an import raise ``ImportError``), as
they do without the extra; this venv has the extra, and the with-ONNX path is tested in
test_export.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import CHALLENGER, download_registered_artifact
from tests._tiny import save_tiny_generator

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_ONNX = (
    "import sys\n"
    "sys.modules['onnx'] = sys.modules['onnxruntime'] = None\n"
    "from pipelines.register import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.slow
def test_register_without_the_onnx_extra_skips_the_artefact_in_one_line(tmp_path, monkeypatch):
    gan = save_tiny_generator(tmp_path / "generator.pt", seed=3)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"gan": {"psnr_y": 30.5, "ssim_y": 0.86}, "bicubic": {"psnr_y": 29.6}}))
    out = tmp_path / "version.json"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT)}
    argv = ["--params", str(ROOT / "params.yaml"), "--gan", str(gan), "--metrics", str(metrics), "--out", str(out)]

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ONNX, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )

    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "Traceback" not in log and "ModuleNotFoundError" not in log, log
    skipped = [line for line in log.splitlines() if "ONNX artefact" in line]
    assert len(skipped) == 1, log
    assert "skipped" in skipped[0] and "pip install '.[onnx]'" in skipped[0]

    version = json.loads(out.read_text())
    assert version["alias_uri"].endswith(f"@{CHALLENGER}")
    import mlflow.tracking._tracking_service.utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_uri)  # as set_tracking_uri, undone after
    monkeypatch.chdir(tmp_path)
    weights = download_registered_artifact(version["alias_uri"], "weights", tmp_path / "fetched")
    assert weights.read_bytes() == gan.read_bytes()
    with pytest.raises(DpsrganError, match=r"pip install '\.\[onnx\]'"):
        download_registered_artifact(version["alias_uri"], "onnx", tmp_path / "fetched")
