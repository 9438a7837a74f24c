"""The logit lens over stored rollouts: how far each layer's read-out is from the final one.

A seeded sample of phase-1 rollouts (``results/rollouts/phase1_{model}.jsonl``, checked against
this config's fingerprint) is read once by the model with every layer's hidden state passed
through the final norm and the LM head (``Engine.logit_lens_kl``). The model is causal, so the
KL at a generated token does not depend on later tokens: budget B's numbers are the first B
tokens of the same rollouts, and one forward pass per rollout serves every budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import utils
from config import StudyConfig
from study import store
from study.data import subsets
from study.data.datasets import load_dataset
from study.errors import ResultsError
from study.schema_analyses import LensRow, LensSummary
from study.strategies import rollouts
from study.strategies.rollouts import load_study_model, on_hf_engine, rollout_config
from study.tables import num, text_table

SOURCE_PHASE = "phase1"


def sampled_rollouts(cfg: StudyConfig) -> tuple[Path, list, list[dict], dict]:
    """(log path, problems, sampled rows, dataset info): a seeded sample of phase-1 rollouts made
    under this very config; ResultsError naming the command when there are none."""
    plan = rollouts.plan_for(cfg, SOURCE_PHASE)
    data = load_dataset(cfg.data.dataset, plan.num_samples, cfg.seed, cfg.paths.data_dir,
                        cfg.data.answer_kind, cfg.data.source,
                        subsets.subset_of(cfg.data))
    config = rollout_config(cfg, plan, data.problems)
    path = store.rollouts_path(cfg.paths.results_dir, SOURCE_PHASE, cfg.model_tag)
    make = "run python phase1_main.py with the same flags first"
    if not path.exists():
        raise ResultsError(f"{path}: no phase-1 rollouts for the logit lens; {make}")
    header = store.read_rollout_header(path)
    if header.get("fingerprint") != store.fingerprint(config):
        raise ResultsError(f"{path}: made under another configuration "
                           f"({store.describe_diff(header.get('config', {}), config)}); "
                           "pass that run's flags")
    done = store.RolloutLog(path, header).load()
    pool = [(p, done[(p.problem_id, 0)]) for p in data.problems if (p.problem_id, 0) in done]
    if not pool:
        raise ResultsError(f"{path}: holds none of this problem set's rollouts; {make}")
    rng = np.random.default_rng(cfg.seed)
    picked = sorted(rng.choice(len(pool), size=min(cfg.lens.samples, len(pool)), replace=False))
    return path, [pool[i][0] for i in picked], [pool[i][1] for i in picked], data.info


def budget_row(kls: list[utils.LensKL], budget: int) -> LensRow:
    """Token-pooled mean KL per layer over the first ``budget`` tokens of every rollout."""
    parts = [k.per_token[:, :budget] for k in kls]
    pooled = np.concatenate(parts, axis=1)
    kl = pooled.mean(axis=1)
    drops = -np.diff(kl)
    steep = int(np.argmax(drops)) + 1 if drops.size else None  # 1-based layer before the drop
    return {"budget": budget, "n_rollouts": len(kls), "n_tokens": int(pooled.shape[1]),
            "kl": [float(x) for x in kl],
            "steepest_drop": [steep, steep + 1] if steep is not None else None}


def compute(cfg: StudyConfig) -> LensSummary:
    """Sample, run the lens, write ``results/lens_summary_{model}.json``."""
    started = time.perf_counter()
    path, problems, rows, dataset = sampled_rollouts(cfg)
    # the rollouts may be any engine's; reading every layer's hidden states needs HF
    lm = load_study_model(on_hf_engine(cfg, "the logit lens"))
    prompts = lm.prompt_ids([p.prompt for p in problems])
    for prompt, row in zip(prompts, rows):
        if len(prompt) != row["prompt_len"]:  # the log's prompt was tokenised differently
            raise ResultsError(f"{path}: {row['problem_id']}'s prompt no longer tokenises to "
                               f"{row['prompt_len']} tokens; re-run phase 1 with --overwrite")
    kls = lm.logit_lens_kl(prompts, [r["token_ids"] for r in rows], cfg.lens.batch_size)
    budgets = cfg.lens.budgets or cfg.phase1.budgets
    summary: LensSummary = {
        "phase": "lens", "model": cfg.model.name, "dataset": cfg.data.dataset,
        "source": str(path), "model_layers": len(kls[0].per_token),
        "n_rollouts": len(rows), "problem_ids": [r["problem_id"] for r in rows],
        "budgets": {str(b): budget_row(kls, b) for b in budgets},
        "provenance": store.provenance(
            cfg.to_dict(), seed=cfg.seed, wall_time_s=time.perf_counter() - started,
            device=lm.describe(),
            extra={"dataset": dataset, "rollout_fingerprint": store.read_rollout_header(path)
                   .get("fingerprint"), "num_layers": cfg.model.num_layers,
                   "model_layers": utils.model_depth(cfg.model.name, cfg.paths.data_dir)}),
    }
    store.write_json(store.lens_summary_path(cfg.paths.results_dir, cfg.model_tag), summary)
    return summary


def format_table(summary: LensSummary) -> str:
    """KL(final || layer) in nats: one row per layer, one column per budget."""
    blocks = sorted(summary["budgets"].values(), key=lambda r: r["budget"])
    columns = [("Layer", "<7"), *[(f"B={b['budget']}", ">10") for b in blocks]]
    rows = [[layer + 1, *[num(b["kl"][layer], 3) for b in blocks]]
            for layer in range(summary["model_layers"])]
    drops = ", ".join(f"B={b['budget']}: {b['steepest_drop'][0]} → {b['steepest_drop'][1]}"
                      for b in blocks if b["steepest_drop"])
    return (f"Logit lens: mean KL(final || layer) in nats over generated tokens, "
            f"{summary['n_rollouts']} sampled rollouts\n{text_table(columns, rows)}\n"
            f"largest drop between layers: {drops or '—'}")
