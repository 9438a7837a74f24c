"""Phase 3, step 2: solution structure — what changes at the cliff?

Run:  python phase3_structure.py --model qwen-1.5b        (after phase3_cliff.py)

Reads the phase-3 cliff records of a model (no generation; only the tokenizer is loaded, to count
model tokens). Every solution is split into steps and each step is labelled setup / computation /
verification by the documented rules in structure.py; explicit arithmetic steps ``a op b = c`` are
found and checked with the exact, eval-free evaluator in arith_check.py.

Per budget it reports: mean model tokens per phase, the share of solutions with a verification
phase, mean reasoning steps and arithmetic operations, the arithmetic-step error rate (wrong
steps / steps whose two sides could be evaluated), and accuracy with vs without verification.

Then it compares solutions below, inside and above the cliff window (the narrowest window holding
half of the total gain, else the steepest step). Solutions are taken at the largest cliff budget
and grouped by their length L in tokens: *below* finished within the window's start (L <= lo),
*inside* finished within the window (lo < L <= hi) — exactly the solutions whose text changes
between the two budgets — and *above* need more than hi tokens or were cut. For each group it
also gives accuracy at lo and at hi and its share of the window's gain.
Writes results/phase3_structure_analysis_{model}.json.
"""

from __future__ import annotations

import sys
import time

import utils
from config import StudyConfig
from study import store
from study.analysis.structure_analysis import analyse
from study.cli import config_parser, run_command
from study.schema_analyses import StructureSummary
from study.tables import MISSING, finite, num, pct

# Flags: the model whose cliff records are read, the folders, and the phase-1 extension.
# model.num_layers, forcing.budget_mode and generation.decoding pick the run's files (model_tag)
SHOWN = ("model.name", "model.num_layers",
         "forcing.budget_mode", "generation.decoding", "paths.results_dir",
         "paths.data_dir", "phase3.include_phase1")
PARSER = config_parser("phase3_structure.py", __doc__, SHOWN, own="phase3")


# ---------------------------------------------------------------------------- printing


def _pct(value: float | None, width: int) -> str:
    return f"{pct(value, 0):>{width}}"


def _num(value: float | None, width: int, digits: int = 1) -> str:
    return f"{num(value, digits):>{width}}"


def _acc_n(block: dict) -> str:
    if block["accuracy"] is None:
        return f"{MISSING}  (n=0)"
    return f"{100 * block['accuracy']:.0f}% (n={block['n']})"


def _arith(row: dict) -> str:
    rate = row["arith_error_rate"]
    if rate is None:
        return MISSING
    return f"{100 * rate:.1f}% ({row['arith_errors']}/{row['arith_steps_checked']})"


def _metric_cells(row: dict) -> str:
    tokens = row["tokens_per_phase"]
    return (f"{_pct(row['accuracy'], 6)}{_num(tokens['setup'], 7)}{_num(tokens['computation'], 7)}"
            f"{_num(tokens['verification'], 7)}{_pct(row['verification_share'], 7)}"
            f"{_num(row['avg_steps'], 7)}{_num(row['avg_operations'], 6)}  {_arith(row):<16}")


_METRIC_HEAD = (f"{'Acc':>6}{'Setup':>7}{'Comp':>7}{'Verif':>7}{'Verif%':>7}{'Steps':>7}"
                f"{'Ops':>6}  {'Arith err':<16}")


def format_budget_table(result: dict) -> str:
    lines = [f"Solution structure per budget ({result['token_counter']}):",
             f"{'Budget':<8}{_METRIC_HEAD}{'Acc w/ verif':<15}{'Acc w/o verif':<15}"]
    lines.append("-" * len(lines[-1].rstrip()))
    for row in result["budgets"].values():
        mark = "*" if row["source"] != "phase3" else " "
        lines.append(f"{row['budget']:<7}{mark}{_metric_cells(row)}"
                     f"{_acc_n(row['with_verification']):<15}"
                     f"{_acc_n(row['without_verification']):<15}")
    lines.append("Setup/Comp/Verif = mean tokens per phase; Verif% = solutions with a "
                 "verification phase; Arith err = wrong explicit steps / checked steps"
                 + ("; * = phase-1 budget" if any(r["source"] != "phase3"
                                                   for r in result["budgets"].values()) else ""))
    return "\n".join(line.rstrip() for line in lines)


def format_window_table(result: dict) -> str:
    window = result["window"]
    if window is None:
        return "What changes at the cliff: no window with a positive gain in the cliff grid."
    lo, hi = window["from"], window["to"]
    lines = [f"What changes at the cliff: window {lo} → {hi} ({window['chosen_by']}); solutions "
             f"at budget {window['measured_at_budget']} grouped by length:",
             f"{'Group':<20}{'n':>4}{f'@{lo}':>7}{f'@{hi}':>7}{'Gain':>6} {_METRIC_HEAD}"]
    lines.append("-" * len(lines[-1].rstrip()))
    for name, row in result["groups"].items():
        label = f"{name} ({row['length']})"
        lines.append(f"{label:<20}{row['n']:>4}{_pct(row['accuracy_at_window_start'], 7)}"
                     f"{_pct(row['accuracy_at_window_end'], 7)}{_pct(row['gain_share'], 6)} "
                     f"{_metric_cells(row)}")
    lines.append(f"@{lo}/@{hi} = accuracy of the group at the window's budgets; Gain = the "
                 "group's share of the window's accuracy gain; other columns at budget "
                 f"{window['measured_at_budget']}")
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- running


def run(cfg: StudyConfig) -> StructureSummary:
    """Analyse the cliff records of ``cfg.model``, write the result, print its tables."""
    started = time.perf_counter()
    tokenizers = []  # loaded on first use, so a missing phase 3 is reported before any loading

    def count_tokens(text: str) -> int:
        if not tokenizers:
            tokenizers.append(utils.load_tokenizer(cfg.model.name, cfg.paths.data_dir))
        return len(tokenizers[0].encode(text, add_special_tokens=False))

    result, paths, seed = analyse(cfg.run_flags, cfg.model_tag, cfg.paths.results_dir,
                                  count_tokens, confidence=cfg.statistics.confidence,
                                  include_phase1=cfg.phase3.include_phase1,
                                  counter_name=f"{cfg.model.name} tokenizer")
    result["provenance"] = store.provenance(
        cfg.to_dict(), seed=seed, wall_time_s=time.perf_counter() - started, record_files=paths,
        extra={"rules": "study/analysis/structure.py (step phases), "
                        "study/data/arith_check.py (explicit steps)"})
    path = store.phase3_structure_path(cfg.paths.results_dir, cfg.model_tag)
    store.write_json(path, finite(result))
    print(format_budget_table(result))
    if result["phase1_note"]:
        print(f"(phase-1 budgets not added: {result['phase1_note']})")
    print()
    print(format_window_table(result))
    print(f"\nwrote {path}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Flags (and --config) -> config -> run; 0 on success, 2 on a user error."""
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
