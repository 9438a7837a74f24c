#!/usr/bin/env bash
# Quick start 1/2: install, then run the whole study offline on SmolLM2-135M + the arith set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
${PYTHON:-python} run_all.py --demo "$@"
