#!/usr/bin/env bash
# Fetch into .whl/ the wheels a bare GPU image (torch, transformers and accelerate preinstalled;
# Python 3.12, x86_64 Linux) lacks for benchmarks/gpu_check.sh and benchmarks/gpu_smoke.sh. Run it
# where PyPI is reachable; .whl/ (about 3 MB, git-ignored) then travels with the project folder and
# both scripts install from it with no index. WHEEL_PYTHON=3.11 for another image's Python.
# The image's pyarrow is used (pyarrow 26 broke datasets' fingerprinting on Python 3.12), and its
# transformers (5.17 on the image this was written for; the project pins 5.19).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${WHEEL_PYTHON:-3.12}
WHEELS=(
  trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2
)
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest .whl --python-version "$PY" \
  --implementation cp --abi "cp${PY/./}" --abi none --abi abi3 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any "${WHEELS[@]}"
ls -l .whl
