"""Depth: accuracy against the number of decoder layers kept, at a fixed token budget.

Run:  python phase_depth.py --model qwen-math-1.5b --dataset math500 --budgets 1024
Demo: python phase_depth.py --model smollm2-135m --dataset arith --num-samples 40 \
          --layers 12 18 24 27 30 --budgets 256

For each depth L the model keeps its first L decoder layers, then the final norm and the LM
head, and runs phase 1 at the given budget(s) (greedy, one rollout per problem; several budgets
are read off the same rollout). Each depth resumes and is reused like a phase: its files carry
the depth in the model tag (results/depth_{model}-L{n}_budget{B}.json, depth_run_{model}-L{n}.json;
the whole model keeps its plain tag), and phase-1 rollouts of the same depth are reused. Writes
results/depth_summary_{model}.json with accuracy per depth (Wilson CI) and the critical depth:
the fewest layers whose accuracy lies within the best depth's CI (the saturation-budget rule).
Layers default to 40/60/80/90/100 % of the model's depth.
"""

from __future__ import annotations

import sys

from config import StudyConfig
from study.cli import config_parser, run_command
from study.run import depth_sweep
from study.schema_analyses import DepthSummary

# The model (every field but num_layers: the sweep sets it), data, decoding, the sweep, paths.
SHOWN = ("seed", "model.name", "model.precision", "model.device", "model.batch_size",
         "model.engine", "hf", "data", "generation", "depth", "paths.results_dir",
         "paths.data_dir", "run")
PARSER = config_parser("phase_depth.py", __doc__, SHOWN, own="depth")


def run(cfg: StudyConfig) -> DepthSummary:
    """Run (or reuse) every depth, write the sweep summary, print its table."""
    summary = depth_sweep.sweep(cfg)
    print(depth_sweep.format_table(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
