#!/usr/bin/env bash
# Quick start 1/2: install, then run the whole study offline on SmolLM2-135M + the arith set.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
${PYTHON:-python} run_all.py --demo "$@"
# The whole command's wall time (installs included), to compare with the README's.
echo "scripts/demo.sh: $((SECONDS - started)) s wall ($(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s), installs included"
