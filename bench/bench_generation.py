"""Generation benchmark: the spec's per-budget HF ``generate`` against the project's core.

Both engines do exactly the same work. The workload is N GSM8K-like questions under the chat
template; every row's stop length is drawn from one seeded lognormal (median 280/2048 of the
cap, ~10 % never stopping before it) and enforced by forcing EOS at that step, with EOS masked
before it. How much each row generates therefore depends on neither the model nor the engine.

Phases: phase 1 (greedy, budgets 32..2048), phase 3 (greedy, 96..256) and phase 1b (k samples
at 512 and 1024, temperature 0.7, top-p 0.9).

- baseline — the spec's method: one ``model.generate`` per budget, fixed batch size, prompts in
  input order, 4-bit nf4 on CUDA when bitsandbytes is installed (else bf16 / fp32, recorded).
- ours — ``utils.generate_rollouts`` exactly as the phases call it: once per phase at its largest
  budget, every smaller budget read off the rollout; phase 3 reuses phase 1's greedy rollouts.

Greedy outputs of the two engines are compared token by token (when both run at the same
precision). ``qwen2.5-1.5b-random`` is the real Qwen2.5-1.5B architecture with random weights
and the SmolLM2 tokenizer: its token ids are only ids, which is all a speed test needs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import utils  # noqa: E402
from config import STOCHASTIC_SAMPLING, SamplingConfig  # noqa: E402

GREEDY = SamplingConfig()
PHASE1_BUDGETS = (32, 64, 128, 256, 512, 1024, 2048)
PHASE3_BUDGETS = tuple(range(96, 257, 16))
PHASE1B_BUDGETS = (512, 1024)
# The stop-length distribution, as shares of the cap: median 280 of 2048 tokens; 10 % of rows
# go past the cap (z = 1.2816 is the standard normal's 90th percentile).
MEDIAN_SHARE = 280 / 2048
CAP_SHARE = 0.10
_Z90 = 1.2815516

QWEN25_15B = dict(  # Qwen2.5-1.5B(-Instruct) config.json, hard-coded: no download needed
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
    bos_token_id=151643, eos_token_id=151645,
)

_NAMES = ("Natalia", "Weng", "Betty", "Julie", "James", "Albert", "Mark", "Tina", "Randy", "Joy")
_TEMPLATES = (
    "{n} sold clips to {a} of her friends in April, and then she sold half as many clips in May. "
    "Each clip costs ${b}. How much money did {n} make in April and May altogether?",
    "{n} earns ${a} an hour for babysitting. Yesterday, {n} did {b} hours of babysitting and "
    "then spent ${c} on lunch. How much money does {n} have left?",
    "{n} is saving money for a new wallet which costs ${a}. {n} has only half of the money. "
    "Her parents give her ${b}, and her grandparents give twice as much. How much more money "
    "does {n} need to buy the wallet?",
    "{n} is reading a {a}-page book. Yesterday, {n} read {b} pages and today twice as many. If "
    "{n} wants to read half of the remaining pages tomorrow, how many pages should {n} read?",
    "A farm has {a} cows. Each cow gives {b} liters of milk a day, and {c} liters are sold to a "
    "shop at $2 per liter. The rest is made into cheese. How much money does the farm earn in "
    "a week from the milk it sells?",
    "{n} buys {a} boxes of pencils with {b} pencils in each box. {n} gives {c} pencils to each "
    "of 4 friends and keeps the rest. How many pencils does {n} keep?",
)
_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."


# ---------------------------------------------------------------- the workload


def synth_questions(count: int, seed: int) -> list[str]:
    """GSM8K-like word problems (random names and numbers in fixed templates), seeded."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        template = rng.choice(_TEMPLATES)
        numbers = {k: rng.randint(3, 60) for k in "abc"}
        out.append(template.format(n=rng.choice(_NAMES), **numbers) + _SUFFIX)
    return out


def stop_lengths(count: int, cap: int, seed: int) -> list[int]:
    """Per-row stop lengths (EOS is the L-th token); rows past the cap get ``cap + 1``."""
    rng = random.Random(seed)
    median = max(1.0, MEDIAN_SHARE * cap)
    sigma = math.log(cap / median) / _Z90 if cap > median else 1.0
    lengths = []
    for _ in range(count):
        draw = median * math.exp(sigma * rng.gauss(0.0, 1.0))
        lengths.append(cap + 1 if draw > cap else max(1, math.ceil(draw)))
    return lengths


