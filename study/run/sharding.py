"""Data parallelism at the problem level: a generating phase split into shards, and the merge.

The shard boundary is the problem. Shard r of n takes the problems whose index in the phase's
problem list is r mod n (round robin: shard sizes differ by at most one, and a problem keeps its
shard when the list is cut to a prefix, so phase 3 finds phase 1's rollouts in its own shard).
Every ``ComputeStrategy`` shards this way for free: the runner simply hands it fewer problems.
Sampling is keyed on (seed, problem, sample, step), so a problem's outcomes do not depend on the
shard it ran in.

Where a process's shard comes from:
- ``--shard i/n``: one job of a Slurm array (or of any scheduler) runs shard i of n.
- ``accelerate launch --num_processes w``: rank k (accelerate's ``PartialState``) runs shard k/w;
  with ``--shard i/m`` as well, it runs shard i*w + k of m*w.

A shard writes ``results/shards/{summary stem}.shard{r}of{n}.json`` (atomic; a header naming the
shard, the phase's fingerprint, budgets and strategy, then its graded records) and keeps its own
rollout log next to it, so a killed shard resumes like any run. Once every shard file is present
and made under this configuration, the merge writes exactly what one process would: the record
files (records in the single-process order, byte for byte) and the summary computed from them by
the phase's own ``summarize``; the provenance block adds ``shards`` (count, world sizes, files).
Who merges: under accelerate, rank 0 after a barrier; in an array, the last shard to finish, or
``--merge`` (a dependent job). A missing or stale shard file is a ResultsError that names it.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study import store
from study.errors import ConfigError, ResultsError
from study.run.phase_run import GradedRun, PhaseOutput, PhaseRun, graded_run
from study.schema import ShardFile
from study.shards import Shard, process_state, select
from study.strategies.rollouts import rollout_config, rollout_tag

if TYPE_CHECKING:
    from study.strategies.base import ComputeStrategy

_SHARD_NAME = re.compile(r"\.shard(\d+)of(\d+)\.json$")


def _merge_rollout_logs(phase: PhaseRun, count: int) -> None:
    """Write the phase's whole rollout log from the shards' logs (rows in problem order), so
    later runs reuse them as they would a single process's; an unrelated log is left alone."""
    cfg = phase.cfg
    # The log's own config (force-end reads truncation's log; its reading keys are not in it).
    # Power sampling's per-budget logs stay per shard.
    config = rollout_config(cfg, phase.plan, phase.data.problems)
    whole = store.rollouts_path(cfg.paths.results_dir, phase.plan.phase, rollout_tag(cfg))
    header = {"kind": "rollouts", "fingerprint": store.fingerprint(config), "config": config}
    rows: dict[tuple[str, int], dict] = {}
    if whole.exists():
        if store.read_rollout_header(whole).get("fingerprint") != header["fingerprint"]:
            return
        rows.update(store.RolloutLog(whole, header).load())
    for index in range(count):
        path = store.shard_path(cfg.paths.results_dir, whole, index, count)
        if path.exists():
            rows.update(store.RolloutLog(path, store.read_rollout_header(path)).load())
    if not rows:
        return
    position = {p.problem_id: i for i, p in enumerate(phase.data.problems)}
    ordered = sorted(rows.items(), key=lambda kv: (position.get(kv[0][0], len(position)), kv[0]))
    text = "".join(json.dumps(r) + "\n" for r in [header, *(row for _, row in ordered)])
    store.atomic_write_text(whole, text)


# ------------------------------------------------------------------ running and merging

def shard_file(phase: PhaseRun, index: int, count: int) -> Path:
    return store.shard_path(phase.cfg.paths.results_dir, phase.summary_path, index, count)


def run_sharded(phase: PhaseRun, strategy: ComputeStrategy, shard: Shard | None) -> PhaseOutput:
    """Run this process's shard (or, for ``shard`` None, only merge) and merge when complete.

    Returns the merged phase when this process merged it; otherwise the shard's own summary
    (its records summarised alone, written nowhere) for the console.
    """
    if shard is None:
        return _merge(phase, _count_on_disk(phase), strategy.name, required=True)
    own = _run_own(phase, strategy, shard)
    if shard.world_size > 1:
        process_state(phase.cfg).wait_for_everyone()
    if shard.rank == 0:
        # A launch that covers every shard needs them all now; an array shard may be early.
        merged = _merge(phase, shard.count, strategy.name,
                        required=shard.count == shard.world_size)
        if merged is not None:
            return merged
    summary = phase.summary(own, [], extra={"shard": shard.label})
    return PhaseOutput(summary, reused=False)


