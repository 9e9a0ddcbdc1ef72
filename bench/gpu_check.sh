#!/usr/bin/env bash
# On a machine with a CUDA GPU: the transformers text path (one stream, 8 at once, the
# same greedy tokens alone and batched), transformers' own generate_batch for comparison,
# and the image engine. Under 5 minutes. Prints figures and ends with one JSON line.
#
#   bash bench/gpu_check.sh            # uses python3, or $PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 ATELIER_TEXT_BACKEND=transformers PYTHONUNBUFFERED=1
export ATELIER_VAR_DIR="${ATELIER_VAR_DIR:-$(mktemp -d)}"
exec timeout 300 "${PYTHON:-python3}" bench/gpu_check.py "$@"
