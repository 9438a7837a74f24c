#!/usr/bin/env bash
# Quick start 2/2: install, lint, then run every test: the real-model end-to-end ones and the
# vLLM engine's (on vLLM's CPU build, installed here: about 2 min the first time) included.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
bash scripts/setup.sh
bash scripts/setup_vllm.sh
# The demo model is converted once here, before two test workers could both try it.
"$PY" -c "from pathlib import Path; from engine.loading import prepare_smollm2; prepare_smollm2(Path('data'))"
"$PY" -m ruff check .
# Two workers (pyproject addopts); the ten slowest tests are listed at the end.
"$PY" -m pytest -q -m "slow or not slow" --durations=10 "$@"