@dataclass(frozen=True)
class PhaseWork:
    """One phase: which prompt each row uses, its seed and stop length, budgets and sampling."""

    name: str
    prompt_index: tuple[int, ...]
    seeds: tuple[int, ...]
    stops: tuple[int, ...]
    budgets: tuple[int, ...]
    sampling: SamplingConfig
    reuses: str | None = None  # ours reads this phase off another phase's rollouts


@dataclass
class Workload:
    prompts: list[list[int]]
    phases: list[PhaseWork]
    tokenizer: str  # where prompt ids came from


def build_workload(prompts: list[list[int]], budgets: Sequence[int], cliff: Sequence[int],
                   stochastic: Sequence[int], samples: int, seed: int,
                   tokenizer: str) -> Workload:
    """The three phases over the same prompts; phase 3 reuses phase 1 when its budgets fit."""
    count = len(prompts)
    cap = max([*budgets, *cliff, *stochastic])
    greedy_stops = tuple(stop_lengths(count, cap, seed))
    greedy_seeds = tuple(utils.row_seed(seed, f"bench-{i}", 0) for i in range(count))
    everyone = tuple(range(count))
    phases = []
    if budgets:
        phases.append(PhaseWork("phase1", everyone, greedy_seeds, greedy_stops, tuple(budgets),
                                GREEDY))
    if cliff:
        reuse = "phase1" if budgets and max(cliff) <= max(budgets) else None
        phases.append(PhaseWork("phase3", everyone, greedy_seeds, greedy_stops, tuple(cliff),
                                GREEDY, reuse))
    if stochastic and samples:
        rows = tuple(i for i in range(count) for _ in range(samples))
        seeds = tuple(utils.row_seed(seed, f"bench-{i}", s) for i in range(count)
                      for s in range(samples))
        stops = tuple(stop_lengths(len(rows), cap, seed + 1))
        phases.append(PhaseWork("phase1b", rows, seeds, stops, tuple(stochastic),
                                STOCHASTIC_SAMPLING))
    return Workload(prompts, phases, tokenizer)


def make_prompts(tokenizer, count: int, seed: int) -> list[list[int]]:
    """Chat-template prompt ids; without a tokenizer, random ids of GSM8K-like lengths."""
    if tokenizer is not None:
        return utils.chat_prompt_ids(tokenizer, synth_questions(count, seed))
    rng = random.Random(seed)
    return [[rng.randrange(100, 40000) for _ in range(rng.randint(90, 200))]
            for _ in range(count)]


# ---------------------------------------------------------------- forced stops


def force_stops(logits: torch.Tensor, steps: torch.Tensor, stops: torch.Tensor,
                eos_ids: Sequence[int]) -> torch.Tensor:
    """EOS is impossible before a row's stop step and certain at it (``steps`` is 0-based)."""
    eos = list(eos_ids)
    at_stop = steps + 1 >= stops
    logits[:, eos] = float("-inf")
    logits[at_stop] = float("-inf")
    logits[at_stop, eos[0]] = 0.0
    return logits


