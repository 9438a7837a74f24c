"""The generation benchmark runs small on CPU: same work for both engines, identical greedy."""

from __future__ import annotations

import contextlib
import io
import json
import statistics

import pytest
import torch

from bench import bench_generation as bench
from bench import workload
from config import StudyConfig


def test_stop_lengths_follow_the_spec_distribution():
    lengths = workload.stop_lengths(4000, 2048, seed=5)
    beyond = sum(n > 2048 for n in lengths) / len(lengths)
    assert abs(statistics.median(lengths) - 280) < 25
    assert 0.08 < beyond < 0.12
    assert min(lengths) >= 1 and max(lengths) == 2049
    assert lengths == workload.stop_lengths(4000, 2048, seed=5)


def test_forced_stops_mask_eos_before_and_force_it_at_the_stop():
    logits = torch.zeros(3, 10)
    logits[:, 2] = 5.0  # EOS would win everywhere
    out = workload.force_stops(logits, torch.tensor([0, 3, 4]), torch.tensor([5, 4, 9]), (2, 7))
    choice = out.argmax(dim=-1).tolist()
    assert choice[1] == 2  # step 3 is the 4th token: the stop
    assert choice[0] != 2 and choice[2] != 2 and out[0, 7] == float("-inf")
    assert torch.isinf(out[1]).sum() == 9  # only EOS survives at the stop


def test_workload_reuses_phase1_for_phase3_only_when_budgets_fit():
    prompts = [[1, 2, 3]] * 4
    work = workload.build_workload(prompts, [16, 32], [12, 20], [16], 3, 1, "ids")
    names = {p.name: p for p in work.phases}
    assert names["phase3"].reuses == "phase1" and names["phase1"].reuses is None
    assert len(names["phase1b"].prompt_index) == 12
    assert names["phase3"].stops == names["phase1"].stops
    wider = workload.build_workload(prompts, [16], [12, 20], [], 0, 1, "ids")
    assert [p.name for p in wider.phases] == ["phase1", "phase3"]
    assert wider.phases[1].reuses is None


def test_defaults_are_the_study_config():
    cfg, args = StudyConfig(), bench.build_parser().parse_args([])
    assert tuple(args.budgets) == cfg.phase1.budgets
    assert tuple(args.cliff_budgets) == cfg.phase3.budgets
    assert tuple(args.stochastic_budgets) == cfg.phase1b.budgets
    assert (args.samples, args.seed) == (cfg.phase1b.samples, cfg.seed)
    work = workload.build_workload([[1, 2, 3]] * 2, [16], [], [16], 2, 1, "ids")
    sampling = {p.name: p.sampling for p in work.phases}
    assert sampling["phase1"].greedy
    assert (sampling["phase1b"].temperature, sampling["phase1b"].top_p) == (
        cfg.phase1b.temperature, cfg.phase1b.top_p)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The benchmark at test size: (its JSON report, what it wrote on stderr)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = bench.main(["--model", "tiny", "--num-prompts", "6", "--batch-size", "3",
                           "--budgets", "8", "16", "24", "--cliff-budgets", "12", "20",
                           "--stochastic-budgets", "12", "16", "--samples", "2",
                           "--device", "cpu", "--out", str(out)])
    assert code == 0
    return json.loads(out.read_text()), stderr.getvalue()


@pytest.fixture(scope="module")
def report(run):
    return run[0]


def test_benchmark_shows_progress(run):
    """A line per stage (the SmolLM2 workload used to run minutes in silence)."""
    lines = [line for line in run[1].splitlines() if line.startswith("[bench")]
    stages = " | ".join(lines)
    for stage in ("loading tiny", "ours phase1", "ours phase3: read off phase1",
                  "ours phase1b", "baseline phase1", "baseline phase1b", "done"):
        assert stage in stages


