"""Budget forcing: forced answers and scores from KV branches against plain HF references.

The references never touch ``engine.hf.branching``: a fresh ``model.generate`` of prompt + first B
tokens + cue (force-end), the EOS -> continue-string replacement done by hand with
``model.generate`` (force-continue), and a plain forward pass for teacher-forced scores. Greedy
rows may differ only at near-ties (top-2 logit gap < 1e-4 at the first differing token);
``NEAR_TIES`` counts them so the report can say how many there were.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import phase1_main
import utils
from bench.tiny_model import tiny_llama_for
from engine.loading import eos_token_ids
from study import store
from study.data.datasets import load_dataset
from study.schema import RECORD_KEYS

REPO = Path(__file__).resolve().parent.parent
NEAR_TIE = 1e-4
NEAR_TIES: dict[str, int] = {}  # test name -> rows that differed at a near-tie


@pytest.fixture(scope="module", autouse=True)
def report_near_ties():
    """Print how many rows differed at a near-tie (pytest -s shows it; the report quotes it)."""
    yield
    print(f"\nnear-tie rows (top-2 logit gap < {NEAR_TIE:g}): {NEAR_TIES or 'none'}")


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
    outs = tiny_lm.generate_rollouts(prompts, 40, utils.SamplingConfig(), seeds, 4,
                                   progress=False)
    return prompts, outs


def test_branch_answers_match_fresh_generate(tiny_lm, rollouts):
    prompts, outs = rollouts
    cue = tiny_lm.tokenizer("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    seqs = [p + list(r.token_ids) for p, r in zip(prompts, outs)]
    branches = [utils.Branch(i, len(p) + b) for i, p in enumerate(prompts)
                for b in (1, 7, 16, 33, 40) if b <= len(outs[i].token_ids)]
    got = tiny_lm.branch_answers(seqs, branches, cue, 12, batch_size=5)
    for branch, answer in zip(branches, got):
        ids = seqs[branch.row][:branch.prefix_len] + cue
        want, logits = hf_greedy(tiny_lm, ids, 12)
        compare("force-end tiny", list(answer.token_ids), want, logits)
        assert answer.eos == (bool(want) and want[-1] in tiny_lm.eos_ids)
    # batching does not change answers: one branch at a time gives the same tokens
    alone = tiny_lm.branch_answers(seqs, branches, cue, 12, batch_size=1)
    assert [a.token_ids for a in alone] == [a.token_ids for a in got]


def test_branch_scores_match_plain_forward(tiny_lm, rollouts):
    prompts, outs = rollouts
    cue = tiny_lm.tokenizer(" Answer:", add_special_tokens=False)["input_ids"]
    seqs = [p + list(r.token_ids) for p, r in zip(prompts, outs)]
    branches = [utils.Branch(0, len(prompts[0]) + 5), utils.Branch(1, len(prompts[1]) + 20)]
    cands = [[[20], [30, 31, 32]], [[1, 2], [5], [900, 901, 902, 903]]]
    got = tiny_lm.branch_scores(seqs, branches, cue, cands, batch_size=3)
    for k, branch in enumerate(branches):
        for c, cand in enumerate(cands[k]):
            ids = seqs[branch.row][:branch.prefix_len] + cue + cand
            with torch.no_grad():
                logp = torch.log_softmax(tiny_lm.model(torch.tensor([ids])).logits[0].float(), -1)
            start = branch.prefix_len + len(cue) - 1
            want = sum(float(logp[start + j, t]) for j, t in enumerate(cand))
            assert got[k][c] == pytest.approx(want, abs=1e-4)


# ---------------------------------------------------------------- the phases, end to end

FORCED_KEYS = {"budget_mode", "forced_answer", "forced_continues", "tokens_spent", "p_gold",
               "entropy_bits", "gold_rank", "truncated_correct"}


def phase1_forced(model_dir, dataset, results, mode, *extra):
    args = ["--model", str(model_dir), "--dataset", str(dataset), "--budgets", "4", "12",
            "--results-dir", str(results), "--quiet", "--batch-size", "2",
            "--budget-mode", mode, "--answer-tokens", "6", "--bootstrap-resamples", "50", *extra]
    return phase1_main.main(args)


def problems_of(dataset, data_dir):
    return load_dataset(str(dataset), None, 1234, data_dir, "numeric", "shipped").problems


def log_rows(path):
    lines = path.read_text().splitlines()[1:]
    return {json.loads(x)["problem_id"]: json.loads(x) for x in lines}


def test_force_end_phase_matches_fresh_generate(tiny_lm, tiny_model_dir, arith_file, tmp_path,
                                                capsys):
    results = tmp_path / "r"
    assert phase1_forced(tiny_model_dir, arith_file, results, "truncate") == 0
    assert phase1_forced(tiny_model_dir, arith_file, results, "force-end") == 0
    out = capsys.readouterr().out
    assert "force-end vs truncate" in out and "p_gold" in out
    tag = utils.model_tag(str(tiny_model_dir))
    # one rollout log, truncation's: force-end generated nothing of its own
    assert [p.name for p in (results / "rollouts").iterdir()] == [f"phase1_{tag}.jsonl"]
    rows = log_rows(results / "rollouts" / f"phase1_{tag}.jsonl")
    prompts = {p.problem_id: p.prompt for p in problems_of(arith_file, tmp_path)}
    cue = tiny_lm.tokenizer("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    for budget in (4, 12):
        plain = store.read_json(store.phase1_record_path(results, tag, budget))
        assert all(set(r) == set(RECORD_KEYS) for r in plain)  # truncation records unchanged
        forced = store.read_json(store.phase1_record_path(results, f"{tag}-force-end", budget))
        assert [r["truncated_correct"] for r in forced] == [r["correct"] for r in plain]
        for record in forced:
            assert set(record) == set(RECORD_KEYS) | FORCED_KEYS
            prompt = utils.chat_prompt_ids(tiny_lm.tokenizer, [prompts[record["problem_id"]]])[0]
            thinking = rows[record["problem_id"]]["token_ids"][:budget]
            if thinking and thinking[-1] in tiny_lm.eos_ids:
                thinking = thinking[:-1]
            want, logits = hf_greedy(tiny_lm, prompt + thinking + cue, 6)
            got = tiny_lm.tokenizer(record["forced_answer"], add_special_tokens=False)["input_ids"]
            if utils.decode_text(tiny_lm.tokenizer, want) != record["forced_answer"]:
                compare("force-end phase tiny", got, want, logits)
            assert record["tokens_spent"] == len(thinking) + len(cue) + len(want)
            assert 0 <= record["p_gold"] <= 1 and record["gold_rank"] >= 1
            assert record["forced_continues"] == 0 and record["budget_mode"] == "force-end"
    summary = store.read_json(store.phase1_combined_path(results, f"{tag}-force-end"))
    block = summary["forcing"]["budgets"]["12"]
    assert block["n"] == 6 and block["p_gold_ci_low"] <= block["p_gold"] <= block["p_gold_ci_high"]
    assert summary["provenance"]["strategy"] == "force-end"
    assert summary["provenance"]["rollouts_generated"] == 0  # truncation's rollouts, reused
    # figure 8 is drawn from the forced summary alone, and only for forced runs
    from study.figures import catalog
    from study.report import markdown
    from study.results import StudyResults

    forced_results = StudyResults(str(tiny_model_dir), f"{tag}-force-end", results, phase1=summary)
    saved, _ = catalog.render_all(forced_results, tmp_path / "fig", ["png"])
    assert f"fig8_budget_forcing_{tag}-force-end" in [f.stem for f in saved]
    text = markdown.build_report(forced_results, saved, [], tmp_path)
    assert "## Budget forcing" in text and "| 12 |" in text and "Mode **force-end**" in text
    plain_results = StudyResults(str(tiny_model_dir), tag, results,
                                 phase1=store.read_json(store.phase1_combined_path(results, tag)))
    saved, _ = catalog.render_all(plain_results, tmp_path / "fig", ["png"])
    assert not [f for f in saved if f.stem.startswith("fig6")]
    # batch size changes nothing; a finished forced run is reused
    other = tmp_path / "r2"
    assert phase1_forced(tiny_model_dir, arith_file, other, "force-end", "--batch-size", "5") == 0
    for budget in (4, 12):
        a = store.read_json(store.phase1_record_path(results, f"{tag}-force-end", budget))
        b = store.read_json(store.phase1_record_path(other, f"{tag}-force-end", budget))
        assert [r["forced_answer"] for r in a] == [r["forced_answer"] for r in b]
        assert [r["p_gold"] for r in a] == pytest.approx([r["p_gold"] for r in b], abs=1e-5)
    capsys.readouterr()
    assert phase1_forced(tiny_model_dir, arith_file, results, "force-end") == 0
    assert "reusing finished results" in capsys.readouterr().out


@pytest.fixture(scope="module")
def eos_prone_dir(tmp_path_factory, smol_tokenizer):
    """The tiny model with its EOS logit scaled up, so rows stop early (and get continued)."""
    folder = tmp_path_factory.mktemp("eos-prone")
    model = tiny_llama_for(smol_tokenizer)
    with torch.no_grad():
        model.lm_head.weight[smol_tokenizer.eos_token_id] *= 3
    model.save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


def by_hand_continue(lm, prompt, budget, wait, max_continues):
    """s1 by hand: generate; while it ends with EOS before the budget, replace the EOS by the
    continue string and generate again from there."""
    tokens, continues = [], 0
    while True:
        out, _ = hf_greedy(lm, prompt + tokens, budget - len(tokens))
        if out and out[-1] in lm.eos_ids and continues < max_continues:
            tokens += out[:-1] + wait
            continues += 1
            if len(tokens) >= budget:
                return tokens[:budget], continues
            continue
        return tokens + out, continues


def test_force_continue_matches_replacement_by_hand(eos_prone_dir, arith_file, tmp_path):
    from transformers import AutoModelForCausalLM

    results = tmp_path / "r"
    assert phase1_forced(eos_prone_dir, arith_file, results, "force-continue",
                         "--budgets", "8", "30", "--max-continues", "2",
                         "--continue-string", " Wait") == 0
    tag = utils.model_tag(str(eos_prone_dir))
    rows = log_rows(results / "rollouts" / f"phase1_{tag}-force-continue.jsonl")
    tok = utils.load_tokenizer(str(eos_prone_dir), tmp_path)
    model = AutoModelForCausalLM.from_pretrained(eos_prone_dir, dtype=torch.float32).eval()
    lm = utils.HFEngine(model, tok, torch.device("cpu"), "fp32", "eos-prone",
                           eos_token_ids(model, tok))
    wait = tok(" Wait", add_special_tokens=False)["input_ids"]
    prompts = {p.problem_id: p.prompt for p in problems_of(arith_file, tmp_path)}
    continued = 0
    for budget in (8, 30):
        records = store.read_json(store.phase1_record_path(results, f"{tag}-force-continue",
                                                           budget))
        for record in records:
            prompt = utils.chat_prompt_ids(tok, [prompts[record["problem_id"]]])[0]
            want, continues = by_hand_continue(lm, prompt, budget, wait, 2)
            assert rows[record["problem_id"]]["token_ids"][:budget] == want
            assert record["forced_continues"] == continues
            continued += continues
    assert continued > 0  # the test exercised the replacement


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_smollm2_forced_answers_and_continues_match_references(tmp_path):
    """SmolLM2 fp32 on 2 arith problems: force-end at 3 budgets against fresh ``generate``,
    force-continue (budget 96) against the replacement by hand (the first problem ends with
    EOS at 76 tokens, so it is continued; the second runs to the budget)."""
    from study.strategies.forcing_rollouts import continue_rounds

    lm = utils.load_model("smollm2-135m", "fp32", REPO / "data", "cpu")
    problems = load_dataset("arith", 2, 1234, REPO / "data").problems
    prompts = utils.chat_prompt_ids(lm.tokenizer, [p.prompt for p in problems])
    outs = lm.generate_rollouts(prompts, 96, utils.SamplingConfig(), [0] * 2, 2,
                                   progress=False)
    cue = lm.tokenizer("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    branches, thinking = [], []
    for i, out in enumerate(outs):
        for budget in (8, 32, 96):
            ids = list(out.token_ids[:budget])
            ids = ids[:-1] if ids and ids[-1] in lm.eos_ids else ids
            branches.append(utils.Branch(i, len(prompts[i]) + len(ids)))
            thinking.append(ids)
    seqs = [p + list(o.token_ids) for p, o in zip(prompts, outs)]
    got = lm.branch_answers(seqs, branches, cue, 16, batch_size=8)
    for branch, ids, answer in zip(branches, thinking, got):
        want, logits = hf_greedy(lm, prompts[branch.row] + ids + cue, 16)
        compare("force-end smollm2", list(answer.token_ids), want, logits)
    wait = lm.tokenizer("Wait", add_special_tokens=False)["input_ids"]
    rounds = continue_rounds(lm, prompts, 96, utils.SamplingConfig(), [[0] * 3] * 2, wait, 2, 2)
    made = []
    for prompt, row in zip(prompts, rounds):
        want, continues = by_hand_continue(lm, prompt, 96, wait, 2)
        assert row["token_ids"] == want and len(row["continued_at"]) == continues
        made.append(continues)
    assert made[0] >= 1  # the continue path itself ran
    print(f"{len(branches)} SmolLM2 force-end branches checked")



def test_phase3_force_end_reuses_phase1_rollouts(tiny_model_dir, arith_file, tmp_path):
    import phase3_cliff

    results = tmp_path / "r"
    assert phase1_forced(tiny_model_dir, arith_file, results, "force-end") == 0
    assert phase3_cliff.main(["--model", str(tiny_model_dir), "--dataset", str(arith_file),
                              "--budgets", "4", "8", "--results-dir", str(results), "--quiet",
                              "--batch-size", "3", "--budget-mode", "force-end",
                              "--answer-tokens", "6", "--bootstrap-resamples", "50"]) == 0
    tag = f"{utils.model_tag(str(tiny_model_dir))}-force-end"
    summary = store.read_json(store.phase3_cliff_summary_path(results, tag))
    assert summary["provenance"]["rollouts_generated"] == 0 and "forcing" in summary
    # the 4-token answers of phase 3 are phase 1's: same rollouts, same branches
    p1 = store.read_json(store.phase1_record_path(results, tag, 4))
    p3 = store.read_json(store.phase3_cliff_record_path(results, tag, 4))
    assert [r["forced_answer"] for r in p1] == [r["forced_answer"] for r in p3]
