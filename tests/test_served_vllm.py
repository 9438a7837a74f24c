"""The served engine (``--engine openai``) against a real vLLM server on 127.0.0.1: the same
program users run on GPU nodes, here vLLM's CPU build serving SmolLM2-135M in fp32
(``vllm_server`` in conftest). The HF engine is the reference. Slow; skipped only when vLLM is
not installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import phase1_main
import utils
from config import DEMO_CONFIG, load_yaml
from engine.openai import OpenAISettings
from study import store

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def phase1_tokens(results: Path) -> dict:
    """problem_id -> (token ids, eos) of the phase-1 rollout log."""
    path = store.rollouts_path(results, "phase1", MODEL)
    lines = [json.loads(x) for x in path.read_text().splitlines()[1:]]
    return {row["problem_id"]: (row["token_ids"], row["eos"]) for row in lines}


def served_flags(server) -> list[str]:
    return ["--engine", "openai", "--base-url", server.url, "--served-model", "smollm2-135m"]


def records(results: Path, budgets, tag: str = MODEL) -> dict[int, list[dict]]:
    return {b: store.read_json(store.phase1_record_path(results, tag, b)) for b in budgets}


def assert_records_match(got: dict, want: dict, tol: float = 1e-3) -> None:
    """Equal records; floats (p_gold, entropies: log-probabilities from two engines) within
    ``tol``."""
    assert sorted(got) == sorted(want)
    for budget in want:
        assert len(got[budget]) == len(want[budget])
        for a, b in zip(got[budget], want[budget]):
            assert a.keys() == b.keys()
            for key in b:
                if isinstance(b[key], float):
                    assert a[key] == pytest.approx(b[key], abs=tol), (budget, key)
                else:
                    assert a[key] == b[key], (budget, key, a["problem_id"])


def run_phase1(results: Path, *flags: str) -> None:
    assert phase1_main.main(["--config", str(DEMO_CONFIG), "--quiet", "--results-dir",
                             str(results), *flags]) == 0


def test_demo_phase1_matches_the_hf_demo(vllm_server, hf_demo, tmp_path):
    """The demo's phase 1 (40 prompts, greedy to 512 tokens) on the served engine: the HF demo
    run's rollouts token by token, its records and its table's numbers to the digit. (Forced
    answers and p_gold against HF: the force-continue test below forces every budget.)"""
    hf, served = hf_demo["results"], tmp_path / "served"
    run_phase1(served, *served_flags(vllm_server))
    want, got = phase1_tokens(hf), phase1_tokens(served)
    assert len(want) == 40 and got == want
    budgets = load_yaml(DEMO_CONFIG).phase1.budgets
    assert_records_match(records(served, budgets), records(hf, budgets), tol=0)
    a, b = (store.read_json(store.phase1_combined_path(r, MODEL)) for r in (hf, served))
    engine = b["provenance"]["engine"]
    assert engine["server"] == {"name": "vllm", "version": "0.32.0"}
    assert engine["token_ids_from"] == "token_ids" and engine["urls"] == [vllm_server.url]
    assert b["budgets"] == a["budgets"]  # the table prints these


def test_force_continue_matches_hf(vllm_server, tmp_path):
    """s1's force-continue by round trips on the served engine, token for token the HF
    engine's (its per-row budget hook), then force-end on those rollouts: the same forced
    answers, p_gold within 1e-3. The in-process vLLM engine: test_engine_vllm."""
    common = ["--num-samples", "6", "--budgets", "32", "128", "--budget-mode", "force-continue"]
    run_phase1(tmp_path / "hf", *common)
    run_phase1(tmp_path / "served", *common, *served_flags(vllm_server))
    tag = f"{MODEL}-force-continue"
    want = records(tmp_path / "hf", (32, 128), tag)
    assert any(r["forced_continues"] for r in want[128])  # the continue string was used
    assert_records_match(records(tmp_path / "served", (32, 128), tag), want)
    assert all(r["p_gold"] is not None and r["forced_answer"] for r in want[32])


def test_seeded_sampling_does_not_depend_on_the_concurrency(vllm_server):
    """16 seeded sampled requests (temperature 0.7), sent one at a time and all 16 at once:
    the same tokens."""
    request = utils.LoadRequest("smollm2-135m", "fp32", REPO / "data", local_only=True)
    prompts = [[1, 9690, 198, 2683, 314, 216, 33, 32 + k % 10, 33 + k // 10, 2]
               for k in range(16)]
    seeds = [utils.row_seed(1234, f"p{k}", 0) for k in range(16)]
    hot = utils.SamplingConfig(0.7, 0.9)
    out = {}
    for width in (1, 16):
        lm = utils.load_engine("openai", request, OpenAISettings(
            base_url=(vllm_server.url,), served_model="smollm2-135m", max_concurrency=width))
        out[width] = lm.generate_rollouts(prompts, 32, hot, seeds, progress=False)
    assert out[1] == out[16]
    assert len({r.token_ids for r in out[1]}) > 1


def test_a_wrong_model_name_is_one_line_and_writes_nothing(vllm_server, tmp_path, capsys):
    results = tmp_path / "results"
    args = ["--config", str(DEMO_CONFIG), "--results-dir", str(results), "--quiet",
            "--engine", "openai", "--base-url", vllm_server.url, "--served-model", "qwen-7b"]
    started = time.perf_counter()
    assert phase1_main.main(args) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {vllm_server.url} serves smollm2-135m, not 'qwen-7b': pass "
                   "--served-model smollm2-135m, or point --base-url at the server of that "
                   "model"]
    assert not results.exists() or not any(results.rglob("*.*"))


def wait_for_rows(log: Path, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) - 1 >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{log} did not reach {count} rollouts in {timeout} s")


def restart(server, tries: int = 3) -> None:
    """Start the killed server again; a start that fails (memory the other test worker holds
    for a while) is tried again after a pause."""
    for attempt in range(tries):
        server.launch()
        try:
            server.wait()
            return
        except RuntimeError:
            if attempt == tries - 1:
                raise
            server.kill()
            time.sleep(20)


def test_killed_client_and_killed_server_resume_to_the_same_records(vllm_server, tmp_path):
    """kill -9 of the client, then SIGKILL of the server mid-run and its restart: the same
    command, run again, ends with the record files of an uninterrupted run."""
    budgets = ["32", "96"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"

    def command(results: Path) -> list[str]:
        return [sys.executable, str(REPO / "phase1_main.py"), "--config", str(DEMO_CONFIG),
                "--num-samples", "8", "--budgets", *budgets, "--results-dir", str(results),
                "--quiet", *served_flags(vllm_server), "--max-concurrency", "2",
                "--max-retries", "1"]

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    assert subprocess.run(command(whole), cwd=REPO, env=env).returncode == 0
    log = store.rollouts_path(cut, "phase1", MODEL)
    client = subprocess.Popen(command(cut), cwd=REPO, env=env)
    wait_for_rows(log, 3)
    client.kill()  # SIGKILL: the rollouts appended so far stay
    client.wait()
    saved = len(log.read_text().splitlines()) - 1
    assert 3 <= saved < 8
    client = subprocess.Popen(command(cut), cwd=REPO, env=env, stderr=subprocess.PIPE,
                              text=True)
    wait_for_rows(log, saved + 2)
    vllm_server.kill(signal.SIGKILL)
    try:
        _, err = client.communicate(timeout=180)
        assert client.returncode == 2, err
        assert vllm_server.url in err and "rollouts are saved" in err, err
        assert "run the same command again to resume" in err
    finally:
        restart(vllm_server)  # back for the tests after this one, whatever happened
    assert subprocess.run(command(cut), cwd=REPO, env=env).returncode == 0
    for budget in map(int, budgets):
        a, b = (store.read_json(store.phase1_record_path(r, MODEL, budget)) for r in (whole, cut))
        assert a == b
    summaries = [store.read_json(store.phase1_combined_path(r, MODEL)) for r in (whole, cut)]
    for s in summaries:
        s.pop("provenance")
    assert summaries[0] == summaries[1]
    rows = [json.loads(x) for x in log.read_text().splitlines()[1:]]
    assert len({r["problem_id"] for r in rows}) == 8  # each rollout saved once
