#!/usr/bin/env bash
# The main job: install from scratch, then run the whole DVC pipeline (download -> degrade ->
# pretrain -> tune -> train_gan -> evaluate -> register) offline on the quickstart params
# (scikit-image's bundled photographs, local Ray, MLflow's local sqlite store).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled} RAY_USAGE_STATS_ENABLED=0
start=$(date +%s)
dvc repro "$@"
elapsed=$(( $(date +%s) - start ))
python - "$elapsed" <<'PY'
import json, sys
from pathlib import Path
print(f"\nPipeline finished in {int(sys.argv[1]) // 60} min {int(sys.argv[1]) % 60} s.\n")
table = Path("outputs/evaluate/table.md")
if table.exists():
    print(table.read_text())
version = Path("outputs/register/version.json")
registered = json.loads(version.read_text()) if version.exists() else {}
print("Metrics table:  outputs/evaluate/table.md   (dvc metrics show: metrics/evaluate.json)")
print("Sample grid:    outputs/evaluate/samples.png (LR | bicubic | pretrained | DPSRGAN | HR)")
print("Training plots: dvc plots show   (then open dvc_plots/index.html)")
print("MLflow UI:      mlflow ui --backend-store-uri sqlite:///mlflow.db   -> http://127.0.0.1:5000")
if registered:
    print(f"Registered:     {registered.get('name')} v{registered.get('version')} as 'challenger'; "
          "promote it with: dpsrgan promote")
PY
