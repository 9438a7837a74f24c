#!/usr/bin/env bash
# Quick start 2/2: install, lint, then run every test (the real-model end-to-end ones included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
${PYTHON:-python} -m ruff check .
${PYTHON:-python} -m pytest -q -m "slow or not slow" --durations=10 "$@"
