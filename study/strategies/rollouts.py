"""Rollouts of a phase: generated once up to its largest budget, saved as they finish, reused.

A phase asks for ``samples`` rollouts of every problem up to its largest budget. Finished
rollouts are appended to ``results/rollouts/{phase}_{model}.jsonl`` after every batch, so a
killed run resumes where it stopped. Another phase may take rollouts from this log when they
are the very tokens it would generate (same model, data, seed, precision, sampling, prompts).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import utils
from config import StudyConfig
from study import shards, store
from study.data import subsets
from study.data.datasets import load_problems, rollout_keys
from study.data.problems import Problem
from study.errors import RunStopped
from study.strategies import reasoning

# Bump when every prompt changes so old rollouts are not silently reused; a single dataset's new
# template bumps its Template.version instead (``datasets.rollout_keys``).
PROMPT_FORMAT_VERSION = 1
RolloutRows = dict[tuple[str, int], dict]  # (problem_id, sample) -> stored rollout row


@dataclass(frozen=True)
class GenerationPlan:
    """What one generating phase asks of the engine, resolved from the study config."""

    phase: str
    budgets: tuple[int, ...]
    samples: int  # rollouts per problem
    num_samples: int | None  # problems (a prefix of the dataset or its selection); None = all
    sampling: utils.SamplingConfig

    @property
    def max_budget(self) -> int:
        return max(self.budgets)


def sampling(temperature: float, top_p: float) -> utils.SamplingConfig:
    """Decoding settings; top-p means nothing under greedy decoding, so it is recorded as 1."""
    return utils.SamplingConfig(temperature, top_p if temperature > 0 else 1.0)


def plan_for(cfg: StudyConfig, phase: str) -> GenerationPlan:
    """The generation plan of a generating phase ("phase1", "phase1b" or "phase3")."""
    greedy_curve = sampling(cfg.generation.temperature, cfg.generation.top_p)
    if phase == "phase1":
        return GenerationPlan(phase, cfg.phase1.budgets, 1, cfg.data.num_samples, greedy_curve)
    if phase == "phase1b":
        s = cfg.phase1b
        return GenerationPlan(phase, s.budgets, s.samples, s.num_samples or cfg.data.num_samples,
                              sampling(s.temperature, s.top_p))
    if phase == "phase3":
        return GenerationPlan(phase, cfg.phase3.budgets, 1, cfg.data.num_samples, greedy_curve)
    raise KeyError(f"{phase} is not a generating phase")


def load_study_model(cfg: StudyConfig, stats: dict | None = None) -> utils.Engine:
    """The run's model as every phase must see it: engine, name, precision, device and depth.

    One place, so a cut model (``--num-layers``) is never swapped for the whole one in a later
    step of the same run (e.g. the forced answers of rollouts made by the cut model). The
    seconds it took are added to ``stats["model_load_s"]`` (about 0 when this process already
    holds the model: the engine keeps the last one loaded).
    """
    started = time.perf_counter()
    m = cfg.model
    local_only = utils.model_cache_only(m.name)  # offline and not cached: fail before torch
    request = utils.LoadRequest(m.name, m.precision, cfg.paths.data_dir, m.device, m.num_layers,
                                local_only, longest_generation(cfg),
                                tuple(sorted(reasoning.template_kwargs(cfg).items())))
    # the engine's own knobs are the config section named after it
    lm = utils.load_engine(m.engine, request, getattr(cfg, m.engine))
    if stats is not None:
        stats["model_load_s"] = round(stats.get("model_load_s", 0.0)
                                      + time.perf_counter() - started, 3)
    return lm


@contextmanager
def resumable(log_path: Path, saved: Callable[[], int], what: str = "rollouts"):
    """A request that failed for good stops the run with one line: the URL (in the engine's
    message), what is saved and the command that resumes. Never an empty answer graded."""
    try:
        yield
    except utils.RequestFailed as exc:
        raise RunStopped(f"{exc}. {saved()} {what} are saved in {log_path}; run the same "
                         f"command again to resume: {resume_command()}") from exc


def resume_command() -> str:
    """The command line of this process, as the user would type it again."""
    return shlex.join(["python", *sys.argv])


def engine_stats(lm: utils.Engine) -> dict:
    """The engine's provenance as generation stats: ``device`` (one line) and ``engine``."""
    block = lm.provenance()
    return {"device": block.pop("device", None), "engine": block}