def core_hook(stops: Sequence[int], eos_ids: Sequence[int], device: torch.device):
    """The forced stops as a ``logits_hook`` of the core (rows are indices of its prompts)."""
    table = torch.tensor(list(stops), dtype=torch.long, device=device)

    def hook(rows: torch.Tensor, steps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return force_stops(logits, steps, table[rows], eos_ids)

    return hook


def hf_processor(stops: Sequence[int], prompt_width: int, eos_ids: Sequence[int],
                 device: torch.device):
    """The forced stops as an HF ``LogitsProcessor`` (one batch, all rows at the same step)."""
    from transformers import LogitsProcessor

    table = torch.tensor(list(stops), dtype=torch.long, device=device)

    class ForcedStops(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            steps = torch.full_like(table, input_ids.shape[1] - prompt_width)
            return force_stops(scores, steps, table, eos_ids)

    return ForcedStops()


# ---------------------------------------------------------------- models


def tiny_model(tokenizer, vocab: int, seed: int = 0) -> torch.nn.Module:
    """A 2-layer random Llama on the SmolLM2 vocabulary (what the tests use)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id if tokenizer is not None else 2
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=8192, eos_token_id=eos, pad_token_id=eos,
                         bos_token_id=1)
    return LlamaForCausalLM(config).eval()


def qwen_random_model(tokenizer, dtype: torch.dtype, device: torch.device,
                      seed: int = 0) -> torch.nn.Module:
    """Qwen2.5-1.5B's architecture with random weights, built directly on ``device``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id if tokenizer is not None else QWEN25_15B["eos_token_id"]
    config = Qwen2Config(**{**QWEN25_15B, "eos_token_id": eos, "pad_token_id": eos})
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).eval()


def sharpen(model: torch.nn.Module, target_std: float = 4.0) -> torch.nn.Module:
    """Scale the final norm so logits spread like a trained model's (std ~4, peaked softmax).

    A random model's logits are nearly flat, so top-p keeps ~90 % of the vocabulary and the
    sampler's full-vocabulary sort dominates phase 1b for both engines, which no trained model
    shows. The architecture and the FLOPs are unchanged.
    """
    norm = getattr(getattr(model, "model", None), "norm", None)
    if norm is None or getattr(norm, "weight", None) is None:
        return model
    probe = torch.arange(1, 17, device=norm.weight.device)[None]
    with torch.inference_mode():
        spread = float(model(input_ids=probe).logits.float().std())
        norm.weight.mul_(target_std / max(spread, 1e-6))
    return model


def bench_tokenizer(data_dir: Path):
    """SmolLM2's tokenizer (chat template included) or None when it is not installed."""
    try:
        return utils.load_tokenizer("smollm2-135m", data_dir)
    except (utils.ModelLoadError, OSError) as exc:
        print(f"no SmolLM2 tokenizer ({exc}); using synthetic prompt ids", file=sys.stderr)
        return None


def baseline_precision(requested: str, device: torch.device) -> str:
    """The spec loads 4-bit nf4; that needs CUDA and bitsandbytes. Otherwise the best match."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "fp32"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        print("bitsandbytes is not installed: the baseline runs bf16 (faster than the spec's "
              "nf4)", file=sys.stderr)
        return "bf16"
    return "nf4"


def load_engines(args, tokenizer) -> tuple[utils.LoadedModel, utils.LoadedModel]:
    """(ours, baseline) for the requested model; they share weights when precisions agree."""
    device = utils.pick_device(args.device)
    base_precision = baseline_precision(args.baseline_precision, device)
    if args.model in ("tiny", "qwen2.5-1.5b-random"):
        vocab = len(tokenizer) if tokenizer is not None else 49152
        if args.model == "tiny":
            params_b = 0.0
        else:
            params_b = utils.estimate_params_b(SimpleNamespace(**QWEN25_15B))
        precision = utils.resolve_precision(args.precision, device, params_b)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        if args.model == "tiny":
            model = tiny_model(tokenizer, vocab).to(device=device, dtype=dtype)
        else:
            model = qwen_random_model(tokenizer, dtype, device)
        model = sharpen(model)
        ours = utils.LoadedModel(model, tokenizer, device, precision, args.model,
                                 utils.eos_token_ids(model, tokenizer or _NoTokenizer()))
        return ours, _baseline_like(ours, base_precision)
    ours = utils.load_model(args.model, args.precision, Path(args.data_dir), args.device)
    if base_precision == ours.precision:
        return ours, ours
    return ours, utils.load_model(args.model, base_precision, Path(args.data_dir), args.device)


class _NoTokenizer:
    eos_token_id = None
    pad_token_id = None


def _baseline_like(ours: utils.LoadedModel, precision: str) -> utils.LoadedModel:
    """The same random weights at the baseline's precision (nf4 goes through a saved copy)."""
    if precision == ours.precision:
        return ours
    if precision in ("fp32", "bf16"):
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        model = type(ours.model)(ours.model.config).to(ours.device, dtype)
        model.load_state_dict(ours.model.state_dict())
        return utils.LoadedModel(model.eval(), ours.tokenizer, ours.device, precision,
                                 ours.name, ours.eos_ids)
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as folder:
        ours.model.save_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(
            folder, **utils._load_kwargs(precision, ours.device))
    return utils.LoadedModel(model.eval(), ours.tokenizer, ours.device, precision, ours.name,
                             ours.eos_ids)


# ---------------------------------------------------------------- measuring


class PeakMemory:
    """Peak memory inside a ``with`` block: CUDA allocator peak, or sampled process RSS on CPU."""

    def __init__(self, device: torch.device):
        self.device, self.peak_bytes, self._stop = device, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, _rss_bytes())
            if self._stop.wait(0.005):
                return


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the lifetime high-water mark is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class EngineRun:
    precision: str
    batch_size: int | str
    wall_s: float = 0.0
    generated_tokens: int = 0
    peak_mem_mib: float = 0.0
    phases: dict = field(default_factory=dict)
    greedy: dict = field(default_factory=dict)  # (phase, budget) -> per-row token lists

    def summary(self) -> dict:
        return {"precision": self.precision, "batch_size": self.batch_size,
                "wall_s": round(self.wall_s, 3), "generated_tokens": self.generated_tokens,
                "tokens_per_s": round(self.generated_tokens / max(self.wall_s, 1e-9), 1),
                "peak_mem_mib": round(self.peak_mem_mib, 1), "phases": self.phases}


