"""Console output shared by several phases (on ``study.tables``): tables, the phase
footer."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from study.schema import ThinkingBlock
from study.tables import MISSING, by_budget, ci_text, pct, text_table


def accuracy_table(budgets: dict[str, dict], thinking: ThinkingBlock | None = None) -> str:
    """The spec's Budget / Accuracy / Avg Tokens table, plus the 95 % CI and the cut rate
    (phase 1 prints it for its budgets, phase 3 for its fine grid); a thinking model's table
    adds the share of rollouts that closed their thinking (``thinking``: the summary's block)."""
    columns = [("Budget", "<8"), ("Accuracy", ">10"), ("95% CI", ">18"), ("Avg Tokens", ">12"),
               ("Cut", ">8")]
    rows = [[r["budget"], pct(r["accuracy"]), ci_text(r["ci_low"], r["ci_high"]),
             f"{r['avg_tokens']:.1f}", pct(r["hit_budget_rate"], 0)] for r in by_budget(budgets)]
    if thinking:
        columns.append(("Closed", ">8"))
        for row, r in zip(rows, by_budget(budgets)):
            row.append(closed_share(thinking, r["budget"]))
    return text_table(columns, rows)


def closed_share(thinking: ThinkingBlock, budget: int) -> str:
    """The share of a budget's rollouts that closed their thinking, as the tables print it."""
    row = thinking["budgets"].get(str(budget))
    return pct(row["closed_thinking_rate"], 0) if row else MISSING


def thinking_lines(summary: dict) -> list[str]:
    """What a thinking model's phase adds under its table: the markers and how answers were
    read, and the model card's sampling when this phase decoded otherwise ([] for others)."""
    block = summary.get("thinking")
    if not block:
        return []
    start, end = (block["markers"] + ["?", "?"])[:2]
    read = ("the whole text" if block["graded"] == "whole-text"
            else f"what follows {end} (--grade-whole-text: the whole text)")
    lines = [f"Closed = share of rollouts whose thinking ({start} ... {end}) ended within the "
             f"budget; truncation grades {read}"]
    card, run = block.get("card_sampling"), summary["provenance"].get("rollout_config", {})
    temperature, top_p = run.get("temperature"), run.get("top_p")
    if card and (temperature, top_p) != (card["temperature"], card["top_p"]):
        top_k = f", top-k {card['top_k']}" if card.get("top_k") else ""
        decoded = "greedily" if not temperature else f"at temperature {temperature}, top-p {top_p}"
        lines.append(f"note: the model card ({card['card']}) recommends temperature "
                     f"{card['temperature']}, top-p {card['top_p']}{top_k}; this phase decoded "
                     f"{decoded} (set --temperature/--top-p, or phase 1b's own; top-k is not "
                     "applied by this tool)")
    return lines


class FinishedPhase(Protocol):
    """What a phase run hands back (``study.run.phase_run.PhaseOutput``)."""

    summary: dict
    reused: bool


def show_phase(label: str, output: FinishedPhase, results_dir: Path, table: str) -> dict:
    """Print what a generating phase prints and return its summary."""
    print(phase_output(label, output.summary, output.reused, results_dir, table))
    return output.summary


def phase_output(label: str, summary: dict, reused: bool, results_dir: Path, table: str) -> str:
    """What every generating phase prints: a reuse note, its table, and the generation speed."""
    lines = []
    if reused:
        lines.append(f"{label}: reusing finished results in {results_dir} "
                     "(pass --overwrite to redo)")
    lines.append(table)
    lines += thinking_lines(summary)
    prov = summary["provenance"]
    if fixed := prov.get("dataset", {}).get("gold_fixed"):
        shown = ", ".join(f"{f['problem_id']}: {f['stated']} -> {f['verified']}" for f in fixed[:3])
        more = f" and {len(fixed) - 3} more" if len(fixed) > 3 else ""
        lines.append(f"gold answers fixed: {len(fixed)} of {prov['dataset']['gold_checked']} "
                     f"disagreed with their question's expression ({shown}{more}); "
                     "listed under provenance.dataset.gold_fixed")
    lines += power_lines(prov)
    if prov.get("tokens_per_s"):
        when = "when first run: " if reused else ""
        lines.append(f"{when}generated {prov['generated_tokens']} tokens in "
                     f"{prov['generation_s']:.1f} s ({prov['tokens_per_s']:.0f} tok/s) on "
                     f"{prov['device']}")
    return "\n".join(lines)


def power_lines(provenance: dict) -> list[str]:
    """Acceptance rate and cost per budget of a power-sampling run ([] for other runs)."""
    block = provenance.get("power")
    if not block:
        return []
    head = (f"power sampling (alpha={block['alpha']}, {block['blocks']} blocks, "
            f"{block['mcmc_steps']} MH steps per block):")
    lines = [head]
    for budget, row in block["budgets"].items():
        rate = row["acceptance_rate"]
        lines.append(f"  budget {budget}: {row['chains']} chains, acceptance "
                     f"{'n/a' if rate is None else f'{100 * rate:.1f}%'} of {row['proposals']} "
                     f"proposals, {row['tokens_proposed'] / max(row['chains'], 1):.0f} tokens "
                     "proposed per chain")
    return lines
