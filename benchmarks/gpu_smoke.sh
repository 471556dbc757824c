#!/usr/bin/env bash
# GPU smoke run: the embedded default's model build, calibration, GRPO/LaSeR training and
# generation on one CUDA GPU with no network. Python wheels the GPU image lacks are brought in
# .whl/ (see the comment at the end); results go to ${OUT:-results/gpu_smoke}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_smoke}
mkdir -p "$OUT"
# shellcheck source=benchmarks/gpu_node.sh
source benchmarks/gpu_node.sh
python3 benchmarks/gpu_smoke.py "$OUT" "$@" 2>&1 | tee "$OUT/gpu_smoke.log"
# Wheels (Python 3.12, manylinux x86_64) for a bare GPU image with torch + transformers:
#   trl==1.16.0 math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2
#   datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 jsonschema==4.26.0
#   jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
#   (the image's pyarrow 25 is used: carrying pyarrow 26 broke datasets' fingerprinting on Python 3.12)
#   (the image's transformers 5.17 is used; carry transformers==5.19.0 where the tree allows)
