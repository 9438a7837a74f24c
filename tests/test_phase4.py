"""--decoding power through the strategy seam (file names, fingerprints, tokens_spent,
acceptance rate) and phase4_compute's comparison on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import phase1_main
import phase1b_stochastic
import phase4_compute
import utils
import visualize
from config import StudyConfig
from study import store
from study.analysis import compute
from study.strategies.rollouts import GenerationPlan, rollout_config

POWER = ["--power-blocks", "2", "--power-mcmc-steps", "2"]


def test_power_changes_the_tag_and_the_fingerprint():
    cfg = StudyConfig().replace({"model.name": "smollm2-135m"})
    power = cfg.replace({"generation.decoding": "power"})
    assert (cfg.model_tag, power.model_tag) == ("smollm2-135m", "smollm2-135m-power")
    plan = GenerationPlan("phase1b", (8,), 2, 3, utils.SamplingConfig(0.7, 0.9))
    plain = rollout_config(cfg, plan, [])
    assert "decoding" not in plain  # plain fingerprints are unchanged
    keyed = rollout_config(power, plan, [])
    assert keyed["decoding"] == "power" and keyed["power_mcmc_steps"] == 10
    more = rollout_config(power.replace({"power.mcmc_steps": 3}), plan, [])
    assert store.fingerprint(more) != store.fingerprint(keyed)


def test_pareto_frontier_by_hand():
    def pt(tokens, acc, oracle=False):
        return {"tokens_per_problem": tokens, "accuracy": acc, "oracle": oracle, "pareto": False}

    points = [pt(10, 0.5), pt(20, 0.4), pt(20, 0.6), pt(40, 0.6), pt(5, 0.9, oracle=True)]
    compute.mark_pareto(points)
    assert [p["pareto"] for p in points] == [True, False, True, False, False]


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_model_dir, sums_file):
    """Phase 1, phase 1b and phase 4 (which makes the power runs) on the tiny model."""
    root = tmp_path_factory.mktemp("p4")
    data = sums_file(root / "mini.jsonl", [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9)])
    results = root / "results"
    common = ["--model", str(tiny_model_dir), "--dataset", str(data), "--results-dir",
              str(results), "--quiet", "--seed", "3"]
    assert phase1_main.main([*common, "--budgets", "4", "8", "--num-samples", "5"]) == 0
    boot = ["--bootstrap-resamples", "50"]
    assert phase1b_stochastic.main([*common, *boot, "--budgets", "4", "8", "--samples", "2",
                                    "--num-samples", "4"]) == 0
    # power: 3 problems, so the comparison is over the 3 every run has
    args = [*common, *boot, "--stochastic-budgets", "6", "12", "--samples", "2",
            "--stochastic-num-samples", "3", *POWER]
    assert phase4_compute.main(args) == 0
    return common, args, results, tiny_model_dir


def test_power_run_counts_every_proposed_token(study):
    _, _, results, model = study
    tag = f"{Path(model).name}-power"
    summary = json.loads(store.phase1b_summary_path(results, tag).read_text())
    prov = summary["provenance"]
    assert prov["strategy"] == "power" and prov["rollout_config"]["decoding"] == "power"
    for budget in (6, 12):
        path = store.power_rollouts_path(results, "phase1b", tag, budget)
        chains = [json.loads(line) for line in path.read_text().splitlines()[1:]]
        assert len(chains) == 3 * 2
        proposed = sum(c["tokens_proposed"] for c in chains)
        assert prov["tokens_spent"][str(budget)] == proposed
        assert proposed > sum(len(c["token_ids"]) for c in chains)
        block = prov["power"]["budgets"][str(budget)]
        assert block["proposals"] == 6 * 2 * 2  # chains x blocks x MH steps (no EOS here)
        assert block["acceptance_rate"] == block["accepted"] / block["proposals"]
        records = json.loads(store.phase1b_record_path(results, tag, budget).read_text())
        assert all(r["tokens_used"] <= budget for r in records)


def test_phase4_summary_and_figure(study, tmp_path, capsys):
    common, args, results, model = study
    base = Path(model).name
    summary = json.loads(store.phase4_compute_path(results, base).read_text())
    assert summary["n_problems"] == 3
    kinds = {p["strategy"] for p in summary["points"]}
    assert kinds == {"truncation", "majority", "pass", "power"}
    power = [p for p in summary["points"] if p["strategy"] == "power"]
    for p in power:
        row = summary["budgets"][str(p["budget"])]
        assert p["tokens_per_problem"] == row["tokens_per_chain"] > p["tokens_used"]
    maj2 = next(p for p in summary["points"] if p["strategy"] == "majority" and p["k"] == 2)
    maj1 = next(p for p in summary["points"] if p["strategy"] == "majority" and p["k"] == 1
                and p["budget"] == maj2["budget"])
    assert maj2["tokens_per_problem"] == pytest.approx(2 * maj1["tokens_per_problem"], rel=0.5)
    assert all(p["ci_low"] is not None for p in summary["points"])
    # a second run reuses the power results: nothing is generated or rewritten
    power_summary = store.phase1b_summary_path(results, f"{base}-power")
    before = power_summary.read_text()
    capsys.readouterr()
    assert phase4_compute.main(args) == 0
    assert power_summary.read_text() == before
    printed = capsys.readouterr().out
    assert "power sampling (alpha=4.0, 2 blocks, 2 MH steps) at 12: acceptance" in printed
    figures = tmp_path / "figs"
    assert visualize.main(["--model", str(model), "--results-dir", str(results),
                           "--figures-dir", str(figures), "--format", "png"]) == 0
    assert (figures / f"fig11_compute_matched_{base}.png").exists()
    report = (results / f"report_{base}.md").read_text()
    assert "Phase 4 — compute-matched comparison" in report and "Acceptance" in report


def test_phase4_reads_another_budget_mode_when_present(study, tmp_path):
    """A phase-1 run of another budget mode (e.g. force-end) becomes its own strategy, costed
    by the tokens its run spent."""
    _, args, results, model = study
    copy = Path(shutil.copytree(results, tmp_path / "results"))
    base = Path(model).name
    summary = json.loads(store.phase1_combined_path(copy, base).read_text())
    summary["provenance"].update(strategy="force-end", tokens_spent={"4": 50, "8": 90})
    store.write_json(store.phase1_combined_path(copy, f"{base}-force-end"), summary)
    for b in (4, 8):
        shutil.copy(store.phase1_record_path(copy, base, b),
                    store.phase1_record_path(copy, f"{base}-force-end", b))
    redirected = [a if a != str(results) else str(copy) for a in args]
    assert phase4_compute.main(redirected) == 0
    out = json.loads(store.phase4_compute_path(copy, base).read_text())
    forced = {p["budget"]: p for p in out["points"] if p["strategy"] == "force-end"}
    assert forced[4]["tokens_per_problem"] == pytest.approx(50 / 5)  # 5 records in that run
    assert forced[8]["tokens_per_problem"] == pytest.approx(90 / 5)
