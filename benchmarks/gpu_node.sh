# Sourced by the GPU scripts (gpu_check.sh, gpu_smoke.sh) on a bare GPU node with no network:
# the wheels the image lacks from .whl/ (bash benchmarks/gpu_wheels.sh fetches them where PyPI is
# reachable) into /tmp/site, offline settings, and the device and library versions in the log.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export WANDB_MODE=disabled HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TRL_EXPERIMENTAL_SILENCE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
