"""The check that a demo run on another engine is the HF demo run: the same files, the greedy
phases (1, 3) equal to the digit and token by token, and phase 1b (sampled by another
generator) with pass@k inside the HF run's 95 % intervals and vice versa."""

from __future__ import annotations

import json
from pathlib import Path

from study import store

MODEL = "smollm2-135m"


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def phase1_tokens(results: Path) -> dict:
    path = store.rollouts_path(results, "phase1", MODEL)
    lines = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    return {row["problem_id"]: (row["token_ids"], row["eos"]) for row in lines}


def assert_same_demo(hf_demo: dict[str, Path], dirs: dict[str, Path], engine: str) -> None:
    """``dirs`` (a ``run_all.py --demo --engine ENGINE`` run) against the HF demo's."""
    hf, vl = hf_demo["results"], dirs["results"]

    assert files(vl) == files(hf)
    assert files(dirs["figures"]) == files(hf_demo["figures"])

    want, got = phase1_tokens(hf), phase1_tokens(vl)
    assert len(want) == 40
    differ = [pid for pid in want if got.get(pid) != want[pid]]
    assert not differ, f"phase-1 rollouts of {differ} differ from the HF engine's (greedy fp32)"
    # The tables print these summaries (one schema), so equal summaries = equal tables.
    for path in (store.phase1_combined_path, store.phase3_cliff_summary_path):
        a, b = store.read_json(path(hf, MODEL)), store.read_json(path(vl, MODEL))
        assert a["provenance"]["config"]["model"]["engine"] == "hf"
        assert b["provenance"]["config"]["model"]["engine"] == engine
        a.pop("provenance"), b.pop("provenance")
        assert b == a, f"{path.__name__}: the {engine} run's summary differs from the HF run's"
    hf_1b, vl_1b = (store.read_json(store.phase1b_summary_path(r, MODEL))["budgets"]
                    for r in (hf, vl))
    assert sorted(hf_1b) == sorted(vl_1b)
    for budget in hf_1b:
        for k, ours in vl_1b[budget]["pass_at_k"].items():
            theirs = hf_1b[budget]["pass_at_k"][k]
            lo, hi = hf_1b[budget]["pass_at_k_ci"][k]
            vlo, vhi = vl_1b[budget]["pass_at_k_ci"][k]
            assert lo <= ours <= hi and vlo <= theirs <= vhi, (
                f"phase 1b at {budget} tokens: pass@{k} {ours:.3f} on {engine} vs {theirs:.3f} "
                f"[{lo:.3f}, {hi:.3f}] on HF")