def longest_generation(cfg: StudyConfig) -> int:
    """The most tokens one request of this run can generate: the largest budget of any
    generating phase plus a forced answer. Every phase computes the same number, so the phases
    of one process share one vLLM engine (sized by it)."""
    budgets = (*cfg.phase1.budgets, *cfg.phase1b.budgets, *cfg.phase3.budgets,
               *cfg.depth.budgets)
    return max(budgets) + cfg.forcing.answer_tokens


def on_hf_engine(cfg: StudyConfig, what: str) -> StudyConfig:
    """``cfg`` on an engine that reads hidden states (depth, the logit lens): the one asked for
    when it can, else the first that can, and one line says so."""
    feature = "hidden-states"
    if feature in utils.ENGINES[cfg.model.engine].capabilities:
        return cfg
    able = next(e.name for e in utils.ENGINES.values() if feature in e.capabilities)
    print(f"{what} reads the model's hidden states: it runs on the {able} engine "
          f"(--engine {cfg.model.engine} applies to the generating phases)", flush=True)
    return cfg.replace({"model.engine": able})


def open_log(cfg: StudyConfig, whole: Path, kind: str, config: dict) -> store.RolloutLog:
    """The rollout log ``whole`` as this process keeps it (its own file when sharded), with
    ``config``'s fingerprint in its header; emptied first under ``--overwrite``."""
    log = store.RolloutLog(shards.log_path(cfg, whole),
                           {"kind": kind, "fingerprint": store.fingerprint(config),
                            "config": config, **shards.log_header(cfg)})
    if cfg.run.overwrite:
        log.delete()
    return log


def rollout_config(cfg: StudyConfig, plan: GenerationPlan, problems: list[Problem]) -> dict:
    """Everything that determines the rollouts (and nothing that only affects speed).

    A dataset's answer kind and template version are added only when they are not the legacy
    numeric kind and version 1, so the fingerprints of earlier runs stay valid.
    """
    return {
        "phase": plan.phase, "model": cfg.model.name, "dataset": cfg.data.dataset,
        "num_samples": plan.num_samples, "seed": cfg.seed, "precision": cfg.model.precision,
        "max_new_tokens": plan.max_budget, "temperature": plan.sampling.temperature,
        "top_p": plan.sampling.top_p, "samples_per_problem": plan.samples,
        "prompts": store.fingerprint([p.prompt for p in problems]),
        "prompt_format": PROMPT_FORMAT_VERSION,
        **rollout_keys(cfg.data.dataset, cfg.data.answer_kind),
        # A selection of problems, and the chat template's switches: only when set.
        **subsets.fingerprint_keys(subsets.subset_of(cfg.data)),
        **reasoning.template_keys(cfg),
        **continue_keys(cfg),
        # Only a cut model adds its depth, so full-model fingerprints stay as they were.
        **({"num_layers": cfg.model.num_layers} if cfg.model.num_layers is not None else {}),
        # Only another engine adds its name (HF fingerprints stay as they were): vLLM's greedy
        # tokens match, but its sampled ones do not, so logs of the two are never mixed.
        **({"engine": cfg.model.engine} if cfg.model.engine != "hf" else {}),
        **decoding_keys(cfg),
    }


def continue_keys(cfg: StudyConfig) -> dict:
    """Force-continue changes the rollouts themselves; force-end reads truncation's as they are
    (so both modes share one rollout log and truncation's fingerprints stay valid)."""
    f = cfg.forcing
    if f.budget_mode != "force-continue":
        return {}
    keys = {"budget_mode": f.budget_mode, "continue_string": f.continue_string,
            "max_continues": f.max_continues}
    if reasoning.run_markers(cfg) is not None:  # a thinking model's end of thinking is replaced
        keys["continue_replaces"] = "eos and end of thinking"
    return keys


