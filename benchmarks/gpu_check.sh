#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): bash benchmarks/gpu_check.sh [--out DIR] on a CUDA machine with
# dss and a CUDA torch installed (make install TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126, the
# index of your driver's CUDA version); bash benchmarks/gpu_check.sh --dry-run checks it on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_check.py "$@"
