"""Sharded phases (--shard i/n, accelerate launch) merge into exactly the single-process files.

The reference is always a plain one-process run of the same command; record files must be
byte-identical and summaries equal except timing and provenance fields.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import phase1_main
import phase1b_stochastic
import run_all
from study import shards, store
from study.run import sharding

REPO = Path(__file__).resolve().parent.parent
# Provenance fields that may differ between a single process and a merge (timing, where reused
# rollouts were read from, how the work was split); everything else must match, the config too
# except its paths and run options.
VOLATILE = {"wall_time_s", "written_at", "generation_s", "tokens_per_s", "shards",
            "reused_rollouts_from", "rollouts_generated", "rollouts_resumed_or_reused",
            "generated_tokens", "model_load_s", "forcing_s"}


def comparable(summary: dict) -> dict:
    summary = json.loads(json.dumps(summary))
    summary["provenance"] = {k: v for k, v in summary["provenance"].items()
                             if k not in VOLATILE}
    for section in ("paths", "run"):  # other folders, and --shard / --merge themselves
        summary["provenance"]["config"].pop(section)
    return summary


def assert_same_results(sharded: Path, single: Path) -> None:
    """Every result file of ``single`` exists in ``sharded``: records byte-identical,
    summaries equal up to the volatile provenance fields."""
    # timings.json says how long this run took, not what it found: it is not a result
    files = sorted(p.name for p in single.glob("*.json") if p.name != "timings.json")
    assert files and files == sorted(p.name for p in sharded.glob("*.json")
                                     if p.name != "timings.json")
    for name in files:
        a, b = (sharded / name).read_bytes(), (single / name).read_bytes()
        data = json.loads(a)
        if isinstance(data, list):
            assert a == b, f"{name} differs"
        else:
            assert comparable(data) == comparable(json.loads(b)), f"{name} differs"


def phase1b_args(model_dir, dataset, results, *extra):
    return ["--model", str(model_dir), "--dataset", str(dataset), "--results-dir", str(results),
            "--budgets", "4", "12", "--samples", "2", "--batch-size", "3", "--quiet",
            "--bootstrap-resamples", "100", *extra]


def test_three_shards_merge_into_the_single_process_files(tiny_model_dir, arith_file, tmp_path,
                                                          capsys):
    """Phase 1b (k = 2 sampled rollouts per problem): shards 0/3, 2/3, then 1/3, which merges."""
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert phase1b_stochastic.main(phase1b_args(tiny_model_dir, arith_file, single)) == 0
    for shard in ("0/3", "2/3"):
        assert phase1b_stochastic.main(
            phase1b_args(tiny_model_dir, arith_file, sharded, "--shard", shard)) == 0
    out = capsys.readouterr().out
    assert "waiting for shards 1/3" in out and not list(sharded.glob("*.json"))
    # A merge now names the missing shard file and writes nothing.
    code = phase1b_stochastic.main(phase1b_args(tiny_model_dir, arith_file, sharded, "--merge"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert ".shard1of3.json: missing" in err and "--shard 1/3" in err
    assert not list(sharded.glob("*.json"))
    # The last shard to finish merges.
    assert phase1b_stochastic.main(
        phase1b_args(tiny_model_dir, arith_file, sharded, "--shard", "1/3")) == 0
    assert "merged 3 shards" in capsys.readouterr().out
    assert_same_results(sharded, single)
    summary = store.read_json(next(sharded.glob("phase1b_summary_*.json")))
    shards = summary["provenance"]["shards"]
    assert shards["count"] == 3 and shards["world_size"] == [1, 1, 1]
    assert len(shards["files"]) == 3
    assert summary["provenance"]["rollouts_total"] == 6 * 2  # shard counts add up
    # The merged rollout log serves a later single-process run (other budgets, no generation).
    whole = next((sharded / "rollouts").glob("phase1b_*.jsonl"))
    assert len(whole.read_text().splitlines()) == 1 + 6 * 2
    # --merge on a merged phase reuses it.
    assert phase1b_stochastic.main(
        phase1b_args(tiny_model_dir, arith_file, sharded, "--merge")) == 0
    assert "reusing finished results" in capsys.readouterr().out


def test_a_stale_shard_is_named(tiny_model_dir, arith_file, tmp_path, capsys):
    results = tmp_path / "results"
    base = ["--model", str(tiny_model_dir), "--dataset", str(arith_file), "--budgets", "4",
            "--results-dir", str(results), "--quiet"]
    assert phase1_main.main([*base, "--shard", "0/2"]) == 0
    # Shard 1/2 under another seed: shard 0/2 does not count as done (it may be re-running).
    assert phase1_main.main([*base, "--shard", "1/2", "--seed", "5"]) == 0
    assert "waiting for shards 0/2 (made under a different configuration" in (
        capsys.readouterr().out)
    # The merge names the stale file and what changed, and writes nothing.
    assert phase1_main.main([*base, "--merge", "--seed", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ".shard0of2.json: made under a different configuration" in err and "seed" in err
    assert "--shard 0/2" in err
    assert not list(results.glob("*.json"))


@pytest.mark.parametrize("flags,message", [
    (["--shard", "3/3"], "expected i/n with 0 <= i < n"),
    (["--shard", "1"], "expected i/n"),
    (["--shard", "a/b"], "expected i/n"),
    (["--shard=-1/2"], "expected i/n"),
    (["--shard", "0/0"], "expected i/n"),
    (["--shard", "0/2", "--merge"], "drop --shard 0/2"),
])
def test_bad_shard_flags_are_one_clear_line(flags, message, tmp_path, capsys):
    results = tmp_path / "results"
    code = phase1_main.main(["--model", "smollm2-135m", "--dataset", "arith",
                             "--results-dir", str(results), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "--shard" in err and len(err.splitlines()) == 1
    assert not results.exists()


def test_merge_without_shard_files_says_so(tiny_model_dir, arith_file, tmp_path, capsys):
    results = tmp_path / "results"
    code = phase1_main.main(["--model", str(tiny_model_dir), "--dataset", str(arith_file),
                             "--results-dir", str(results), "--merge", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no shard files" in err and "--shard i/n" in err


def test_round_robin_keeps_a_problem_in_its_shard_for_any_prefix():
    items = list(range(10))
    parts = [shards.select(items, f"{i}/3") for i in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]
    assert shards.select(items[:7], "1/3") == [x for x in parts[1] if x < 7]


def test_combined_stats_add_counts_and_take_the_slowest_shard():
    parts = [{"rollouts_total": 3, "generated_tokens": 30, "generation_s": 2.0,
              "tokens_per_s": 15.0, "device": "cpu (fp32)", "batch_size": 4},
             {"rollouts_total": 2, "generated_tokens": 20, "generation_s": 4.0,
              "tokens_per_s": 5.0, "device": "cpu (fp32)", "batch_size": 4}]
    merged = sharding.combine_stats(parts)
    assert merged["rollouts_total"] == 5 and merged["generated_tokens"] == 50
    assert merged["generation_s"] == 4.0 and merged["tokens_per_s"] == 12.5
    assert merged["device"] == "cpu (fp32)" and merged["batch_size"] == 4


# ------------------------------------------------------------------ separate processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def study_flags(model_dir, dataset, results) -> list[str]:
    return ["--model", str(model_dir), "--dataset", str(dataset), "--device", "cpu",
            "--budgets", "4", "12", "--cliff-budgets", "4", "8", "--batch-size", "2",
            "--bootstrap-resamples", "100", "--results-dir", str(results), "--quiet"]


@pytest.mark.slow  # two accelerate processes and a single run
def test_accelerate_two_processes_equal_one(tiny_model_dir, arith_file, tmp_path):
    """run_all.py --phase1 --phase3 under `accelerate launch` with 2 CPU processes (gloo):
    rank k runs shard k/2 of each phase (phase 3 reads its own shard of phase 1's rollouts),
    rank 0 merges after a barrier and runs the structure analysis."""
    single, launched = tmp_path / "single", tmp_path / "launched"
    assert run_all.main(["--phase1", "--phase3",
                         *study_flags(tiny_model_dir, arith_file, single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               str(REPO / "run_all.py"), "--phase1", "--phase3",
               *study_flags(tiny_model_dir, arith_file, launched)]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("merged 2 shards") == 2  # phase 1 and phase 3, by rank 0 only
    assert_same_results(launched, single)
    for summary in launched.glob("*summary_*.json"):
        assert store.read_json(summary)["provenance"]["shards"]["world_size"] == [2, 2]
    cliff = store.read_json(next(launched.glob("phase3_cliff_summary_*.json")))
    assert cliff["provenance"]["rollouts_generated"] == 0  # each rank reused its phase-1 shard


def _wait_for_rows(folder: Path, at_least: int, proc: subprocess.Popen, timeout: float) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = list(folder.glob("*.jsonl")) if folder.exists() else []
        if logs and len(logs[0].read_text().splitlines()) > at_least:
            return logs[0]
        if proc.poll() is not None:
            pytest.fail(f"the shard ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("the shard made no progress")


@pytest.mark.slow  # a killed subprocess, three shard runs and a single run
def test_a_killed_shard_resumes_and_merges_into_the_single_process_files(tiny_model_dir,
                                                                         tmp_path, sums_file):
    dataset = sums_file(tmp_path / "many.jsonl", [(i, i) for i in range(24)])
    killed, single = tmp_path / "killed", tmp_path / "single"
    argv = ["--model", str(tiny_model_dir), "--dataset", str(dataset), "--budgets", "8", "32",
            "--batch-size", "3", "--quiet"]  # 12 problems a shard: 4 batches of 3 rows
    proc = subprocess.Popen([sys.executable, str(REPO / "phase1_main.py"), *argv,
                             "--results-dir", str(killed), "--shard", "0/2"], cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = _wait_for_rows(killed / "shards", 3, proc, timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert log.name.endswith(".shard0of2.jsonl")
    done_before = len(log.read_text().splitlines()) - 1
    assert 3 <= done_before < 12, "the kill must land mid-shard"
    assert not list((killed / "shards").glob("*.json"))  # the shard file comes at the end
    for shard in ("1/2", "0/2"):  # the killed shard resumes last and merges
        assert phase1_main.main([*argv, "--results-dir", str(killed), "--shard", shard]) == 0
    assert phase1_main.main([*argv, "--results-dir", str(single)]) == 0
    assert_same_results(killed, single)
    shard0 = store.read_json(next((killed / "shards").glob("*.shard0of2.json")))
    assert shard0["stats"]["rollouts_resumed_or_reused"] >= done_before


def test_quantised_weights_go_to_the_ranks_own_gpu(monkeypatch):
    """Under accelerate each rank's current CUDA device is its own; "cuda" without an index
    must place nf4/int8 weights there, not on GPU 0."""
    import torch

    from engine import loading

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert loading.load_kwargs("nf4", torch.device("cuda"))["device_map"] == {"": 3}
    assert loading.load_kwargs("int8", torch.device("cuda:1"))["device_map"] == {"": 1}


@pytest.mark.parametrize("strategy", [
    ["--budget-mode", "force-end", "--answer-tokens", "4"],
    ["--budget-mode", "force-continue", "--answer-tokens", "4", "--max-continues", "2"],
    ["--decoding", "power", "--temperature", "1", "--power-blocks", "2",
     "--power-mcmc-steps", "2"],
], ids=["force-end", "force-continue", "power"])
def test_other_strategies_shard_at_the_problem_boundary(strategy, tiny_model_dir, arith_file,
                                                        tmp_path):
    """Sharding sits in the runner, so every compute strategy merges into its 1-process files."""
    def args(results, *extra):
        return ["--model", str(tiny_model_dir), "--dataset", str(arith_file), "--budgets", "4",
                "8", "--batch-size", "3", "--results-dir", str(results), "--quiet",
                "--bootstrap-resamples", "50", *strategy, *extra]

    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert phase1_main.main(args(single)) == 0
    assert phase1_main.main(args(sharded, "--shard", "1/2")) == 0
    assert phase1_main.main(args(sharded, "--shard", "0/2")) == 0  # the last one merges
    assert_same_results(sharded, single)
