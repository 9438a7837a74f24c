"""Shared fixtures: the real SmolLM2 tokenizer and a tiny random Llama built on it (CPU, fp32)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2's tokenizer (with its chat template), read straight from the shipped GGUF."""
    from transformers import AutoTokenizer

    import utils

    converted = REPO / "data" / "models" / utils.SMOLLM2_DIR_NAME
    if (converted / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(converted)
    else:
        gguf = utils.smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.padding_side = "left"
    return tok


def build_tiny_llama(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=1,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_lm(smol_tokenizer):
    import utils

    model = build_tiny_llama(smol_tokenizer)
    return utils.LoadedModel(model, smol_tokenizer, torch.device("cpu"), "fp32", "tiny",
                             utils.eos_token_ids(model, smol_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """The tiny model saved as a local folder, usable as `--model DIR` by the CLIs."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(smol_tokenizer).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def arith_file(tmp_path) -> Path:
    """A small local dataset (jsonl) in GSM8K format."""
    path = tmp_path / "mini.jsonl"
    rows = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}
            for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4)]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
