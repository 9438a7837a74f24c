"""Force-continue rollouts (s1): an EOS before the budget becomes the continue string.

A rollout is decoded up to the phase's largest budget M. When a row ends with EOS before M and
has been continued fewer than ``--max-continues`` times, the EOS is dropped, the continue string
("Wait") appended, and the row goes on from there in the next round (prompt + tokens so far,
through ``utils.generate_rollouts``), until M tokens or an EOS it may keep. The result at a
budget B <= M is the rollout's first B tokens: the same as running the procedure with M = B,
because what happens before B never depends on what comes after it.

Rounds after the first draw their sampling noise from a row seed of (problem, sample, round),
so rollouts stay independent of batching. Finished rows are appended to the phase's rollout log
(``-force-continue`` tag) with ``continued_at``, the token index of each inserted string; a
killed run resumes with the rows that finished.
"""

from __future__ import annotations

import time

import torch

import utils
from config import StudyConfig
from study.data.problems import Problem
from study.strategies import reasoning
from study.strategies.rollouts import GenerationPlan, RolloutRows, load_study_model, open_rollouts


def continue_rounds(lm: utils.LoadedModel, prompts: list[list[int]], max_new_tokens: int,
                    sampling: utils.SamplingConfig, seeds: list[list[int]], continue_ids: list[int],
                    max_continues: int, batch_size: int, on_done=None,
                    kv_layout: str = "auto") -> list[dict]:
    """Per prompt: {"token_ids", "eos", "continued_at"} of its force-continue rollout.

    ``seeds[i][r]`` is row i's seed in round r (``max_continues + 1`` per row). ``on_done``
    receives (indices, results) of rows as they finish.
    """
    state = [{"token_ids": [], "eos": False, "continued_at": []} for _ in prompts]
    active = list(range(len(prompts)))
    for round_no in range(max_continues + 1):
        if not active:
            break
        room = [max_new_tokens - len(state[i]["token_ids"]) for i in active]
        hook = _budget_hook(room, lm.eos_ids[0])
        inputs = [prompts[i] + state[i]["token_ids"] for i in active]
        outs = utils.generate_rollouts(lm, inputs, max(room), sampling,
                                       [seeds[i][round_no] for i in active], batch_size,
                                       progress=False, logits_hook=hook, kv_layout=kv_layout)
        still, finished = [], []
        for i, left, out in zip(active, room, outs):
            tokens, eos = list(out.token_ids), out.eos
            if eos and len(tokens) > left:  # the EOS the budget hook forced: cut by the budget
                tokens, eos = tokens[:left], False
            row = state[i]
            if eos and round_no < max_continues:
                row["continued_at"].append(len(row["token_ids"]) + len(tokens) - 1)
                row["token_ids"] += tokens[:-1] + continue_ids
                if len(row["token_ids"]) < max_new_tokens:
                    still.append(i)
                    continue
                row["token_ids"] = row["token_ids"][:max_new_tokens]
            else:
                row["token_ids"] += tokens
                row["eos"] = eos
            finished.append(i)
        if on_done is not None and finished:
            on_done(finished, [state[i] for i in finished])
        active = still
    return state


def _budget_hook(room: list[int], eos_id: int) -> utils.LogitsHook:
    """Forces EOS on a row once it has used its own room (rows share one max_new_tokens)."""
    limits = torch.tensor(room)

    def hook(rows: torch.Tensor, steps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        over = steps >= limits.to(steps.device)[rows]
        if bool(over.any()):
            logits = logits.clone()
            logits[over] = float("-inf")
            logits[over, eos_id] = 0.0
        return logits

    return hook


def collect_continued(cfg: StudyConfig, plan: GenerationPlan, problems: list[Problem],
                      seed_rollouts: RolloutRows | None = None) -> tuple[RolloutRows, dict]:
    """All (problem, sample) force-continue rollouts of the plan, generating only what is
    missing (the counterpart of ``rollouts.collect_rollouts``, same log format plus
    ``continued_at``)."""
    run = open_rollouts(cfg, plan, problems, seed_rollouts)
    log, done, pending, stats = run.log, run.done, run.pending, run.stats
    if not pending:
        return done, stats
    lm = load_study_model(cfg, stats)
    stats["device"] = utils.device_description(lm)
    log.start()
    prompts = reasoning.chat_prompts(cfg, lm.tokenizer, [p.prompt for p, _ in pending])
    size = cfg.model.batch_size or utils.auto_batch_size(lm, prompts, plan.max_budget)
    stats["batch_size"] = size
    rounds = cfg.forcing.max_continues + 1
    seeds = [[utils.row_seed(cfg.seed, p.problem_id if r == 0 else f"{p.problem_id}/continue{r}",
                             s) for r in range(rounds)] for p, s in pending]
    continue_ids = lm.tokenizer(cfg.forcing.continue_string,
                                add_special_tokens=False)["input_ids"]

    def persist(indices: list[int], results: list[dict]) -> None:
        rows = [{"problem_id": pending[i][0].problem_id, "sample": pending[i][1],
                 "token_ids": r["token_ids"], "eos": r["eos"], "prompt_len": len(prompts[i]),
                 "continued_at": r["continued_at"]} for i, r in zip(indices, results)]
        log.append(rows)
        done.update({(row["problem_id"], row["sample"]): row for row in rows})

    started = time.perf_counter()
    results = continue_rounds(lm, prompts, plan.max_budget, plan.sampling, seeds, continue_ids,
                              cfg.forcing.max_continues, size, persist, cfg.model.kv_layout)
    stats["generation_s"] = round(time.perf_counter() - started, 3)
    stats["generated_tokens"] = sum(len(r["token_ids"]) for r in results)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / max(stats["generation_s"], 1e-9), 1)
    return done, stats