def rollout_tag(cfg: StudyConfig) -> str:
    """The model tag of a run's rollout log: force-end reuses the truncation log (same tokens)."""
    if cfg.forcing.budget_mode == "force-end":
        return cfg.replace({"forcing.budget_mode": "truncate"}).model_tag
    return cfg.model_tag


def decoding_keys(cfg: StudyConfig) -> dict:
    """Power sampling's settings (none under plain decoding, so older fingerprints hold)."""
    if cfg.generation.decoding != "power":
        return {}
    p = cfg.power
    return {"decoding": "power", "power_alpha": p.alpha, "power_blocks": p.blocks,
            "power_mcmc_steps": p.mcmc_steps}


@dataclass
class OpenRollouts:
    """A phase's rollout log opened for (more) generation."""

    log: store.RolloutLog
    done: RolloutRows  # finished rollouts: resumed from the log or taken from another phase
    pending: list[tuple[Problem, int]]  # (problem, sample) still to generate
    stats: dict  # generation stats for the provenance block (filled in by the generator)


def open_rollouts(cfg: StudyConfig, plan: GenerationPlan, problems: list[Problem],
                  seed_rollouts: RolloutRows | None = None) -> OpenRollouts:
    """The plan's rollout log (this shard's when sharded), what it holds and what is missing.

    ``seed_rollouts`` are rollouts taken from another phase (phase 3 reusing phase 1).
    """
    config = rollout_config(cfg, plan, problems)
    whole = store.rollouts_path(cfg.paths.results_dir, plan.phase, rollout_tag(cfg))
    log = open_log(cfg, whole, "rollouts", config)
    done = log.load()
    wanted = [(p, s) for p in problems for s in range(plan.samples)]
    for problem, sample in wanted:
        key = (problem.problem_id, sample)
        if seed_rollouts and key not in done and key in seed_rollouts:
            done[key] = seed_rollouts[key]
    pending = [(p, s) for p, s in wanted if (p.problem_id, s) not in done]
    stats = {"rollouts_total": len(wanted), "rollouts_generated": len(pending),
             "rollouts_resumed_or_reused": len(wanted) - len(pending), "generated_tokens": 0,
             "generation_s": 0.0, "tokens_per_s": None, "device": None,
             "batch_size": cfg.model.batch_size}
    return OpenRollouts(log, done, pending, stats)


def collect_rollouts(cfg: StudyConfig, plan: GenerationPlan, problems: list[Problem],
                     seed_rollouts: RolloutRows | None = None) -> tuple[RolloutRows, dict]:
    """All (problem, sample) rollouts of the plan, generating only what is missing.

    Returns (rollouts keyed by (problem_id, sample), generation stats for the provenance block).
    """
    run = open_rollouts(cfg, plan, problems, seed_rollouts)
    if run.pending:
        _generate(cfg, plan, run.pending, run.log, run.done, run.stats)
    return run.done, run.stats


def _generate(cfg: StudyConfig, plan: GenerationPlan, pending: list[tuple[Problem, int]],
              log: store.RolloutLog, done: RolloutRows, stats: dict) -> None:
    lm = load_study_model(cfg, stats)
    stats.update(engine_stats(lm))
    log.start()
    prompts = lm.prompt_ids([p.prompt for p, _ in pending])
    size = cfg.model.batch_size or lm.auto_batch_size(prompts, plan.max_budget)
    stats["batch_size"] = size  # the size actually used (``auto`` resolved)
    seeds = [utils.row_seed(cfg.seed, p.problem_id, s) for p, s in pending]

    def persist(indices: list[int], rollouts: list[utils.Rollout]) -> None:
        rows = [{"problem_id": pending[i][0].problem_id, "sample": pending[i][1],
                 "token_ids": list(r.token_ids), "eos": r.eos, "prompt_len": len(prompts[i])}
                for i, r in zip(indices, rollouts)]
        log.append(rows)
        done.update({(row["problem_id"], row["sample"]): row for row in rows})

    started = time.perf_counter()
    with resumable(log.path, lambda: len(done)):
        rollouts = lm.generate_rollouts(prompts, plan.max_budget, plan.sampling, seeds, size,
                                        on_batch=persist, progress=not cfg.run.quiet)
    stats["generation_s"] = round(time.perf_counter() - started, 3)
    stats["generated_tokens"] = sum(len(r.token_ids) for r in rollouts)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / max(stats["generation_s"], 1e-9), 1)


