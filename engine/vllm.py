"""The vLLM engine (``--engine vllm``): the HF engine's rollouts, forced answers and candidate
scores, decoded by vLLM in this process (paged KV cache, continuous batching, prefix caching).

``load`` (the registry's loader) returns a ``VllmModel``, an ``engine.base.Engine``. vLLM (and
torch) are imported only when a model is loaded: the config reads ``VllmSettings`` at start-up,
and the HF path and the demo never import vLLM.

What is the same and what is not:

- Greedy decoding is token-identical to the HF engine in fp32 (tested on SmolLM2: arith and
  GSM8K prompts). Rollouts hold the EOS when one ends them, as the HF engine's do.
- Sampling is reproducible (every request carries its row's seed, ``engine.settings.row_seed``,
  so a rollout depends on neither batch nor neighbours) but draws other tokens than the HF
  engine's counter-based noise: compare sampled runs across engines statistically.
- Per-row budgets (force-continue's round trips) are each request's own ``max_tokens``.
- Forced answers: one greedy request per branch (prompt + rollout prefix + cue); prefix caching
  shares the encoded prompt and rollout between a row's budgets.
- Candidate scores: teacher-forced, one token per request (see ``branch_scores``).
- Not run (``engine.base`` lists the capabilities): power sampling (it needs each proposal's
  exact log-probabilities) and anything that needs hidden states (depth, the logit lens).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from engine.base import (
    BatchCallback,
    Branch,
    BranchAnswer,
    Engine,
    LoadRequest,
    Rollout,
    check_engine,
    checked_branches,
    per_row,
    progress_bar,
)
from engine.hub import cache_only
from engine.settings import ModelLoadError, SamplingConfig, knob, resolve_model

log = logging.getLogger("saturation")

# Tokens one CPU engine step may prefill (at least max_model_len, or the model's own limit when
# that is unset): whole prompts, never split.
CPU_PREFILL_TOKENS = 8192

# Requests handed to vLLM per ``generate`` call: batch_size x this. vLLM schedules them itself;
# the chunks only bound how much work is lost on a kill (on_batch persists each chunk).
CHUNK_FACTOR = 4
# Room left for the prompt when max_model_len is derived from the longest generation.
PROMPT_MARGIN = 2048


@dataclass(frozen=True)
class VllmSettings:
    """vLLM's memory and parallelism knobs (config section ``vllm``)."""

    # 0.9 is vLLM's own default: weights + KV cache may take 90 % of the GPU.
    gpu_memory_utilization: float = knob(0.9, flag="--gpu-memory-utilization",
                                         help="vllm: share of GPU memory for weights and KV "
                                         "cache")
    # None: the run's largest budget + the answer tokens + a 2048-token prompt margin, capped
    # by the model's limit (a model's own 32k default would reserve far more KV cache).
    max_model_len: int | None = knob(None, flag="--max-model-len",
                                     help="vllm: longest prompt + generation (default: largest "
                                     "budget + answer tokens + 2048, capped by the model)")
    # vLLM's CPU backend allocates its KV cache up front (VLLM_CPU_KVCACHE_SPACE, used only
    # when that variable is unset); 4 GiB holds ~90k SmolLM2 tokens in fp32.
    cpu_kv_space_gib: float = knob(4.0, flag="--cpu-kv-space-gib",
                                   help="vllm on CPU: KV cache size in GiB (when "
                                   "VLLM_CPU_KVCACHE_SPACE is unset)")
    # GPUs one vLLM engine spreads a model over; 1 = one GPU per engine (shards scale out).
    tensor_parallel_size: int = knob(1, flag="--tensor-parallel-size",
                                     help="vllm: GPUs one engine splits the model over")


