#!/usr/bin/env bash
# Create ./.venv and install dpsrgan (editable, with the dev, onnx and openvino extras) into it.
# The CPU build of torch is installed first so that pip never resolves a multi-GB CUDA build;
# GPU users override it, e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip_install() {  # quiet, minus the noise of unreachable local find-links folders
  python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
pip_install --upgrade pip
python -c "import torch" 2>/dev/null || pip_install ${TORCH_SPEC:-torch==2.13.0}
pip_install -e ".[dev,onnx,openvino]"  # the export tests run ONNX Runtime, OpenVINO and NNCF
