"""Force-continue rollouts (s1): an EOS before the budget becomes the continue string.

A rollout is decoded up to the phase's largest budget M. When a row ends with EOS before M and
has been continued fewer than ``--max-continues`` times, the EOS is dropped, the continue string
("Wait") appended, and the row goes on from there in the next round: one round trip per
continuation (prompt + tokens so far, as token ids, asking for the budget that remains, through
the engine's ``generate_rollouts``; a served engine's prefix cache makes the repeat cheap), until
M tokens or an EOS it may keep. Every engine runs it the same way. The result at a
budget B <= M is the rollout's first B tokens: the same as running the procedure with M = B,
because what happens before B never depends on what comes after it.

Rounds after the first draw their sampling noise from a row seed of (problem, sample, round),
so rollouts stay independent of batching. Finished rows are appended to the phase's rollout log
(``-force-continue`` tag) with ``continued_at``, the token index of each inserted string; a
killed run resumes with the rows that finished.
"""

from __future__ import annotations

import time

import utils
from config import StudyConfig
from study.data.problems import Problem
from study.strategies import reasoning
from study.strategies.rollouts import (
    GenerationPlan,
    RolloutRows,
    engine_stats,
    load_study_model,
    open_rollouts,
    resumable,
)


def continue_rounds(lm: utils.Engine, prompts: list[list[int]], max_new_tokens: int,
                    sampling: utils.SamplingConfig, seeds: list[list[int]], continue_ids: list[int],
                    max_continues: int, batch_size: int, on_done=None,
                    stop_ids: tuple[int, ...] = ()) -> list[dict]:
    """Per prompt: {"token_ids", "eos", "continued_at"} of its force-continue rollout.

    ``seeds[i][r]`` is row i's seed in round r (``max_continues + 1`` per row). ``on_done``
    receives (indices, results) of rows as they finish. ``stop_ids`` (a reasoning model's
    end-of-thinking token) are replaced like an EOS while continues are left; in the last round
    the model may close its thinking and answer.
    """
    stopping = lm.stopping_at(stop_ids)
    state = [{"token_ids": [], "eos": False, "continued_at": []} for _ in prompts]
    active = list(range(len(prompts)))
    for round_no in range(max_continues + 1):
        if not active:
            break
        # each row asks for the budget it has left (the engine ends every row at its own)
        room = [max_new_tokens - len(state[i]["token_ids"]) for i in active]
        inputs = [prompts[i] + state[i]["token_ids"] for i in active]
        engine = stopping if round_no < max_continues else lm
        outs = engine.generate_rollouts(inputs, room, sampling,
                                        [seeds[i][round_no] for i in active], batch_size,
                                        progress=False)
        still, finished = [], []
        for i, out in zip(active, outs):
            tokens, eos = list(out.token_ids), out.eos
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


def thinking_stop_ids(cfg: StudyConfig, tokenizer) -> tuple[int, ...]:
    """The end-of-thinking token force-continue replaces (s1), when the model thinks and its
    marker is one token; otherwise only EOS is replaced."""
    markers = reasoning.markers(cfg, tokenizer)
    end = utils.single_token_id(tokenizer, markers.end) if markers is not None else None
    return (end,) if end is not None else ()


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
    stats.update(engine_stats(lm))
    log.start()
    prompts = lm.prompt_ids([p.prompt for p, _ in pending])
    size = cfg.model.batch_size or lm.auto_batch_size(prompts, plan.max_budget)
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
    with resumable(log.path, lambda: len(done)):
        results = continue_rounds(lm, prompts, plan.max_budget, plan.sampling, seeds,
                                  continue_ids, cfg.forcing.max_continues, size, persist,
                                  thinking_stop_ids(cfg, lm.tokenizer))
    stats["generation_s"] = round(time.perf_counter() - started, 3)
    stats["generated_tokens"] = sum(len(r["token_ids"]) for r in results)
    stats["tokens_per_s"] = round(stats["generated_tokens"] / max(stats["generation_s"], 1e-9), 1)
    return done, stats
