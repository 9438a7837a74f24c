"""The logit lens: how close each layer's next-token distribution is to the final one.

Run:  python phase_lens.py --model qwen-1.5b --dataset gsm8k --samples 32
Demo: python phase_lens.py --model smollm2-135m --dataset arith --num-samples 40 \
          --budgets 16 32 64 128 256 512 --samples 16

Needs phase 1's rollouts made with the same flags (model, dataset, seed, decoding, --budgets).
A seeded sample of them is read by the model once: each layer's hidden state goes through the
final norm and the LM head, and KL(final || layer) is averaged over the generated tokens within
each budget (--lens-budgets, default: the phase-1 budgets). Writes
results/lens_summary_{model}.json and prints a table (one row per layer); recomputed on every
run (one forward pass per sampled rollout).
"""

from __future__ import annotations

import sys

from config import StudyConfig
from study.cli import config_parser, run_command
from study.schema_analyses import LensSummary
from study.strategies import lens

# Phase 1's flags (so its command line works here unchanged), the lens, paths.
SHOWN = ("seed", "model", "data", "generation", "phase1.budgets", "lens", "paths.results_dir",
         "paths.data_dir", "run.quiet")
PARSER = config_parser("phase_lens.py", __doc__, SHOWN, own="lens")


def run(cfg: StudyConfig) -> LensSummary:
    """Compute the lens on sampled phase-1 rollouts, write its summary, print its table."""
    summary = lens.compute(cfg)
    print(lens.format_table(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