def _run_own(phase: PhaseRun, strategy: ComputeStrategy, shard: Shard) -> GradedRun:
    """This shard's graded run: from its shard file when that is finished under this
    configuration, else by running the strategy on its problems (then the file is written)."""
    problems = select(phase.data.problems, shard)
    if not problems:
        n = len(phase.data.problems)
        raise ConfigError(f"--shard: shard {shard.label} of {phase.plan.phase} has no problems "
                          f"({phase.plan.phase} has {n}); use at most {n} shards (processes)")
    path = shard_file(phase, shard.index, shard.count)
    if path.exists() and not phase.cfg.run.overwrite:
        data = store.read_json(path)
        reason = _stale(data, phase, shard.index, shard.count, strategy.name)
        if reason is None:
            print(f"shard {shard.label}: reusing its finished file {path}", flush=True)
            return _graded(data)
        if isinstance(data, dict) and data.get("fingerprint") != store.fingerprint(phase.config):
            raise ResultsError(f"{path}: {reason}; re-run with the original flags, or pass "
                               "--overwrite to replace it")
    started = time.perf_counter()
    run = graded_run(strategy, problems, phase.plan.budgets)
    data: ShardFile = {
        "kind": "shard", "shard": shard.label, "index": shard.index, "count": shard.count,
        "fingerprint": store.fingerprint(phase.config), "rollout_config": phase.config,
        "budgets": list(phase.plan.budgets), "strategy": run.strategy,
        "world_size": shard.world_size, "problem_ids": [p.problem_id for p in problems],
        "wall_time_s": round(time.perf_counter() - started, 3),
        "tokens_spent": run.tokens_spent, "stats": run.stats,
        "reused_rollouts_from": run.reused_from,
        "records": {str(b): run.by_budget[b] for b in phase.plan.budgets},
    }
    store.write_json(path, data)
    print(f"shard {shard.label}: {len(problems)} of {len(phase.data.problems)} problems done, "
          f"written to {path}", flush=True)
    return run


def _stale(data: Any, phase: PhaseRun, index: int, count: int, strategy: str) -> str | None:
    """Why a shard file cannot stand for shard index/count of this phase, or None."""
    if not isinstance(data, dict) or data.get("kind") != "shard" or "records" not in data:
        return "not a shard file"
    if (data.get("index"), data.get("count")) != (index, count):
        return f"holds shard {data.get('shard')}, not {index}/{count}"
    if data.get("fingerprint") != store.fingerprint(phase.config):
        diff = store.describe_diff(data.get("rollout_config", {}), phase.config)
        return f"made under a different configuration ({diff})"
    if data.get("budgets") != list(phase.plan.budgets):
        return f"made for budgets {data.get('budgets')}, not {list(phase.plan.budgets)}"
    if data.get("strategy") != strategy:
        return f"made by strategy {data.get('strategy')!r}, not {strategy!r}"
    expected = [p.problem_id for p in select(phase.data.problems, f"{index}/{count}")]
    if data.get("problem_ids") != expected:
        return "holds other problems than this shard's"
    return None


def _graded(data: ShardFile) -> GradedRun:
    return GradedRun({int(b): recs for b, recs in data["records"].items()},
                     data["tokens_spent"], data["stats"], data["reused_rollouts_from"],
                     data["strategy"])


def _count_on_disk(phase: PhaseRun) -> int:
    """The shard count of this phase's shard files (for --merge, which is not told it)."""
    folder = shard_file(phase, 0, 1).parent
    stem = phase.summary_path.stem
    counts = sorted({int(m[2]) for p in folder.glob(f"{stem}.shard*of*.json")
                     if (m := _SHARD_NAME.search(p.name))})
    if not counts:
        raise ResultsError(f"{phase.summary_path}: not finished, and no shard files "
                           f"{stem}.shard*of*.json in {folder} to merge; run the shards with "
                           "--shard i/n first (or drop --merge)")
    if len(counts) > 1:
        sets = " and ".join(map(str, counts))
        raise ResultsError(f"{folder}: shard files of {stem} for {sets} shards; delete the set "
                           "you do not want, then merge again")
    return counts[0]


