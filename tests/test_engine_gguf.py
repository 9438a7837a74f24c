"""The one-pass GGUF reader that converts the demo model (``engine.loading.read_llama_gguf``).

Fast: a tiny Llama GGUF written here with the ``gguf`` package's own writer, its q/k rows
interleaved the way llama.cpp's converter does (written out below from its definition). Slow: the
shipped SmolLM2 file against transformers' own GGUF loader, tensor by tensor.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.loading import ModelLoadError, read_llama_gguf


def llama_cpp_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's HF -> GGUF row order for q_proj / k_proj (pairs of rotary halves per head)."""
    return (w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_tiny_llama(path, tied: bool, arch: str = "llama") -> dict[str, np.ndarray]:
    """A 2-layer Llama (hidden 8, 4 heads, 2 KV heads) in F32; returns its HF-named weights."""
    from gguf import GGUFWriter

    rng = np.random.default_rng(0)
    hidden, ffn, heads, kv_heads, vocab = 8, 12, 4, 2, 16
    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden)),
                                 "model.norm.weight": rng.standard_normal(hidden)}
    if not tied:
        hf["lm_head.weight"] = rng.standard_normal((vocab, hidden))
    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(2)
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    gguf_names = {"model.embed_tokens.weight": "token_embd.weight",
                  "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (hidden // 2, hidden),
              "self_attn.v_proj": (hidden // 2, hidden), "self_attn.o_proj": (hidden, hidden),
              "mlp.gate_proj": (ffn, hidden), "mlp.up_proj": (ffn, hidden),
              "mlp.down_proj": (hidden, ffn), "input_layernorm": (hidden,),
              "post_attention_layernorm": (hidden,)}
    short = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for i in range(2):
        for part, shape in shapes.items():
            name = f"model.layers.{i}.{part}.weight"
            hf[name] = rng.standard_normal(shape)
            gguf_names[name] = f"blk.{i}.{short[part]}.weight"
    for name, value in hf.items():
        stored = value.astype(np.float32)
        if name.endswith("q_proj.weight"):
            stored = llama_cpp_permute(stored, heads)
        elif name.endswith("k_proj.weight"):
            stored = llama_cpp_permute(stored, kv_heads)
        writer.add_tensor(gguf_names[name], np.ascontiguousarray(stored))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {k: v.astype(np.float32) for k, v in hf.items()}


@pytest.mark.parametrize("tied", [True, False])
def test_tiny_gguf_reads_back_as_the_hf_weights_and_config(tmp_path, tied):
    path = tmp_path / "tiny.gguf"
    want = write_tiny_llama(path, tied)
    config, weights = read_llama_gguf(path)
    assert sorted(weights) == sorted(want)
    for name, value in want.items():
        assert torch.equal(weights[name], torch.from_numpy(value)), name
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (2, 8, 12)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (4, 2, 2)
    assert config.vocab_size == 16 and config.max_position_embeddings == 64
    assert config.tie_word_embeddings is tied
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 2)
    assert config.rope_parameters["rope_theta"] == 10000.0


def test_tiny_gguf_loads_into_transformers_and_runs(tmp_path):
    """The converted weights make a model whose logits equal one built from the HF weights."""
    from transformers import LlamaForCausalLM

    want = write_tiny_llama(tmp_path / "tiny.gguf", tied=True)
    config, weights = read_llama_gguf(tmp_path / "tiny.gguf")
    ours = LlamaForCausalLM(config).eval()
    missing, unexpected = ours.load_state_dict(weights, strict=False)
    assert set(missing) <= {"lm_head.weight"} and not unexpected
    ours.tie_weights()
    ref = LlamaForCausalLM(config).eval()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in want.items()}, strict=False)
    ref.tie_weights()
    ids = torch.tensor([[1, 5, 7, 3, 9]])
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, ref(ids).logits)


def test_a_non_llama_gguf_is_refused_by_name(tmp_path):
    path = tmp_path / "other.gguf"
    write_tiny_llama(path, tied=True, arch="gpt2")
    with pytest.raises(ModelLoadError, match="not a Llama GGUF"):
        read_llama_gguf(path)


@pytest.mark.slow
def test_shipped_smollm2_equals_transformers_gguf_loading():
    """The independent reference: transformers' own GGUF loader, on the real file."""
    from transformers import AutoModelForCausalLM

    from engine.loading import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    config, weights = read_llama_gguf(gguf)
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                               dtype=torch.float32).state_dict()
    ref.pop("lm_head.weight")  # tied to the embedding: not stored
    assert sorted(weights) == sorted(ref)
    assert [k for k in ref if not torch.equal(ref[k], weights[k])] == []
    assert config.tie_word_embeddings and config.num_hidden_layers == 30
