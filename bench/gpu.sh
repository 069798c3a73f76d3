#!/usr/bin/env bash
# The GPU check: CUDA tests, HEPHAESTUS at PEMS04 size (paper Table 4), LightST's speed-up at
# N = 883, and a sweep sharing one GPU between 4 trials; prints one table. Exits 0 without a GPU.
#   bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python bench/gpu.py "$@"
