#!/usr/bin/env bash
# Install everything from scratch and run the whole test suite (slow tests included).
# System services the tests need (PostgreSQL binaries) are installed here; the tests themselves
# start and stop their own Ray, MLflow server, moto S3 server and PostgreSQL on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-deps.sh
# shellcheck disable=SC1091
. .venv/bin/activate
exec python -m pytest -p no:cacheprovider "$@"