@dataclass(eq=False)
class VllmModel(Engine):
    """A model loaded into a vLLM engine, prompted with the project's own tokenizer's ids."""

    llm: Any  # vllm.LLM
    tokenizer: Any  # the project's tokenizer (same chat prompts as the HF engine)
    device_type: str  # "cuda" or "cpu"
    precision: str
    model_name: str
    eos_ids: tuple[int, ...]
    max_model_len: int
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()
    name = "vllm"

    def describe(self) -> str:
        """One line for provenance, like the HF engine's plus the engine."""
        if self.device_type == "cuda":
            return f"cuda ({self.precision}, vllm)"
        return f"cpu ({os.cpu_count()} cores, {self.precision}, vllm)"

    def auto_batch_size(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> int:
        # the HF scheduler's bounds: vLLM sizes its own batches, this only sets the chunks
        from engine.hf.scheduler import CPU_AUTO_BATCH, MAX_AUTO_BATCH

        cap = CPU_AUTO_BATCH if self.device_type != "cuda" else MAX_AUTO_BATCH
        return max(1, min(len(prompts), cap))

    # ------------------------------------------------------------ the engine's functions

    def generate_rollouts(self, prompts: Sequence[Sequence[int]],
                          max_new_tokens: int | Sequence[int], sampling: SamplingConfig,
                          seeds: Sequence[int], batch_size: int = 0,
                          on_batch: BatchCallback | None = None,
                          progress: bool = True) -> list[Rollout]:
        """Rollouts on vLLM: one request per prompt, with its own seed and budget."""
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt is required")
        budgets = per_row(max_new_tokens, len(prompts))
        if max(budgets, default=0) <= 0:
            return [Rollout((), False) for _ in prompts]
        self._check_fits([len(p) + b for p, b in zip(prompts, budgets)], 0)
        chunk = max(1, batch_size if batch_size > 0 else 16) * CHUNK_FACTOR
        bar = progress_bar(len(prompts), progress)
        results: list[Rollout] = []
        for start in range(0, len(prompts), chunk):
            indices = list(range(start, min(start + chunk, len(prompts))))
            params = [self._params(sampling, budgets[i], seeds[i]) for i in indices]
            outs = self._generate([prompts[i] for i in indices], params)
            group = [_rollout(out, self.eos_ids) for out in outs]
            results += group
            if on_batch is not None:
                on_batch(indices, group)
            if bar is not None:
                bar.update(len(indices))
        if bar is not None:
            bar.close()
        return results

    def branch_answers(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                       cue_ids: Sequence[int], answer_tokens: int, batch_size: int = 16,
                       progress: bool = False) -> list[BranchAnswer]:
        """``branching.branch_answers`` on vLLM: prefix + cue, then greedy tokens to EOS."""
        if not cue_ids:
            raise ValueError("the cue must have at least one token")
        prompts = [list(sequences[b.row][:b.prefix_len]) + list(cue_ids)
                   for b in checked_branches(sequences, branches)]
        self._check_fits([len(p) for p in prompts], answer_tokens)
        greedy = SamplingConfig()
        outs = self._chunked(prompts, [self._params(greedy, answer_tokens, 0)] * len(prompts),
                             batch_size, progress, "forcing answers", "branch")
        answers = []
        for out in outs:
            ids = tuple(int(t) for t in out.outputs[0].token_ids)
            answers.append(BranchAnswer(ids, bool(ids) and ids[-1] in self.eos_ids))
        return answers

    def branch_scores(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                      cue_ids: Sequence[int], candidates: Sequence[Sequence[Sequence[int]]],
                      batch_size: int = 16, progress: bool = False) -> list[list[float]]:
        """``branching.branch_scores`` on vLLM: each candidate's log-probability after prefix +
        cue (summed, natural log), teacher-forced one token per request.

        Token j of a candidate is one request: prompt = head + candidate[:j], one greedy token
        restricted to candidate[j] (``allowed_token_ids``), whose returned log-probability is
        the raw model's (vLLM's default ``logprobs_mode="raw_logprobs"`` takes it before any
        logits processor, the restriction included). The heads are prefix-cached, so a request
        costs a few tokens. (``prompt_logprobs`` would give the same numbers, but it bypasses
        the prefix cache and computes the vocabulary's log-probabilities at every prompt
        position: the demo's 480 candidates would take tens of minutes on a CPU.)
        """
        from vllm import SamplingParams

        pairs = [(k, c) for k, cands in enumerate(candidates) for c in range(len(cands))]
        if any(len(candidates[k][c]) == 0 for k, c in pairs):
            raise ValueError("every candidate needs at least one token")
        checked = checked_branches(sequences, branches)
        heads = {k: list(sequences[checked[k].row][:checked[k].prefix_len]) + list(cue_ids)
                 for k in range(len(candidates))}
        steps = [(k, c, j) for k, c in pairs for j in range(len(candidates[k][c]))]
        prompts = [heads[k] + list(candidates[k][c][:j]) for k, c, j in steps]
        self._check_fits([len(p) for p in prompts], 1)
        params = [SamplingParams(temperature=0.0, max_tokens=1, logprobs=0, detokenize=False,
                                 allowed_token_ids=[int(candidates[k][c][j])])
                  for k, c, j in steps]
        outs = self._chunked(prompts, params, batch_size, progress, "scoring answers", "token")
        scores: list[list[float]] = [[0.0] * len(c) for c in candidates]
        for (k, c, j), out in zip(steps, outs):
            token = int(candidates[k][c][j])
            scores[k][c] += float(out.outputs[0].logprobs[0][token].logprob)
        return scores

    # ------------------------------------------------------------ internals

    def _params(self, sampling: SamplingConfig, max_tokens: int, seed: int):
        from vllm import SamplingParams

        if sampling.greedy:
            return SamplingParams(temperature=0.0, max_tokens=max_tokens,
                                  stop_token_ids=list(self.eos_ids), detokenize=False)
        return SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                              max_tokens=max_tokens, seed=int(seed),
                              stop_token_ids=list(self.eos_ids), detokenize=False)

    def _generate(self, prompts: Sequence[Sequence[int]], params: Sequence[Any]) -> list:
        from vllm.inputs import TokensPrompt

        return self.llm.generate([TokensPrompt(prompt_token_ids=[int(t) for t in p])
                                  for p in prompts], list(params), use_tqdm=False)

    def _chunked(self, prompts: list[list[int]], params: list, batch_size: int, progress: bool,
                 desc: str, unit: str) -> list:
        chunk = max(1, batch_size) * CHUNK_FACTOR
        bar = progress_bar(len(prompts), progress, desc, unit)
        outs: list = []
        for start in range(0, len(prompts), chunk):
            outs += self._generate(prompts[start:start + chunk], params[start:start + chunk])
            if bar is not None:
                bar.update(min(chunk, len(prompts) - start))
        if bar is not None:
            bar.close()
        return outs

    def _check_fits(self, prompt_lens: Sequence[int], max_tokens: int) -> None:
        """vLLM stops a request silently at max_model_len; refuse instead of cutting short."""
        need = max(prompt_lens, default=0) + max_tokens
        if need > self.max_model_len:
            raise ModelLoadError(f"a request needs {need} tokens (prompt + generation), more "
                                 f"than the vLLM engine's max_model_len {self.max_model_len}; "
                                 "raise --max-model-len")


