"""Budget forcing: forced answers and scores from KV branches against plain HF references.

The references never touch ``engine.branching``: a fresh ``model.generate`` of prompt + first B
tokens + cue (force-end), the EOS -> continue-string replacement done by hand with
``model.generate`` (force-continue), and a plain forward pass for teacher-forced scores. Greedy
rows may differ only at near-ties (top-2 logit gap < 1e-4 at the first differing token);
``NEAR_TIES`` counts them so the report can say how many there were.
"""

from __future__ import annotations

import pytest
import torch

import utils

NEAR_TIE = 1e-4
NEAR_TIES: dict[str, int] = {}  # test name -> rows that differed at a near-tie


def hf_greedy(lm, ids: list[int], new: int) -> tuple[list[int], list[torch.Tensor]]:
    """Plain ``model.generate`` greedy continuation (stops at EOS) and its step logits."""
    out = lm.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                            dtype=torch.long), max_new_tokens=new, do_sample=False,
                            eos_token_id=list(lm.eos_ids), pad_token_id=lm.pad_id,
                            output_logits=True, return_dict_in_generate=True)
    return out.sequences[0, len(ids):].tolist(), [x[0] for x in out.logits]


def compare(name: str, got: list[int], want: list[int], logits: list[torch.Tensor]) -> None:
    """Equal, or the first difference sits at a near-tie of the reference's logits."""
    if got == want:
        return
    first = next(i for i, (a, b) in enumerate(zip(got + [-1], want + [-2])) if a != b)
    top2 = logits[min(first, len(logits) - 1)].float().topk(2).values
    gap = float(top2[0] - top2[1])
    assert gap < NEAR_TIE, f"{name}: differs at token {first} with top-2 gap {gap:.2e}"
    NEAR_TIES[name] = NEAR_TIES.get(name, 0) + 1


@pytest.fixture(scope="module")
def rollouts(tiny_lm):
    prompts = utils.chat_prompt_ids(tiny_lm.tokenizer, ["What is 2 + 3?", "Add 17 and 25.",
                                                        "Is 9 prime? Answer briefly."])
    seeds = [utils.row_seed(1, str(i), 0) for i in range(len(prompts))]
    outs = utils.generate_rollouts(tiny_lm, prompts, 40, utils.SamplingConfig(), seeds, 4,
                                   progress=False)
    return prompts, outs


def test_branch_answers_match_fresh_generate(tiny_lm, rollouts):
    prompts, outs = rollouts
    cue = tiny_lm.tokenizer("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    seqs = [p + list(r.token_ids) for p, r in zip(prompts, outs)]
    branches = [utils.Branch(i, len(p) + b) for i, p in enumerate(prompts)
                for b in (1, 7, 16, 33, 40) if b <= len(outs[i].token_ids)]
    got = utils.branch_answers(tiny_lm, seqs, branches, cue, 12, batch_size=5)
    for branch, answer in zip(branches, got):
        ids = seqs[branch.row][:branch.prefix_len] + cue
        want, logits = hf_greedy(tiny_lm, ids, 12)
        compare("force-end tiny", list(answer.token_ids), want, logits)
        assert answer.eos == (bool(want) and want[-1] in tiny_lm.eos_ids)
    # batching does not change answers: one branch at a time gives the same tokens
    alone = utils.branch_answers(tiny_lm, seqs, branches, cue, 12, batch_size=1)
    assert [a.token_ids for a in alone] == [a.token_ids for a in got]


def test_branch_scores_match_plain_forward(tiny_lm, rollouts):
    prompts, outs = rollouts
    cue = tiny_lm.tokenizer(" Answer:", add_special_tokens=False)["input_ids"]
    seqs = [p + list(r.token_ids) for p, r in zip(prompts, outs)]
    branches = [utils.Branch(0, len(prompts[0]) + 5), utils.Branch(1, len(prompts[1]) + 20)]
    cands = [[[20], [30, 31, 32]], [[1, 2], [5], [900, 901, 902, 903]]]
    got = utils.branch_scores(tiny_lm, seqs, branches, cue, cands, batch_size=3)
    for k, branch in enumerate(branches):
        for c, cand in enumerate(cands[k]):
            ids = seqs[branch.row][:branch.prefix_len] + cue + cand
            with torch.no_grad():
                logp = torch.log_softmax(tiny_lm.model(torch.tensor([ids])).logits[0].float(), -1)
            start = branch.prefix_len + len(cue) - 1
            want = sum(float(logp[start + j, t]) for j, t in enumerate(cand))
            assert got[k][c] == pytest.approx(want, abs=1e-4)
