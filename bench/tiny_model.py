"""The tiny random Llama shared by the tests (``tests/conftest.py``) and the benchmark.

Two layers, hidden size 64, on a real tokenizer's vocabulary: big enough to exercise every
code path (GQA, RoPE, chat template, EOS), small enough to decode hundreds of tokens per
second on a laptop CPU. Its outputs are meaningless; only their identity across engines,
layouts and batch sizes is tested. It lives here, outside the engine, because it is a test
fixture, and outside ``tests/`` because the benchmark runs without pytest.
"""

from __future__ import annotations

import torch

# What a missing tokenizer falls back to (the benchmark's synthetic ids): SmolLM2's EOS id.
DEFAULT_EOS_ID = 2
SMOLLM2_VOCAB = 49152


def tiny_llama(vocab_size: int, eos_id: int, pad_id: int | None = None,
               seed: int = 0) -> torch.nn.Module:
    """A 2-layer random Llama in eval mode; the same ``seed`` gives the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=1,
    )
    return LlamaForCausalLM(config).eval()


def tiny_llama_for(tokenizer, seed: int = 0) -> torch.nn.Module:
    """``tiny_llama`` on ``tokenizer``'s vocabulary and special ids (None: synthetic ids)."""
    if tokenizer is None:
        return tiny_llama(SMOLLM2_VOCAB, DEFAULT_EOS_ID, DEFAULT_EOS_ID, seed)
    return tiny_llama(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id, seed)
