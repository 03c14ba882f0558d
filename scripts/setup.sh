#!/usr/bin/env bash
# Create .venv and install bench-core with the CPU build of torch. Usage: scripts/setup.sh [EXTRAS]
# EXTRAS is a pip extras list such as "all,test" (default: "all").
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel
# torch first: 2.13.0 is the CPU build on this machine's disk. The project itself accepts torch>=2.4,
# so an existing torch (e.g. a CUDA build on a GPU machine) is kept.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
python -m pip install -q -e ".[${extras}]"
# asv's site pins jQuery, flot, bootstrap...: keep those exact files for offline pages (npm registry, once)
python scripts/asv_offline.py fetch || echo "setup: warning: asv's JavaScript not fetched; the asv site needs network" >&2