# ---------------------------------------------------------------- the two engines


def hf_generate(lm: utils.LoadedModel, prompts: Sequence[Sequence[int]], stops: Sequence[int],
                budget: int, sampling: SamplingConfig) -> list[list[int]]:
    """One batched ``generate`` call, left-padded; returns each row's tokens up to its EOS."""
    from transformers import GenerationConfig, LogitsProcessorList

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), lm.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(list(prompt))
        mask[row, width - len(prompt):] = 1
    config = GenerationConfig(max_new_tokens=budget, min_new_tokens=0,
                              do_sample=not sampling.greedy, eos_token_id=list(lm.eos_ids),
                              pad_token_id=lm.pad_id)
    if not sampling.greedy:
        config.temperature, config.top_p = sampling.temperature, sampling.top_p
    processors = LogitsProcessorList([hf_processor(stops, width, lm.eos_ids, lm.device)])
    with torch.inference_mode():
        out = lm.model.generate(ids.to(lm.device), attention_mask=mask.to(lm.device),
                                generation_config=config, logits_processor=processors)
    return [_until_eos(row[width:].tolist(), lm.eos_ids) for row in out]


def _until_eos(tokens: list[int], eos_ids: Sequence[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[:index + 1]
    return tokens


def run_baseline(lm: utils.LoadedModel, work: Workload, batch_size: int,
                 max_batches: int | None = None) -> EngineRun:
    """The spec's method: every phase, every budget, one ``generate`` per fixed-size batch.

    ``max_batches`` times only the first batches of each call and scales the wall time up by
    the number of batches (recorded as ``extrapolated``): each batch does the same work.
    """
    run = EngineRun(lm.precision, batch_size)
    with PeakMemory(lm.device) as memory:
        for phase in work.phases:
            rows = list(range(len(phase.prompt_index)))
            chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
            timed = chunks[:max_batches] if max_batches else chunks
            scale = len(chunks) / len(timed)
            info = {"calls": 0, "wall_s": 0.0, "generated_tokens": 0,
                    "extrapolated": scale != 1.0}
            for budget in phase.budgets:
                outputs: list[list[int]] = []
                _sync(lm.device)
                started = time.perf_counter()
                for chunk in timed:
                    outputs += hf_generate(lm, [work.prompts[phase.prompt_index[r]] for r in chunk],
                                           [phase.stops[r] for r in chunk], budget,
                                           phase.sampling)
                _sync(lm.device)
                info["wall_s"] += (time.perf_counter() - started) * scale
                info["calls"] += len(timed)
                info["generated_tokens"] += round(sum(len(o) for o in outputs) * scale)
                if phase.sampling.greedy:
                    run.greedy[(phase.name, budget)] = outputs
            info["wall_s"] = round(info["wall_s"], 3)
            run.phases[phase.name] = info
            run.wall_s += info["wall_s"]
            run.generated_tokens += info["generated_tokens"]
    run.peak_mem_mib = memory.peak_bytes / 2**20
    return run


def run_ours(lm: utils.LoadedModel, work: Workload, batch_size: int) -> EngineRun:
    """The project's core as the phases call it: one rollout per row at the phase's top budget."""
    run = EngineRun(lm.precision, batch_size if batch_size > 0 else "auto")
    rollouts: dict[str, list[utils.Rollout]] = {}
    with PeakMemory(lm.device) as memory:
        for phase in work.phases:
            if phase.reuses in rollouts:
                rollouts[phase.name] = rollouts[phase.reuses]
                run.phases[phase.name] = {"wall_s": 0.0, "generated_tokens": 0,
                                          "reused": phase.reuses}
            else:
                _sync(lm.device)
                started = time.perf_counter()
                rollouts[phase.name] = utils.generate_rollouts(
                    lm, [work.prompts[i] for i in phase.prompt_index], max(phase.budgets),
                    phase.sampling, list(phase.seeds), batch_size,
                    on_batch=lambda indices, done: None, progress=False,
                    logits_hook=core_hook(phase.stops, lm.eos_ids, lm.device))
                _sync(lm.device)
                wall = time.perf_counter() - started
                tokens = sum(len(r.token_ids) for r in rollouts[phase.name])
                run.phases[phase.name] = {"wall_s": round(wall, 3), "generated_tokens": tokens}
                run.wall_s += wall
                run.generated_tokens += tokens
            if phase.sampling.greedy:
                for budget in phase.budgets:
                    run.greedy[(phase.name, budget)] = [
                        list(r.at_budget(budget)[0]) for r in rollouts[phase.name]]
    run.peak_mem_mib = memory.peak_bytes / 2**20
    return run


def compare_greedy(ours: EngineRun, baseline: EngineRun) -> dict:
    """Row-by-row token equality of the greedy phases at every budget both engines produced."""
    compared = mismatched = 0
    first = None
    for key, base_rows in baseline.greedy.items():
        for row, (mine, theirs) in enumerate(zip(ours.greedy.get(key, []), base_rows)):
            compared += 1
            if mine != theirs:
                mismatched += 1
                first = first or {"phase": key[0], "budget": key[1], "row": row}
    return {"greedy_identical": compared > 0 and mismatched == 0, "rows_compared": compared,
            "rows_mismatched": mismatched, "first_mismatch": first}


# ---------------------------------------------------------------- decode throughput


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def kv_bytes_per_token(model: torch.nn.Module) -> int:
    config = model.config.get_text_config(decoder=True)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", heads)
    element = 4 if next(model.parameters()).dtype == torch.float32 else 2
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element


def roofline_tokens_per_s(model: torch.nn.Module, batch: int, prompt: int, new: int,
                          bandwidth: float) -> float:
    """Decode tokens/s if every step only had to read the weights and the live KV once."""
    context = prompt + new / 2  # mean context over the decode
    step_bytes = weight_bytes(model) + batch * context * kv_bytes_per_token(model)
    return batch * bandwidth / step_bytes


def timed(device: torch.device, fn) -> float:
    _sync(device)
    started = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - started


def decode_throughput(lm: utils.LoadedModel, batch: int, prompt: int, new: int,
                      engine: str) -> dict:
    """Decode tokens/s of ``batch`` rows of ``prompt`` ids generating ``new`` tokens, EOS off.

    The prefill (plus one token) is timed separately and subtracted.
    """
    rng = random.Random(0)
    prompts = [[rng.randrange(100, 40000) for _ in range(prompt)] for _ in range(batch)]
    stops = [new + 1] * batch  # never stop: EOS is masked throughout
    seeds = list(range(batch))

    def ours(budget: int) -> None:
        utils.generate_rollouts(lm, prompts, budget, GREEDY, seeds, batch, progress=False,
                                logits_hook=core_hook(stops, lm.eos_ids, lm.device))

    def hf(budget: int) -> None:
        from transformers import GenerationConfig, LogitsProcessorList

        ids = torch.tensor(prompts, device=lm.device)
        config = GenerationConfig(max_new_tokens=budget, do_sample=False,
                                  eos_token_id=list(lm.eos_ids), pad_token_id=lm.pad_id)
        if lm.device.type == "cuda":
            config.cache_implementation = "static"
        processors = LogitsProcessorList([hf_processor(stops, prompt, lm.eos_ids, lm.device)])
        with torch.no_grad():
            lm.model.generate(ids, attention_mask=torch.ones_like(ids),
                              generation_config=config, logits_processor=processors)

    run = ours if engine == "ours" else hf
    run(2)  # warm-up: compilation, CUDA graphs, allocator
    with PeakMemory(lm.device) as memory:
        prefill_s = timed(lm.device, lambda: run(1))
        total_s = timed(lm.device, lambda: run(new))
    decode_s = max(total_s - prefill_s, 1e-9)
    return {"engine": engine, "batch": batch, "prompt_tokens": prompt, "new_tokens": new,
            "wall_s": round(total_s, 3), "prefill_s": round(prefill_s, 3),
            "decode_tokens_per_s": round(batch * (new - 1) / decode_s, 1),
            "peak_mem_mib": round(memory.peak_bytes / 2**20, 1)}


def decode_benchmark(args, lm: utils.LoadedModel) -> dict:
    report = {"bench": "decode", "device": describe_device(lm.device), "model": args.model,
              "precision": lm.precision, "runs": []}
    bandwidth = args.bandwidth_gbs * 1e9 if args.bandwidth_gbs else None
    for batch in args.decode_batches:
        for engine in args.decode_engines:
            run = decode_throughput(lm, batch, args.decode_prompt, args.decode_new, engine)
            if bandwidth:
                roof = roofline_tokens_per_s(lm.model, batch, args.decode_prompt,
                                             args.decode_new, bandwidth)
                run["roofline_tokens_per_s"] = round(roof, 1)
                run["share_of_roofline"] = round(run["decode_tokens_per_s"] / roof, 3)
            report["runs"].append(run)
    return report


# ---------------------------------------------------------------- report


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def workload_summary(work: Workload) -> dict:
    lengths = [len(p) for p in work.prompts]
    out = {"num_prompts": len(work.prompts), "tokenizer": work.tokenizer,
           "prompt_tokens": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1),
                             "max": max(lengths)}}
    for phase in work.phases:
        cap = max(phase.budgets)
        ordered = sorted(phase.stops)
        out[phase.name] = {"rows": len(phase.stops), "budgets": list(phase.budgets),
                           "sampling": {"temperature": phase.sampling.temperature,
                                        "top_p": phase.sampling.top_p},
                           "stop_median": ordered[len(ordered) // 2],
                           "share_reaching_cap": round(sum(s > cap for s in ordered)
                                                       / len(ordered), 3),
                           "ours_reuses": phase.reuses}
    return out


def benchmark(args) -> dict:
    """Build the workload, run the requested engines and return the report."""
    tokenizer = bench_tokenizer(Path(args.data_dir))
    ours_lm, base_lm = load_engines(args, tokenizer)
    if args.mode == "decode":
        return decode_benchmark(args, ours_lm)
    prompts = make_prompts(tokenizer, args.num_prompts, args.seed)
    work = build_workload(prompts, args.budgets, args.cliff_budgets, args.stochastic_budgets,
                          args.samples, args.seed,
                          "smollm2 chat template" if tokenizer is not None else "synthetic ids")
    params = sum(p.numel() for p in ours_lm.model.parameters())
    report = {"bench": "generation", "device": describe_device(ours_lm.device),
              "model": args.model, "params_m": round(params / 1e6, 1),
              "workload": workload_summary(work),
              "versions": {"torch": torch.__version__, "transformers": _version("transformers"),
                           "python": platform.python_version()}}
    runs: dict[str, EngineRun] = {}
    if "ours" in args.engines:
        runs["ours"] = run_ours(ours_lm, work, args.batch_size)
    if "baseline" in args.engines:
        size = args.baseline_batch_size or args.batch_size or 16
        runs["baseline"] = run_baseline(base_lm, work, size, args.baseline_max_batches)
    report.update({name: run.summary() for name, run in runs.items()})
    if len(runs) == 2:
        report["speedup"] = round(runs["baseline"].wall_s / max(runs["ours"].wall_s, 1e-9), 2)
        if runs["ours"].precision == runs["baseline"].precision:
            report["check"] = compare_greedy(runs["ours"], runs["baseline"])
        else:
            report["check"] = {"greedy_identical": None,
                               "reason": "engines ran at different precisions"}
    return report


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def format_report(report: dict) -> str:
    if report["bench"] == "decode":
        lines = [f"device: {report['device']}   model: {report['model']} ({report['precision']})"]
        for run in report["runs"]:
            share = run.get("share_of_roofline")
            lines.append(f"{run['engine']:<5} batch {run['batch']:>4}: "
                         f"{run['decode_tokens_per_s']:>10.1f} decode tok/s"
                         + (f" = {100 * share:.1f} % of roofline" if share else ""))
        return "\n".join(lines)
    lines = [f"device: {report['device']}   model: {report['model']} "
             f"({report['params_m']} M params)",
             f"{'engine':<9} {'precision':<9} {'batch':>6} {'wall s':>9} {'tokens':>10} "
             f"{'tok/s':>9} {'peak MiB':>9}"]
    for name in ("baseline", "ours"):
        if name in report:
            r = report[name]
            lines.append(f"{name:<9} {r['precision']:<9} {r['batch_size']!s:>6} "
                         f"{r['wall_s']:>9.2f} {r['generated_tokens']:>10} "
                         f"{r['tokens_per_s']:>9.1f} {r['peak_mem_mib']:>9.0f}")
    if "speedup" in report:
        lines.append(f"speedup (baseline wall / ours wall): {report['speedup']}x; "
                     f"greedy identical: {report['check']['greedy_identical']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_generation", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny",
                   help="tiny | qwen2.5-1.5b-random | a model alias or local folder")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64,
                   help="rows decoded together by ours (0 = chosen from free GPU memory)")
    p.add_argument("--baseline-batch-size", type=int, default=None,
                   help="the baseline's fixed batch size (default: --batch-size)")
    p.add_argument("--budgets", type=int, nargs="*", default=list(PHASE1_BUDGETS))
    p.add_argument("--cliff-budgets", type=int, nargs="*", default=list(PHASE3_BUDGETS))
    p.add_argument("--stochastic-budgets", type=int, nargs="*", default=list(PHASE1B_BUDGETS))
    p.add_argument("--samples", type=int, default=5, help="phase 1b samples per prompt")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--precision", default="auto", help="ours: auto | fp32 | bf16 | nf4")
    p.add_argument("--baseline-precision", default="auto",
                   help="auto = nf4 on CUDA with bitsandbytes (the spec), else bf16/fp32")
    p.add_argument("--baseline-max-batches", type=int, default=None,
                   help="time only this many batches per generate() sweep and scale up")
    p.add_argument("--engines", nargs="+", default=["baseline", "ours"],
                   choices=["baseline", "ours"])
    p.add_argument("--mode", choices=["workload", "decode"], default="workload",
                   help="workload: the study's phases, both engines; decode: raw decode "
                   "throughput at fixed lengths, EOS off, against the roofline")
    p.add_argument("--decode-batches", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--decode-prompt", type=int, default=160)
    p.add_argument("--decode-new", type=int, default=256)
    p.add_argument("--decode-engines", nargs="+", default=["ours", "hf"],
                   choices=["ours", "hf"], help="hf: generate() at ours' precision "
                   "(static cache on CUDA)")
    p.add_argument("--bandwidth-gbs", type=float, default=None,
                   help="memory bandwidth for the roofline (H100 SXM: 3350; FACTS used 3000)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--data-dir", default=str(REPO / "data"))
    p.add_argument("--out", default=None, help="report path (default: results/bench_*.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = benchmark(args)
    device = "cpu" if report["device"].startswith("cpu") else "cuda"
    name = f"bench_{args.mode}_{args.model.replace('/', '--')}_{device}.json"
    out = Path(args.out or REPO / "results" / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