# ------------------------------------------------------------------ reuse across phases

# Keys of rollout_config that must agree for another phase's rollouts to be the very tokens this
# phase would generate. num_samples may differ (problem sets are prefixes); max_new_tokens and
# samples_per_problem only need to cover this phase's; prompts are checked problem by problem.
REUSE_KEYS = ("model", "dataset", "seed", "precision", "temperature", "top_p", "prompt_format",
              "answer_kind", "template_version", "num_layers")
# Force-continue rollouts are only reused under the same continuation (absent otherwise).
REUSE_KEYS += ("budget_mode", "continue_string", "max_continues", "engine")
# The same selection of problems (its problem set is reloaded with this run's) and template.
REUSE_KEYS += ("problem_range", "subset_seed", "problem_ids", "chat_template_kwargs")


@dataclass
class ReusedRollouts:
    rollouts: RolloutRows  # only those this phase needs
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


def _source_prompts(data_dir: Path, source: dict, shard: str | None = None,
                    subset: subsets.Subset | None = None) -> dict[str, str] | None:
    """problem_id -> prompt of the source phase's problem set (of its ``shard`` "i/n" when the
    log is a shard's; ``subset``: its selection, the same as this run's), if it reloads to the
    same prompts."""
    problems = shards.select(load_problems(source["dataset"], source.get("num_samples"),
                                             source["seed"], data_dir,
                                             source.get("answer_kind", "numeric"),
                                             subset=subset), shard)
    if store.fingerprint([p.prompt for p in problems]) != source.get("prompts"):
        return None
    return {p.problem_id: p.prompt for p in problems}


def rollouts_from_phase(cfg: StudyConfig, plan: GenerationPlan, source_phase: str,
                        problems: list[Problem]) -> ReusedRollouts:
    """The rollouts another phase already made that this plan needs, when they are identical
    to what it would generate. Rollouts longer than its budget are fine: budgets are prefixes.
    """
    path = shards.source_log_path(
        cfg, store.rollouts_path(cfg.paths.results_dir, source_phase, rollout_tag(cfg)))
    if not path.exists():
        return ReusedRollouts({}, None, f"no {source_phase} rollouts at {path}")
    header = store.read_rollout_header(path)
    source = header.get("config", {})
    mismatch = reuse_mismatch(source, rollout_config(cfg, plan, problems))
    if mismatch is None and (prompts := _source_prompts(
            cfg.paths.data_dir, source, header.get("shard"),
            subsets.subset_of(cfg.data))) is None:
        mismatch = "its problem set no longer reloads to the same prompts"
    if mismatch is not None:
        return ReusedRollouts({}, None, f"{path}: {mismatch}")
    available = store.RolloutLog(path, header).load()
    wanted = [(p, s) for p in problems for s in range(plan.samples)]
    taken = {(p.problem_id, s): available[(p.problem_id, s)] for p, s in wanted
             if (p.problem_id, s) in available and prompts.get(p.problem_id) == p.prompt}
    if not taken:
        return ReusedRollouts({}, None, f"{path} holds none of the needed rollouts")
    missing = len(wanted) - len(taken)
    reason = f"{missing} needed rollouts are not in {path}" if missing else None
    return ReusedRollouts(taken, f"{path} ({len(taken)} of {len(wanted)} rollouts)", reason)
