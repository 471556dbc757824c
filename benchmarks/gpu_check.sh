#!/usr/bin/env bash
# GPU check: the project's trainer at OctoThinker-3B's shape and the paper's lengths (prompt 2048 +
# completion 8192 tokens) on one CUDA GPU with no network: peak memory, step time, tokens/s and MFU
# per micro-batch size with and without gradient checkpointing, LaSeR / GRPO step time, the z_c
# routes in bf16 and the share of weights one AdamW step moves (benchmarks/gpu_check.py).
# Wheels the GPU image lacks come from .whl/ (bash benchmarks/gpu_wheels.sh fetches them where
# PyPI is reachable); results go to ${OUT:-results/gpu_check}. Arguments go to gpu_check.py.
# Sized for about 5 minutes on an H200 (an estimate until it has run); rows not started within
# --budget-s (360 s) are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_check}
mkdir -p "$OUT"
# shellcheck source=benchmarks/gpu_node.sh
source benchmarks/gpu_node.sh
python3 benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
