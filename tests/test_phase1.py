"""Phase 1 end to end on a tiny model: files, schema, reuse, resume after SIGKILL, bad inputs."""

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
import run_all
from engine.hf import model as hf_model
from study import store
from study.run import runner

REPO = Path(__file__).resolve().parent.parent
RECORD_KEYS = {"problem_id", "question", "ground_truth", "generated", "predicted",
               "predicted_strict", "correct", "correct_strict", "tokens_used", "budget",
               "hit_budget", "sample", "thinking_tokens", "closed_thinking", "answer_present"}


def phase1_args(model_dir, dataset, results, *extra):
    return ["--model", str(model_dir), "--dataset", str(dataset), "--budgets", "4", "12",
            "--results-dir", str(results), "--quiet", "--batch-size", "2", *extra]


def strip_timing(summary: dict) -> dict:
    summary = json.loads(json.dumps(summary))
    prov = summary.pop("provenance")
    return {"summary": summary, "fingerprint": prov["fingerprint"]}


def test_phase1_writes_spec_files(tiny_model_dir, arith_file, tmp_path, capsys):
    results = tmp_path / "results"
    assert phase1_main.main(phase1_args(tiny_model_dir, arith_file, results)) == 0
    combined = list(results.glob("phase1_combined_*.json"))
    assert len(combined) == 1
    tag = combined[0].name[len("phase1_combined_"):-len(".json")]
    small = store.read_json(store.phase1_record_path(results, tag, 4))
    large = store.read_json(store.phase1_record_path(results, tag, 12))
    assert len(small) == len(large) == 6
    assert set(small[0]) == RECORD_KEYS
    # SmolLM2's tokenizer has no thinking markers: the thinking fields are null, no block
    assert all(r[k] is None for r in small + large
               for k in ("thinking_tokens", "closed_thinking", "answer_present"))
    for a, b in zip(small, large, strict=True):
        assert a["problem_id"] == b["problem_id"] and a["budget"] == 4 and b["budget"] == 12
        assert a["tokens_used"] == 4 and a["hit_budget"]  # a random model never stops early
        assert b["generated"].startswith(a["generated"][: max(0, len(a["generated"]) - 8)])
    summary = store.read_json(combined[0])
    assert "thinking" not in summary
    row = summary["budgets"]["4"]
    assert row["n"] == 6 and 0.0 <= row["ci_low"] <= row["accuracy"] <= row["ci_high"] <= 1.0
    prov = summary["provenance"]
    assert prov["config"]["phase1"]["budgets"] == [4, 12] and prov["seed"] == 1234
    assert prov["budgets"] == [4, 12] and prov["strategy"] == "truncation"
    assert prov["packages"]["torch"] and prov["generated_tokens"] == 6 * 12
    assert set(prov["record_files"]) == {p.name for p in results.glob("phase1_main_*.json")}
    out = capsys.readouterr().out
    assert "Budget" in out and "Accuracy" in out and "Avg Tokens" in out
    # A second run reuses the finished phase and generates nothing.
    assert phase1_main.main(phase1_args(tiny_model_dir, arith_file, results)) == 0
    assert "reusing finished results" in capsys.readouterr().out


def test_different_config_over_finished_results_is_refused(tiny_model_dir, arith_file,
                                                            tmp_path, capsys):
    results = tmp_path / "results"
    assert phase1_main.main(phase1_args(tiny_model_dir, arith_file, results)) == 0
    before = {p: p.read_bytes() for p in results.rglob("*.json*")}
    code = phase1_main.main(phase1_args(tiny_model_dir, arith_file, results, "--seed", "9"))
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and "seed" in err
    assert before == {p: p.read_bytes() for p in results.rglob("*.json*")}
    assert phase1_main.main(phase1_args(tiny_model_dir, arith_file, results, "--seed", "9",
                                        "--overwrite")) == 0


