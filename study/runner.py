"""Where tasks meet the engine: rollouts for a phase, resumable, turned into graded records.

A phase asks for ``samples_per_problem`` rollouts of every problem up to its largest budget.
Finished rollouts are appended to ``results/rollouts/{phase}_{model}.jsonl`` after every batch,
so a killed run resumes where it stopped; the summary file is written last and marks the phase
finished. Records at each budget are derived from the same rollouts (one rollout, every budget).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from study import grading
from study import store
import utils
from config import RunConfig
from study.problems import DatasetError, Problem, load_problems

PROMPT_FORMAT_VERSION = 1  # bump when prompts change so old rollouts are not silently reused


# Errors a user can cause and fix (bad flag value, missing file, offline model, stale results):
# the phase scripts turn them into one line on stderr and exit code 2.
USER_ERRORS = (ValueError, DatasetError, utils.ModelLoadError, store.ResultsError)


@dataclass
class PhaseOutput:
    summary: dict
    reused: bool  # True when a finished phase with the same config was found and reused


def rollout_config(cfg: RunConfig, phase: str, problems: list[Problem]) -> dict:
    """Everything that determines the rollouts (and nothing that only affects speed)."""
    return {
        "phase": phase, "model": cfg.model, "dataset": cfg.dataset,
        "num_samples": cfg.num_samples, "seed": cfg.seed, "precision": cfg.precision,
        "max_new_tokens": cfg.max_budget, "temperature": cfg.sampling.temperature,
        "top_p": cfg.sampling.top_p, "samples_per_problem": cfg.samples_per_problem,
        "prompts": store.fingerprint([p.prompt for p in problems]),
        "prompt_format": PROMPT_FORMAT_VERSION,
    }


def check_finished(summary_path: Path, config: dict, budgets: tuple[int, ...],
                   overwrite: bool) -> dict | None:
    """The finished summary when it matches this config; error when it was made under another.

    Same rollouts but other budgets (up to the same largest one) returns None: the records are
    then re-derived from the stored rollouts without generating.
    """
    if overwrite or not summary_path.exists():
        return None
    summary = store.read_json(summary_path)
    old = summary.get("provenance", {})
    if old.get("fingerprint") == store.fingerprint(config):
        same_budgets = old.get("config", {}).get("budgets") == list(budgets)
        return summary if same_budgets else None
    raise store.ResultsError(
        f"{summary_path}: finished results from a different configuration "
        f"({store.describe_diff(old.get('rollout_config', {}), config)}); "
        "re-run with the original flags, or pass --overwrite to replace them"
    )


def collect_rollouts(cfg: RunConfig, phase: str, problems: list[Problem], overwrite: bool,
                     device: str | None, progress: bool,
                     seed_rollouts: dict[tuple[str, int], dict] | None = None) -> tuple[dict, dict]:
    """All (problem, sample) rollouts for this phase, generating only what is missing.

    Returns (rollouts keyed by (problem_id, sample), generation stats for the provenance block).
    ``seed_rollouts`` are rollouts taken from another phase (phase 3 reusing phase 1).
    """
    config = rollout_config(cfg, phase, problems)
    log = store.RolloutLog(store.rollouts_path(cfg.results_dir, phase, cfg.model_tag),
                           {"kind": "rollouts", "fingerprint": store.fingerprint(config),
                            "config": config})
    if overwrite:
        log.delete()
    done = log.load()
    wanted = [(p, s) for p in problems for s in range(cfg.samples_per_problem)]
    if seed_rollouts:
        for problem, sample in wanted:
            key = (problem.problem_id, sample)
            if key not in done and key in seed_rollouts:
                done[key] = seed_rollouts[key]
    pending = [(p, s) for p, s in wanted if (p.problem_id, s) not in done]
    stats = {"rollouts_total": len(wanted), "rollouts_generated": len(pending),
             "rollouts_resumed_or_reused": len(wanted) - len(pending), "generated_tokens": 0,
             "generation_s": 0.0, "tokens_per_s": None, "device": None,
             "batch_size": cfg.batch_size}
    if pending:
        lm = utils.load_model(cfg.model, cfg.precision, cfg.data_dir, device)
        stats["device"] = utils.device_description(lm)
        log.start()
        prompts = utils.chat_prompt_ids(lm.tokenizer, [p.prompt for p, _ in pending])
        size = cfg.batch_size or utils.auto_batch_size(lm, prompts, cfg.max_budget)
        stats["batch_size"] = size  # the size actually used (``auto`` resolved)
        seeds = [utils.row_seed(cfg.seed, p.problem_id, s) for p, s in pending]

        def persist(indices: list[int], rollouts: list[utils.Rollout]) -> None:
            rows = [_rollout_row(pending[i], r, len(prompts[i])) for i, r in zip(indices, rollouts)]
            log.append(rows)
            done.update({(row["problem_id"], row["sample"]): row for row in rows})

        started = time.perf_counter()
        rollouts = utils.generate_rollouts(lm, prompts, cfg.max_budget, cfg.sampling, seeds,
                                           size, on_batch=persist, progress=progress)
        stats["generation_s"] = round(time.perf_counter() - started, 3)
        stats["generated_tokens"] = sum(len(r.token_ids) for r in rollouts)
        stats["tokens_per_s"] = round(stats["generated_tokens"] / max(stats["generation_s"], 1e-9),
                                      1)
    return done, stats


def _rollout_row(item: tuple[Problem, int], rollout: utils.Rollout, prompt_len: int) -> dict:
    problem, sample = item
    return {"problem_id": problem.problem_id, "sample": sample,
            "token_ids": list(rollout.token_ids), "eos": rollout.eos, "prompt_len": prompt_len}


def records_at_budget(problems: list[Problem], rollouts: dict, budget: int, samples: int,
                      tokenizer) -> list[dict]:
    """Graded records at ``budget`` in problem order, derived from the stored rollouts."""
    records = []
    for problem in problems:
        for sample in range(samples):
            row = rollouts[(problem.problem_id, sample)]
            ids, hit_budget = utils.Rollout(tuple(row["token_ids"]), row["eos"]).at_budget(budget)
            text = utils.decode_text(tokenizer, ids)
            grade = grading.grade(text, problem.answer)
            records.append({
                "problem_id": problem.problem_id, "question": problem.question,
                "ground_truth": problem.answer, "generated": text,
                "predicted": grade.predicted, "predicted_strict": grade.predicted_strict,
                "correct": grade.correct, "correct_strict": grade.correct_strict,
                "tokens_used": len(ids), "budget": budget, "hit_budget": hit_budget,
                "sample": sample,
            })
    return records


def run_budget_phase(cfg: RunConfig, phase: str, record_path: Callable[[int], Path],
                     summary_path: Path, summarize: Callable[[dict[int, list[dict]]], dict], *,
                     overwrite: bool = False, device: str | None = None, progress: bool = True,
                     seed_rollouts: Callable[[list[Problem]], tuple[dict, str]] | None = None
                     ) -> PhaseOutput:
    """Run (or resume, or reuse) one budget phase and write its record files and summary."""
    started = time.perf_counter()
    problems = load_problems(cfg.dataset, cfg.num_samples, cfg.seed, cfg.data_dir)
    config = rollout_config(cfg, phase, problems)
    fingerprint = store.fingerprint(config)
    finished = check_finished(summary_path, config, cfg.budgets, overwrite)
    if finished is not None:
        return PhaseOutput(finished, reused=True)
    reused_from, seeds = None, None
    if seed_rollouts is not None:
        seeds, reused_from = seed_rollouts(problems)
    rollouts, gen_stats = collect_rollouts(cfg, phase, problems, overwrite, device, progress,
                                           seeds)
    tokenizer = utils.load_tokenizer(cfg.model, cfg.data_dir)
    by_budget = {b: records_at_budget(problems, rollouts, b, cfg.samples_per_problem, tokenizer)
                 for b in cfg.budgets}
    paths = [record_path(b) for b in cfg.budgets]
    for budget, path in zip(cfg.budgets, paths):
        store.write_json(path, by_budget[budget])
    summary = {"phase": phase, "model": cfg.model, "dataset": cfg.dataset, **summarize(by_budget)}
    summary["provenance"] = store.provenance(
        cfg.to_dict(), seed=cfg.seed, wall_time_s=time.perf_counter() - started,
        device=gen_stats.pop("device"), record_files=paths,
        extra={"fingerprint": fingerprint, "rollout_config": config, "reused_rollouts_from":
               reused_from, **gen_stats},
    )
    store.write_json(summary_path, summary)
    return PhaseOutput(summary, reused=False)


def budget_table_rows(records: list[dict]) -> dict:
    """Per-budget numbers shared by phases 1 and 3: accuracy (Wilson CI), tokens, cut rate."""
    from study import stats

    n = len(records)
    n_correct = sum(r["correct"] for r in records)
    low, high = stats.wilson_ci(n_correct, n)
    return {
        "n": n, "n_correct": n_correct, "accuracy": n_correct / n if n else 0.0,
        "ci_low": low, "ci_high": high,
        "accuracy_strict": sum(r["correct_strict"] for r in records) / n if n else 0.0,
        "avg_tokens": sum(r["tokens_used"] for r in records) / n if n else 0.0,
        "hit_budget_rate": sum(r["hit_budget"] for r in records) / n if n else 0.0,
    }


# ------------------------------------------------------------------ reuse across phases

# Keys of rollout_config that must agree for another phase's rollouts to be the very tokens this
# phase would generate. num_samples may differ (problem sets are prefixes); max_new_tokens and
# samples_per_problem only need to cover this phase's; prompts are checked problem by problem.
REUSE_KEYS = ("model", "dataset", "seed", "precision", "temperature", "top_p", "prompt_format")


@dataclass
class ReusedRollouts:
    rollouts: dict  # (problem_id, sample) -> rollout row, only those this phase needs
    source: str | None  # "<path> (k of n rollouts)" when anything was taken, else None
    reason: str | None  # why nothing (or not everything) was taken; None when all were


def reuse_mismatch(source: dict, target: dict) -> str | None:
    """Why rollouts made under ``source`` config cannot stand in for ``target``'s, or None."""
    for key in REUSE_KEYS:
        if source.get(key) != target.get(key):
            return f"{key} differs ({source.get(key)!r} vs {target.get(key)!r})"
    if (source.get("max_new_tokens") or 0) < target["max_new_tokens"]:
        return (f"they stop at {source.get('max_new_tokens')} tokens, "
                f"below the largest budget {target['max_new_tokens']}")
    if (source.get("samples_per_problem") or 0) < target["samples_per_problem"]:
        return (f"{source.get('samples_per_problem')} samples per problem, "
                f"need {target['samples_per_problem']}")
    return None


