"""Master runner: the whole study, or any phase of it, with one config.

Run:   python run_all.py --all --model qwen-1.5b              # the paper-scale study (GPU)
Demo:  python run_all.py --demo                               # offline, SmolLM2-135M, ~5 min CPU
Parts: python run_all.py --phase1 --model qwen-1.5b --num-samples 200
More:  python run_all.py --all --depth --lens --phase4 --model qwen-1.5b   # beyond the spec
YAML:  python run_all.py --all --config examples/demo.yaml    # flags still win over the file
Grid:  python run_all.py --models smollm2-135m smollm2-135m@bf16 --datasets arith gsm8k

Every phase runs in this process on the same resolved config (defaults < --config YAML <
flags). Phase 2 needs hand labels: `--all` runs the generating phases (1, 1b, 3) and prepares
the TSVs, then stops (exit code 3) while labels are missing, saying how many rows remain and the
command that continues (the same one: finished phases are reused). `--auto-annotate` fills
labels from the heuristic suggestions instead (demos and CI; rows marked annotator=auto).
Exit codes: 0 done, 2 user error (bad flag or file), 3 waiting for annotations.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable

from config import DEMO_CONFIG, StudyConfig, load_yaml
from study import grid, shards, store
from study.annotation.queue import GATE_EXIT_CODE, annotation_gate
from study.cli import USER_ERRORS, config_from_args, config_parser, fail
from study.run.timings import StepTiming, step_timing, timings_table, write_timings

# --all order: every compute-heavy phase first, so a GPU run finishes in one sitting and only the
# cheap analysis waits for hand labels (the gate sits right before phase2_analyze).
PHASES = ("phase1", "phase1b", "phase2_prepare", "phase3", "phase2_analyze", "visualize")
# Steps beyond the spec's study, run only when asked for (also with --all); in this order, after
# phase 3 (their inputs) and before the figures that draw them.
EXTRA_STEPS = ("depth", "lens", "phase4")
ORDER = ("phase1", "phase1b", "phase2_prepare", "phase3", *EXTRA_STEPS, "phase2_analyze",
         "visualize")
# The scripts each step runs (phase 3 is the cliff grid, then the solution structure).
SCRIPTS: dict[str, tuple[str, ...]] = {
    "phase1": ("phase1_main",), "phase1b": ("phase1b_stochastic",),
    "phase2_prepare": ("phase2_prepare",), "phase3": ("phase3_cliff", "phase3_structure"),
    "depth": ("phase_depth",), "lens": ("phase_lens",), "phase4": ("phase4_compute",),
    "phase2_analyze": ("phase2_analyze",), "visualize": ("visualize",),
}
# The scripts that generate (and so shard, under --shard or accelerate launch); the others read
# merged results and run once, after the merge.
GENERATING_SCRIPTS = ("phase1_main", "phase1b_stochastic", "phase3_cliff")
STEP_HELP = {"phase1": "saturation curve", "phase1b": "stochastic verification",
             "phase2_prepare": "write annotation TSVs", "phase2_analyze": "analyse labelled TSVs",
             "phase3": "cliff + solution structure", "visualize": "figures + report",
             "depth": "accuracy against layers kept (phase_depth.py; not in --all)",
             "lens": "logit lens on phase-1 rollouts (phase_lens.py; not in --all)",
             "phase4": "compute-matched comparison (phase4_compute.py; not in --all)"}
ALL_SECTIONS = ("seed", "model", "data", "generation", "forcing", "power", "phase1", "phase1b",
                "phase3", "depth", "lens", "annotation", "statistics", "figures", "paths", "run",
                "grid", "thinking")


def build_parser():
    parser = config_parser("run_all.py", __doc__, ALL_SECTIONS,
                           epilog="Every phase script also runs on its own; see README.md.")
    steps = parser.add_argument_group("what to run")
    steps.add_argument("--all", action="store_true", default=False, help="every phase in order")
    steps.add_argument("--demo", action="store_true", default=False,
                       help=f"the offline demo: --all with --config {DEMO_CONFIG.name} "
                       "(examples/); another --config or flags still apply on top")
    for step in ORDER:
        steps.add_argument(f"--{step.replace('_', '-')}", dest=step, action="store_true",
                           default=False, help=STEP_HELP[step])
    return parser


def run_script(module_name: str, cfg: StudyConfig) -> StepTiming:
    """One phase script's ``run(cfg)`` in this process, with a header and its wall time."""
    print(f"\n=== {module_name}", flush=True)
    started_at, started = time.time(), time.perf_counter()
    result = importlib.import_module(module_name).run(cfg)
    wall = time.perf_counter() - started
    print(f"=== {module_name}: done in {wall:.1f} s", flush=True)
    return step_timing(module_name, wall, started_at, result)


def run_steps(cfg: StudyConfig, steps: list[str], gated: bool,
              run: Callable[[str, StudyConfig], StepTiming | None] = run_script,
              timings: list[StepTiming] | None = None) -> int:
    """Run the steps in order; with ``gated`` the annotation gate stands before phase2_analyze.

    Returns 0, or GATE_EXIT_CODE when labels are missing (the figures of finished phases are
    drawn first, so a waiting study still shows what it has).
    """
    whole_study = shards.runs_whole_study(cfg)
    for step in steps:
        # A shard (array job or accelerate rank > 0) runs only the generating scripts.
        scripts = tuple(m for m in SCRIPTS[step] if whole_study or m in GENERATING_SCRIPTS)
        if not scripts:
            continue
        if step == "phase2_analyze" and gated:
            gate = annotation_gate(cfg, "python " + " ".join(sys.argv))
            if gate == GATE_EXIT_CODE:
                _timed(run("visualize", cfg), timings)
            if gate:
                return gate
        # In a gated run the gate does the auto-annotation (and says how many rows it filled).
        step_cfg = (cfg.replace({"annotation.auto_annotate": False})
                    if gated and step == "phase2_prepare" else cfg)
        for module_name in scripts:
            _timed(run(module_name, step_cfg), timings)
    return 0


def _timed(row: StepTiming | None, timings: list[StepTiming] | None) -> None:
    if row is not None and timings is not None:
        timings.append(row)


def report_timings(cfg: StudyConfig, timings: list[StepTiming], wall_s: float) -> None:
    """Print where the time went and save it as timings.json beside the results."""
    if not timings:
        return
    path = store.timings_path(cfg.paths.results_dir)
    write_timings(path, timings, cfg.to_dict(), cfg.seed, wall_s, cfg.model.device)
    print(f"\nwhere the time went (also in {path}):\n{timings_table(timings)}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    whole = args.all or args.demo
    steps = [s for s in ORDER if (whole and s in PHASES) or getattr(args, s)]
    if not steps and not hasattr(args, "grid.datasets"):
        parser.print_help()
        return 2
    started = time.perf_counter()
    try:
        cfg = config_from_args(args, load_yaml(DEMO_CONFIG) if args.demo else None)
        if cfg.grid.datasets:  # every model x dataset in its own folder (study/grid.py)
            code = grid.run_grid(cfg, steps or ["phase1"])
            importlib.import_module("compare").run(cfg.replace({"grid.datasets": None}))
            return code
        timings: list[StepTiming] = []
        code = run_steps(cfg, steps, gated=whole, timings=timings)
        if shards.runs_whole_study(cfg):  # a shard's steps are only part of the run
            report_timings(cfg, timings, time.perf_counter() - started)
    except USER_ERRORS as exc:
        return fail(str(exc))
    if code == 0:
        print(f"\nall requested phases done in {time.perf_counter() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