def _wait_for_rollouts(log: Path, at_least: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) > at_least:
            return
        if proc.poll() is not None:
            pytest.fail(f"phase 1 ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("phase 1 made no progress")


@pytest.mark.slow  # a killed subprocess and three full runs: a minute on 2 cores
def test_kill_and_resume_equals_uninterrupted_run(tiny_model_dir, tmp_path, sums_file):
    dataset = sums_file(tmp_path / "many.jsonl", [(i, i) for i in range(40)])
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    argv = ["--model", str(tiny_model_dir), "--dataset", str(dataset), "--budgets", "16", "64",
            "--batch-size", "1", "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "phase1_main.py"), *argv,
                             "--results-dir", str(killed)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = killed / "rollouts"
    _wait_for_rollouts_dir(logs, 3, proc, timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log = next(logs.glob("phase1_*.jsonl"))
    done_before = len(log.read_text().splitlines()) - 1
    assert 3 <= done_before < 40, "the kill must land mid-run"
    assert not list(killed.glob("phase1_combined_*.json"))
    # A different config over the partial results fails clearly and leaves them alone.
    code = phase1_main.main([*argv, "--results-dir", str(killed), "--seed", "5"])
    assert code == 2 and len(log.read_text().splitlines()) - 1 == done_before
    # The same command resumes and finishes; results equal an uninterrupted run's.
    assert phase1_main.main([*argv, "--results-dir", str(killed)]) == 0
    assert phase1_main.main([*argv, "--results-dir", str(clean)]) == 0
    for path in clean.glob("phase1_main_*.json"):
        assert path.read_bytes() == (killed / path.name).read_bytes()
    resumed = store.read_json(next(killed.glob("phase1_combined_*.json")))
    fresh = store.read_json(next(clean.glob("phase1_combined_*.json")))
    assert strip_timing(resumed) == strip_timing(fresh)
    assert resumed["provenance"]["rollouts_resumed_or_reused"] >= done_before
    assert resumed["provenance"]["record_files"] == fresh["provenance"]["record_files"]


def _wait_for_rollouts_dir(logs: Path, at_least: int, proc, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not (logs.exists() and list(logs.glob("*.jsonl"))):
        if proc.poll() is not None:
            pytest.fail(f"phase 1 ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    _wait_for_rollouts(next(logs.glob("*.jsonl")), at_least, proc, timeout)


BAD_INPUTS = [
    (["--model", "no-such-model"], "unknown model"),
    (["--dataset", "no-such-set"], "unknown dataset"),
    (["--dataset", "missing.jsonl"], "file not found"),
    (["--budgets", "0"], "not a positive integer"),
    (["--budgets", "-32"], "not a positive integer"),
    (["--budgets", "1.5"], "not a positive integer"),
    (["--budgets", "abc"], "not a positive integer"),
    (["--num-samples", "0"], "not a positive integer"),
    (["--precision", "fp8"], "invalid choice"),
    (["--top-p", "2"], "between 0 and 1"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS)
def test_bad_inputs_are_one_clear_line_and_write_nothing(flags, message, tmp_path, capsys):
    results = tmp_path / "results"
    base = ["--model", "smollm2-135m", "--dataset", "arith", "--results-dir", str(results)]
    with pytest.raises(SystemExit) as exc:
        code = phase1_main.main(base + flags)
        raise SystemExit(code)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not results.exists()


@pytest.mark.parametrize("flags,message", [
    (["--phase1", "--model", "nope"], "unknown model"),
    (["--phase1", "--budgets", "0"], "not a positive integer"),
    (["--phase1", "--num-samples", "0"], "not a positive integer"),
    (["--all", "--dataset", "nope"], "unknown dataset"),
])
def test_run_all_bad_inputs(flags, message, tmp_path, capsys):
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(run_all.main([*flags, "--results-dir", str(results)]))
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not results.exists()


def test_missing_model_offline_is_a_clear_error_within_seconds(tmp_path, capsys, monkeypatch,
                                                               arith_file):
    def no_route(*args, **kwargs):  # what an offline machine answers; no packet leaves here
        raise OSError(-2, "Name or service not known")

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("engine.hub.socket.create_connection", no_route)
    results = tmp_path / "results"
    started = time.perf_counter()
    code = phase1_main.main(["--model", "some-org/not-downloaded-model", "--dataset",
                             str(arith_file), "--results-dir", str(results), "--quiet"])
    assert time.perf_counter() - started < 5  # was ~50 s of huggingface_hub retries
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot load model" in err and len(err.splitlines()) == 1
    assert "hub is unreachable" in err and "--model smollm2-135m" in err
    assert not list(results.rglob("*.json*"))


def test_other_budgets_are_rederived_from_stored_rollouts(tiny_model_dir, arith_file, tmp_path,
                                                          capsys, monkeypatch):
    results = tmp_path / "results"
    assert phase1_main.main(phase1_args(tiny_model_dir, arith_file, results)) == 0
    capsys.readouterr()

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(hf_model, "load_model", no_model)
    argv = phase1_args(tiny_model_dir, arith_file, results)
    argv[argv.index("--budgets") + 1] = "6"  # budgets 6 12: same largest budget, same rollouts
    assert phase1_main.main(argv) == 0
    out = capsys.readouterr().out
    assert "reusing" not in out and "\n6 " in out
    combined = store.read_json(next(results.glob("phase1_combined_*.json")))
    assert sorted(int(b) for b in combined["budgets"]) == [6, 12]
    assert combined["provenance"]["rollouts_generated"] == 0


def test_an_internal_error_is_a_bug_with_a_traceback_not_a_user_error(monkeypatch, arith_file):
    """Only the project's user-error classes end as one line with exit 2."""
    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(runner, "run_budget_phase", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        phase1_main.main(["--model", "smollm2-135m", "--dataset", str(arith_file)])
