"""Force-continue's round trips (``continue_rounds``) on a scripted engine: each round asks
every row for the budget it has left; EOS, and a reasoning model's end of thinking, are
replaced by the continue string while continues are left, and kept in the last round."""

from __future__ import annotations

from dataclasses import dataclass, field

import utils
from study.strategies.forcing_rollouts import continue_rounds

EOS, END, WAIT = 2, 50, 99


@dataclass(eq=False)
class Scripted(utils.Engine):
    """Generates, from any input, the script's tokens after it, up to the row's budget or the
    first stop id (kept), as a real engine's decoding would."""

    script: list[int]
    eos_ids: tuple[int, ...] = (EOS,)
    calls: list = field(default_factory=list)
    tokenizer: object = None
    name = "hf"

    def generate_rollouts(self, prompts, max_new_tokens, sampling, seeds, batch_size=0,
                          on_batch=None, progress=True):
        budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) \
            else list(max_new_tokens)
        self.calls.append((self.eos_ids, budgets))
        out = []
        for prompt, budget in zip(prompts, budgets):
            done = len(prompt) - 1  # the prompt is [0]; what follows is generated so far
            ids = []
            for token in self.script[done:][:budget]:
                ids.append(token)
                if token in self.eos_ids:
                    break
            out.append(utils.Rollout(tuple(ids), bool(ids) and ids[-1] in self.eos_ids))
        return out

    def branch_answers(self, *args, **kwargs):
        raise NotImplementedError

    def branch_scores(self, *args, **kwargs):
        raise NotImplementedError

    def describe(self) -> str:
        return "scripted"


def run(script, stop_ids=(), max_continues=2, budget=12):
    lm = Scripted(script)
    state = continue_rounds(lm, [[0]], budget, utils.SamplingConfig(), [[0, 1, 2]], [WAIT],
                            max_continues, 1, stop_ids=stop_ids)
    return state[0], lm.calls


def test_an_early_eos_becomes_the_continue_string_with_the_budget_left():
    # the model says 3 tokens then EOS; once continued, the script goes on after the prefix
    row, calls = run([5, 6, 7, EOS, 8, EOS, 9, 10, 11, 12, 13, 14, 15], max_continues=1)
    assert row["token_ids"][:4] == [5, 6, 7, WAIT]
    assert row["continued_at"] == [3]
    assert [budgets for _, budgets in calls] == [[12], [8]]  # each round: the budget left


def test_the_end_of_thinking_is_replaced_then_kept_in_the_last_round():
    script = [5, END, 7, END, 8, 9, EOS, 1, 1, 1, 1, 1, 1]
    row, calls = run(script, stop_ids=(END,), max_continues=1)
    # round 0 stops at </think> (a stop id there) and it becomes "Wait"; round 1, the last,
    # runs on the plain engine: the model closes its thinking and answers up to its EOS
    assert row["token_ids"] == [5, WAIT, 7, END, 8, 9, EOS]
    assert row["eos"] and row["continued_at"] == [1]
    assert calls[0][0] == (EOS, END) and calls[1][0] == (EOS,)


def test_without_stop_ids_the_end_of_thinking_passes():
    row, _ = run([5, END, 7, EOS, 1, 1, 1, 1, 1, 1, 1, 1, 1], max_continues=0)
    assert row["token_ids"] == [5, END, 7, EOS] and row["continued_at"] == []


def test_a_row_that_never_stops_is_cut_at_the_budget():
    row, calls = run(list(range(10, 40)), stop_ids=(END,))
    assert row["token_ids"] == list(range(10, 22)) and not row["eos"] and len(calls) == 1