def _source_prompts(cfg: RunConfig, source: dict) -> dict[str, str] | None:
    """problem_id -> prompt of the source phase's problem set, if it reloads to the same prompts."""
    problems = load_problems(source["dataset"], source.get("num_samples"), source["seed"],
                             cfg.data_dir)
    if store.fingerprint([p.prompt for p in problems]) != source.get("prompts"):
        return None
    return {p.problem_id: p.prompt for p in problems}


def rollouts_from_phase(cfg: RunConfig, phase: str, source_phase: str,
                        problems: list[Problem]) -> ReusedRollouts:
    """The rollouts another phase already made that this phase needs, when they are identical
    to what this phase would generate (same model, data, seed, precision, sampling, prompts,
    and long enough). Rollouts longer than this phase's budget are fine: budgets are prefixes.
    """
    path = store.rollouts_path(cfg.results_dir, source_phase, cfg.model_tag)
    if not path.exists():
        return ReusedRollouts({}, None, f"no {source_phase} rollouts at {path}")
    header = _read_header(path)
    source = header.get("config", {})
    mismatch = reuse_mismatch(source, rollout_config(cfg, phase, problems))
    if mismatch is None and (prompts := _source_prompts(cfg, source)) is None:
        mismatch = "its problem set no longer reloads to the same prompts"
    if mismatch is not None:
        return ReusedRollouts({}, None, f"{path}: {mismatch}")
    available = store.RolloutLog(path, header).load()
    wanted = [(p, s) for p in problems for s in range(cfg.samples_per_problem)]
    taken = {(p.problem_id, s): available[(p.problem_id, s)] for p, s in wanted
             if (p.problem_id, s) in available and prompts.get(p.problem_id) == p.prompt}
    if not taken:
        return ReusedRollouts({}, None, f"{path} holds none of the needed rollouts")
    missing = len(wanted) - len(taken)
    reason = f"{missing} needed rollouts are not in {path}" if missing else None
    return ReusedRollouts(taken, f"{path} ({len(taken)} of {len(wanted)} rollouts)", reason)


def _read_header(path: Path) -> dict:
    """The JSON header line of a rollout log ({} when it is missing or torn)."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


def print_phase_output(label: str, output: PhaseOutput, results_dir: Path, table: str) -> None:
    """What every generating phase prints: a reuse note, its table, and the generation speed."""
    if output.reused:
        print(f"{label}: reusing finished results in {results_dir} (pass --overwrite to redo)")
    print(table)
    prov = output.summary["provenance"]
    if prov.get("tokens_per_s"):
        when = "when first run: " if output.reused else ""
        print(f"{when}generated {prov['generated_tokens']} tokens in {prov['generation_s']:.1f} s "
              f"({prov['tokens_per_s']:.0f} tok/s) on {prov['device']}")