def _rollout(out: Any, eos_ids: Sequence[int]) -> Rollout:
    # vLLM keeps the stop token (EOS) in token_ids, as HF generation does
    ids = tuple(int(t) for t in out.outputs[0].token_ids)
    return Rollout(ids, bool(ids) and ids[-1] in eos_ids)


# ---------------------------------------------------------------- loading

# The last engine built, by its load arguments: a vLLM engine takes about a minute to start on a
# CPU, so the phases one process runs share it (and a process holds at most one).
_LAST_LOADED: dict[tuple, VllmModel] = {}


def vllm_dtype(precision: str, device: Any) -> dict:
    """``vllm.LLM`` arguments for a resolved precision (nf4 via bitsandbytes, CUDA only)."""
    if precision == "fp32":
        return {"dtype": "float32"}
    if precision == "bf16":
        return {"dtype": "bfloat16"}
    if device.type != "cuda":  # resolve_precision already refuses this; kept for direct callers
        raise ModelLoadError(f"--precision {precision} with --engine vllm needs a CUDA GPU; on "
                             f"{device.type} use --precision fp32 or bf16")
    if precision == "nf4":
        return {"dtype": "bfloat16", "quantization": "bitsandbytes"}
    # vLLM quantises 4-bit in flight; 8-bit bitsandbytes needs a pre-quantised checkpoint.
    raise ModelLoadError("--precision int8 is not available with --engine vllm (its "
                         "bitsandbytes loading is 4-bit); use --precision nf4 or bf16, or "
                         "--engine hf")


def load(request: LoadRequest, settings: VllmSettings | None = None) -> VllmModel:
    """The registry's loader: ``load_vllm`` for a ``LoadRequest`` and the ``vllm`` section."""
    lm = load_vllm(request.model, request.precision, request.data_dir, request.device,
                   settings or VllmSettings(), request.longest_generation, request.local_only)
    if request.chat_template_kwargs == lm.chat_template_kwargs:
        return lm
    return dataclasses.replace(lm, chat_template_kwargs=request.chat_template_kwargs)