def _merge(phase: PhaseRun, count: int, strategy: str, required: bool) -> PhaseOutput | None:
    """Merge all ``count`` shards into the phase's files; None when some are missing or stale
    and the merge is not ``required`` (an array shard: the others may still be running, or be
    re-running under this configuration). When required, that is a ResultsError naming it."""
    paths = [shard_file(phase, r, count) for r in range(count)]
    shards: list[ShardFile] = []
    problems: dict[int, str] = {}  # shard index -> why it cannot be merged yet
    for index, path in enumerate(paths):
        data = store.read_json(path) if path.exists() else None
        reason = "missing" if data is None else _stale(data, phase, index, count, strategy)
        if reason is None:
            shards.append(data)
        else:
            problems[index] = reason
    if problems:
        if not required:
            names = ", ".join(f"{r}/{count} ({why})" for r, why in problems.items())
            print(f"{phase.plan.phase}: not merged yet, waiting for shards {names}; the last "
                  "shard to finish merges (or run the same command with --merge instead of "
                  "--shard)", flush=True)
            return None
        first, why = next(iter(problems.items()))
        others = f" (also not ready: {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultsError(f"{paths[first]}: {why}, so {phase.plan.phase} cannot be merged"
                           f"{others}; run shard {first}/{count} (--shard {first}/{count}) "
                           "with this run's flags, then merge again")
    run = _combine(phase, shards)
    _merge_rollout_logs(phase, count)
    extra = {"shards": {"count": count, "world_size": [s["world_size"] for s in shards],
                        "files": {p.name: store.file_sha256(p) for p in paths}}}
    output = phase.write(run, extra, wall_time_s=max(s["wall_time_s"] for s in shards))
    print(f"{phase.plan.phase}: merged {count} shards into {phase.summary_path}", flush=True)
    return output


def _combine(phase: PhaseRun, shards: list[ShardFile]) -> GradedRun:
    """The shards as one graded run: records in the single-process (problem, sample) order."""
    count = len(shards)
    by_budget = {}
    for budget in phase.plan.budgets:
        groups: list[dict[str, list]] = [defaultdict(list) for _ in shards]
        for group, data in zip(groups, shards):
            for record in data["records"][str(budget)]:
                group[record["problem_id"]].append(record)
        by_budget[budget] = [record for i, problem in enumerate(phase.data.problems)
                             for record in groups[i % count].get(problem.problem_id, [])]
    spent = {str(b): sum(s["tokens_spent"][str(b)] for s in shards) for b in phase.plan.budgets}
    reused = list(dict.fromkeys(s["reused_rollouts_from"] for s in shards
                                if s["reused_rollouts_from"]))
    return GradedRun(by_budget, spent, combine_stats([s["stats"] for s in shards]),
                     "; ".join(reused) or None, shards[0]["strategy"])


# Stats that are settings, not counts: equal in every shard, kept rather than summed.
SETTINGS = frozenset({"alpha", "blocks", "mcmc_steps"})


def combine_stats(parts: list[dict]) -> dict:
    """Generation stats of shards as one block: counts add up; generation time is the slowest
    shard's (shards run side by side), so tokens_per_s is the aggregate throughput; any other
    value (device, batch size) is listed once per distinct value."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [part[key] for part in parts if key in part]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values and all(isinstance(v, dict) for v in values):  # e.g. power sampling's block
            out[key] = combine_stats(values)
        elif key in SETTINGS and len(set(values)) == 1:
            out[key] = values[0]
        elif key == "acceptance_rate":  # recomputed from the summed counts below
            continue
        elif key in ("generation_s", "forcing_s", "model_load_s"):  # shards run side by side
            out[key] = max(numbers, default=0.0)
        elif key == "tokens_per_s":
            continue
        elif numbers and len(numbers) == len(values) and key != "batch_size":
            out[key] = sum(values)
        else:
            distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values
                                          if v is not None))
            out[key] = (json.loads(distinct[0]) if len(distinct) == 1 else
                        ", ".join(map(str, (json.loads(d) for d in distinct))) or None)
    if "proposals" in out and "accepted" in out:
        out["acceptance_rate"] = out["accepted"] / out["proposals"] if out["proposals"] else None
    if "generated_tokens" in out:
        seconds = out.get("generation_s") or 0.0
        out["tokens_per_s"] = round(out["generated_tokens"] / seconds, 1) if seconds else None
    return out
