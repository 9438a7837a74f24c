"""The served engine (``--engine openai``) against a stub server on 127.0.0.1: payloads, the
order answers arrive in, retries, refusals, the start-up probe, the API key, concurrency and
the one-line errors of the CLI. That it produces the HF engine's tokens is shown against a real
vLLM server (``tests/test_served_vllm.py``)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

import phase1_main
import utils
from engine.openai import OpenAISettings
from engine.openai import http as served_http
from study import store
from tests.served_stub import StubServer, StubState, next_ids

REPO = Path(__file__).resolve().parent.parent
GREEDY = utils.SamplingConfig()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(served_http, "BACKOFF_S", 0.01)


@pytest.fixture()
def state(smol_tokenizer):
    return StubState(smol_tokenizer)


def served(model_dir: Path, *urls: str, **settings) -> utils.Engine:
    settings = {"served_model": "stub-model", **settings}
    request = utils.LoadRequest(str(model_dir), "fp32", REPO / "data", local_only=True)
    return utils.load_engine("openai", request, OpenAISettings(base_url=urls, **settings))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ requests and answers


def test_rollouts_are_the_ids_the_server_returned_with_exact_payloads(tiny_model_dir, state):
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url)
        prompts = lm.prompt_ids(["What is 2 + 3?", "What is 10 - 4?"])
        state.requests.clear()
        got = lm.generate_rollouts(prompts, [5, 3], GREEDY, [11, 12], progress=False)
        sampled = lm.generate_rollouts(prompts, 4, utils.SamplingConfig(0.7, 0.9), [11, 12],
                                       progress=False)
    assert [r.token_ids for r in got] == [tuple(next_ids(prompts[0], 5)),
                                          tuple(next_ids(prompts[1], 3))]
    assert not any(r.eos for r in got)
    greedy_bodies = sorted(state.requests[:2], key=lambda b: -b["max_tokens"])
    assert [b["prompt"] for b in greedy_bodies] == prompts  # the project's own ids, as ids
    for body in greedy_bodies:
        assert body["return_token_ids"] is True and body["temperature"] == 0.0
        assert "seed" not in body and body["top_k"] == -1 and body["repetition_penalty"] == 1.0
        assert body["stop_token_ids"] == list(lm.eos_ids) and body["model"] == "stub-model"
    seeds = sorted(b["seed"] for b in state.requests[2:])
    assert seeds == [11, 12] and all(b["top_p"] == 0.9 for b in state.requests[2:])
    assert len(sampled) == 2


def test_each_rollout_is_handed_on_as_it_arrives(tiny_model_dir, state):
    state.delay_s = 0.02
    calls = []
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url, max_concurrency=4)
        prompts = [[1, 2, k] for k in range(10)]
        got = lm.generate_rollouts(prompts, 3, GREEDY, list(range(10)),
                                   on_batch=lambda i, r: calls.append((i, r)), progress=False)
    assert all(len(i) == 1 for i, _ in calls)  # one at a time, in any order
    assert sorted(i[0] for i, _ in calls) == list(range(10))
    assert {i[0]: r[0] for i, r in calls} == dict(enumerate(got))


def test_forced_answers_and_scores(tiny_model_dir, state):
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url)
        seqs = [[5, 6, 7, 8, 9]]
        answers = lm.branch_answers(seqs, [utils.Branch(0, 3), utils.Branch(0, 5)], [40, 41], 4)
        scores = lm.branch_scores(seqs, [utils.Branch(0, 3)], [40], [[[100, 101], [102]]])
    assert answers[0].token_ids == tuple(next_ids([5, 6, 7, 40, 41], 4))
    assert answers[1].token_ids == tuple(next_ids([5, 6, 7, 8, 9, 40, 41], 4))
    assert scores == [[-3.0, -1.5]]  # one request per candidate token, summed
    asked = [b for b in state.requests if b.get("allowed_token_ids")]
    assert sorted(b["prompt"] for b in asked[-3:]) == [[5, 6, 7, 40], [5, 6, 7, 40],
                                                       [5, 6, 7, 40, 100]]


def test_concurrency_is_bounded_per_url_and_shared_between_urls(tiny_model_dir, smol_tokenizer):
    first, second = StubState(smol_tokenizer, delay_s=0.05), StubState(smol_tokenizer,
                                                                        delay_s=0.05)
    with StubServer(first) as url_a, StubServer(second) as url_b:
        lm = served(tiny_model_dir, url_a, url_b, max_concurrency=3)
        first.requests.clear(), second.requests.clear()
        lm.generate_rollouts([[1, k] for k in range(24)], 2, GREEDY, [0] * 24, progress=False)
    assert first.max_in_flight <= 3 and second.max_in_flight <= 3
    assert len(first.requests) + len(second.requests) == 24
    assert min(len(first.requests), len(second.requests)) >= 6  # the emptier URL gets work


# ------------------------------------------------------------------ faults


def test_transient_failures_are_retried(tiny_model_dir, state):
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url)
        state.requests.clear()
        state.fail_next = [503, 429]
        got = lm.generate_rollouts([[1, 2]], 2, GREEDY, [0], progress=False)
    assert got[0].token_ids == tuple(next_ids([1, 2], 2)) and len(state.requests) == 3


def test_retries_are_bounded(tiny_model_dir, state):
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url, max_retries=2)
        state.requests.clear()
        state.fail_next = [500] * 10
        with pytest.raises(utils.RequestFailed, match=r"failed after 3 tries \(HTTP 500"):
            lm.generate_rollouts([[1, 2]], 2, GREEDY, [0], progress=False)
    assert len(state.requests) == 3


def test_a_refusal_names_the_field_and_is_not_retried(tiny_model_dir, state):
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url)
        state.requests.clear()
        state.reject = (400, "max_tokens is too large", "max_tokens")
        with pytest.raises(utils.RequestFailed, match=r"HTTP 400.*too large \(field: max_tokens"):
            lm.generate_rollouts([[1, 2]], 2, GREEDY, [0], progress=False)
    assert len(state.requests) == 1


# ------------------------------------------------------------------ the probe


@pytest.mark.parametrize("change, message", [
    ({"served": "other-model"}, "serves other-model, not 'stub-model': pass --served-model"),
    ({"token_ids": False, "logprob_ids": False}, "returned no token ids"),
    ({"retokenize_offset": 1}, "tokenizer mismatch"),
    ({"raw_logprobs": False}, "--logprobs-mode raw_logprobs"),
])
def test_the_probe_refuses_a_server_it_cannot_trust(tiny_model_dir, state, change, message):
    for key, value in change.items():
        setattr(state, key, value)
    with StubServer(state) as url, pytest.raises(utils.RequestFailed, match=message):
        served(tiny_model_dir, url)


def test_an_older_server_gives_ids_through_logprobs(tiny_model_dir, state):
    state.token_ids = False  # no return_token_ids: ids as "token_id:N" logprob tokens
    with StubServer(state) as url:
        lm = served(tiny_model_dir, url)
        got = lm.generate_rollouts([[3, 4]], 3, GREEDY, [0], progress=False)
    assert lm.provenance()["token_ids_from"] == "logprobs"
    assert got[0].token_ids == tuple(next_ids([3, 4], 3))
    assert state.requests[-1]["return_tokens_as_token_ids"] is True


def test_an_unreachable_url_is_one_line_in_seconds(tiny_model_dir):
    started = time.perf_counter()
    with pytest.raises(utils.RequestFailed, match="cannot reach http://127.0.0.1"):
        served(tiny_model_dir, f"http://127.0.0.1:{free_port()}/v1")
    assert time.perf_counter() - started < 5


def test_the_api_key_is_sent_but_never_recorded(tiny_model_dir, state, monkeypatch):
    state.api_key = "sk-secret-123"
    with StubServer(state) as url:
        with pytest.raises(utils.RequestFailed, match="--api-key-env"):
            served(tiny_model_dir, url)
        monkeypatch.setenv("STUDY_KEY", "sk-secret-123")
        lm = served(tiny_model_dir, url, api_key_env="STUDY_KEY")
        lm.generate_rollouts([[1]], 1, GREEDY, [0], progress=False)
    assert state.headers[-1]["Authorization"] == "Bearer sk-secret-123"
    shown = json.dumps(lm.provenance()) + lm.describe() + repr(lm)
    assert "sk-secret" not in shown and lm.provenance()["server"] == {"name": "stub",
                                                                      "version": "0.0-stub"}


# ------------------------------------------------------------------ the CLI


def cli(model_dir, dataset, results, url, *extra) -> list[str]:
    return ["--model", str(model_dir), "--dataset", str(dataset), "--budgets", "2", "4",
            "--results-dir", str(results), "--quiet", "--engine", "openai", "--base-url", url,
            "--served-model", "stub-model", *extra]


def test_cli_start_up_errors_are_one_line_and_write_nothing(tiny_model_dir, arith_file,
                                                            tmp_path, capsys, state):
    results = tmp_path / "results"
    state.served = "another"
    with StubServer(state) as url:
        started = time.perf_counter()
        assert phase1_main.main(cli(tiny_model_dir, arith_file, results, url)) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "serves another, not 'stub-model'" in err[0]
    assert not results.exists() or not any(results.rglob("*.*"))
    assert phase1_main.main(cli(tiny_model_dir, arith_file, results, "")) == 2  # no URL
    assert "--base-url" in capsys.readouterr().err


def test_a_run_stopped_by_the_server_resumes_to_the_same_records(tiny_model_dir, arith_file,
                                                                 tmp_path, capsys, state):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    with StubServer(state) as url:
        assert phase1_main.main(cli(tiny_model_dir, arith_file, whole, url)) == 0
        state.requests.clear()
        state.fail_after = 3 + 3  # the probe's three pass, then the 4th rollout fails for good
        args = cli(tiny_model_dir, arith_file, cut, url, "--max-retries", "0",
                   "--max-concurrency", "1")
        assert phase1_main.main(args) == 2
        err = capsys.readouterr().err
        assert url in err and "3 rollouts are saved" in err and "run the same command" in err
        state.fail_after = None  # the server is back: the same command resumes
        assert phase1_main.main(args) == 0
    tag = utils.model_tag(str(tiny_model_dir))
    for budget in (2, 4):
        records = [store.read_json(store.phase1_record_path(d, tag, budget)) for d in (whole, cut)]
        assert records[0] == records[1]