def test_benchmark_report_structure(report):
    for engine in ("baseline", "ours"):
        run = report[engine]
        assert run["precision"] == "fp32" and run["wall_s"] > 0 and run["peak_mem_mib"] > 0
        assert run["tokens_per_s"] == pytest.approx(run["generated_tokens"] / run["wall_s"],
                                                    rel=0.01)
        assert set(run["phases"]) == {"phase1", "phase3", "phase1b"}
    assert report["ours"]["phases"]["phase3"]["reused"] == "phase1"
    assert report["baseline"]["phases"]["phase1"]["calls"] == 3 * 2  # budgets x batches
    assert report["speedup"] > 0
    assert report["workload"]["num_prompts"] == 6
    assert report["device"].startswith("cpu")


def test_benchmark_engines_do_the_same_greedy_work(report):
    check = report["check"]
    assert check["greedy_identical"] is True and check["rows_mismatched"] == 0
    assert check["rows_compared"] == 6 * 5  # phase-1 and phase-3 budgets, every prompt
    # ours generates each row once; the baseline regenerates it at every budget
    assert report["ours"]["generated_tokens"] < report["baseline"]["generated_tokens"]


# ---------------------------------------------------------------- bench_engines (no server)


def _row(engine, tok_s, sha, **extra):
    row = {"engine": engine, "device": "cpu", "tokens": 5122, "startup_s": 1.0,
           "generation_s": 5122 / tok_s, "tokens_per_s": tok_s, "force_end_s": 50.0,
           "force_end_branches": 260, "wall_s": 100.0, "tokens_per_s_with_startup": tok_s,
           "cpu_s": 10.0, "one_token_ms": None, "peak_rss_gib": 1.0, "tokens_sha256": sha}
    return {**row, **extra}


def test_bench_engines_flags():
    from bench import bench_engines

    args = bench_engines.build_parser().parse_args(
        ["--engines", "hf", "openai", "--max-concurrency", "16", "40"])
    assert args.engines == ["hf", "openai"] and args.max_concurrency == [16, 40]
    assert bench_engines.ENGINE_NAMES == ("hf", "vllm", "openai")
    assert bench_engines.default_engines() in (["hf"], ["hf", "vllm", "openai"])
    with pytest.raises(SystemExit):
        bench_engines.build_parser().parse_args(["--engines", "sglang"])
    cfg = bench_engines.study_config("openai", "http://127.0.0.1:1/v1", 40)
    assert cfg.model.engine == "openai" and cfg.openai.base_url == ("http://127.0.0.1:1/v1",)
    assert (cfg.openai.served_model, cfg.openai.max_concurrency) == ("smollm2-135m", 40)


def test_bench_engines_table_names_every_row_and_ratio():
    from bench import bench_engines

    served = dict(max_concurrency=16, server_cpu_s=20.0, server_peak_rss_gib=7.0,
                  one_token_ms=30.0)
    rows = [_row("hf", 60.0, "aa"), _row("vllm", 80.0, "aa", one_token_ms=5.0),
            _row("openai", 40.0, "aa", **served), _row("openai", 60.0, "bb",
                                                       **{**served, "max_concurrency": 40})]
    text = bench_engines.table(rows, {"startup_s": 99.0})
    lines = text.splitlines()
    assert len({line.count("|") for line in lines[:6]}) == 1  # every row has every column
    assert "| openai (concurrency 16) |" in text and "| 10.0 + 20.0 |" in text
    assert lines[4].endswith("| yes |") and lines[5].endswith("| NO |")
    assert "openai (concurrency 16) / vllm: generation 0.50x tok/s" in text
    assert "openai (concurrency 40) / vllm: generation 0.75x tok/s" in text
    assert "vllm / hf: generation 1.33x" in text and "99.0 s" in text


def test_served_server_binds_localhost_and_the_tests_share_it(tmp_path):
    from bench.served import VllmServer
    from tests.vllm_server import VllmServer as TestServer

    assert TestServer is VllmServer
    server = VllmServer(tmp_path, "m", tmp_path / "log", kv_space_gib=4)
    command = server.command()
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == str(server.port)
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    assert server.environment()["VLLM_CPU_KVCACHE_SPACE"] == "4"
    server.stop()  # never started: nothing to stop, no error