def load_vllm(model: str, precision: str, data_dir, device: str | None = None,
              settings: VllmSettings = VllmSettings(), longest_generation: int | None = None,
              local_only: bool | None = None) -> VllmModel:
    """A vLLM engine for an alias, hub id or local folder at the resolved precision (the HF
    engine's rule, ``loading.resolve_precision``); the same arguments again return it.

    ``longest_generation``: the most tokens any request generates, used to size
    max_model_len when ``settings.max_model_len`` is None (plus ``PROMPT_MARGIN``, capped
    by the model's own limit). ``device``: only its type matters (vLLM places the model).
    """
    check_engine("vllm")  # one line naming the install command, before anything is loaded
    key = (model, precision, str(data_dir), device, settings, longest_generation)
    if key not in _LAST_LOADED:
        for old in _LAST_LOADED.values():
            shutdown_vllm(old)
        _LAST_LOADED.clear()
        _LAST_LOADED[key] = _load(model, precision, data_dir, device, settings,
                                  longest_generation, local_only)
    return _LAST_LOADED[key]


def _load(model: str, precision: str, data_dir, device: str | None, settings: VllmSettings,
          longest_generation: int | None, local_only: bool | None) -> VllmModel:
    from engine.loading import (
        eos_token_ids,
        estimate_params_b,
        load_tokenizer,
        model_location,
        pick_device,
        resolve_precision,
    )

    spec = resolve_model(model)
    location = model_location(spec, data_dir)
    if local_only is None:
        local_only = cache_only(location)
    from transformers import AutoConfig, GenerationConfig

    dev = pick_device(device)
    tokenizer = load_tokenizer(model, data_dir, local_only)
    try:
        config = AutoConfig.from_pretrained(location, local_files_only=local_only)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the config of {location!r} ({exc})") from exc
    resolved = resolve_precision(precision, dev, spec.approx_params_b or estimate_params_b(config))
    kwargs = vllm_dtype(resolved, dev)
    limit = getattr(config.get_text_config(decoder=True), "max_position_embeddings", None)
    max_len = settings.max_model_len
    if max_len is None and longest_generation is not None:
        max_len = longest_generation + PROMPT_MARGIN
        max_len = min(max_len, limit) if limit else max_len
    if dev.type == "cpu":  # vLLM's CPU KV cache is a fixed allocation, sized by this variable
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{settings.cpu_kv_space_gib:g}")
    if local_only:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vllm import LLM

    log.info("starting a vLLM engine for %s (%s, max_model_len %s)", location, resolved, max_len)
    if dev.type == "cpu":
        # vLLM 0.32's CPU worker cannot rewind a seeded request's generator after a partial
        # (chunked) prefill ("CPU Generator does not use offset": the engine dies when a batch
        # of sampled prompts exceeds one step's token budget), so prefills are never split.
        kwargs.update(enable_chunked_prefill=False,
                      max_num_batched_tokens=max(max_len or limit or 0, CPU_PREFILL_TOKENS))
    llm = LLM(model=location, seed=0, enable_prefix_caching=True,
              # On CPU, torch.compile costs ~3 minutes of start-up for the same throughput.
              enforce_eager=dev.type != "cuda",
              gpu_memory_utilization=settings.gpu_memory_utilization,
              tensor_parallel_size=settings.tensor_parallel_size,
              **({"max_model_len": max_len} if max_len else {}), **kwargs)
    try:
        generation = GenerationConfig.from_pretrained(location, local_files_only=local_only)
    except OSError:
        generation = None
    eos = eos_token_ids(SimpleNamespace(generation_config=generation), tokenizer)
    return VllmModel(llm, tokenizer, dev.type, resolved, model, eos,
                     int(llm.llm_engine.model_config.max_model_len))


def shutdown_vllm(lm: VllmModel) -> None:
    """Stop the engine's processes now (``LLM`` has no shutdown of its own in vLLM 0.32)."""
    engine = getattr(lm.llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None:
        core.shutdown()
    for key, value in list(_LAST_LOADED.items()):
        if value.llm is lm.llm:
            del _LAST_LOADED[key]
