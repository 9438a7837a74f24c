"""Raw decode throughput (``--mode decode``): fixed lengths, EOS off, against the roofline.

The roofline is what decoding would reach if every step only had to read the weights and the
live KV cache once from memory: an upper bound for a memory-bound decode step.
"""

from __future__ import annotations

import random
import time

import torch

import utils
from bench.engines import QUIET, PeakMemory, Progress, sync
from bench.workload import core_hook, hf_processor
from engine.hf import scheduler


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def kv_bytes_per_token(model: torch.nn.Module) -> int:
    """Bytes of keys and values one token adds to the cache, over all layers."""
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
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def decode_throughput(lm: utils.HFEngine, batch: int, prompt: int, new: int,
                      engine: str, kv_layout: str = "auto") -> dict:
    """Decode tokens/s of ``batch`` rows of ``prompt`` ids generating ``new`` tokens, EOS off.

    The prefill (plus one token) is timed separately and subtracted.
    """
    rng = random.Random(0)
    prompts = [[rng.randrange(100, 40000) for _ in range(prompt)] for _ in range(batch)]
    stops = [new + 1] * batch  # never stop: EOS is masked throughout
    seeds = list(range(batch))

    def ours(budget: int) -> None:
        scheduler.generate_rollouts(lm, prompts, budget, utils.SamplingConfig(), seeds, batch,
                                progress=False, kv_layout=kv_layout,
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


def decode_benchmark(args, lm: utils.HFEngine, device: str,
                     progress: Progress = QUIET) -> dict:
    """Every (batch, engine) pair of ``args``; each with its roofline share when the memory
    bandwidth is given."""
    report = {"bench": "decode", "device": device, "model": args.model,
              "precision": lm.precision, "runs": []}
    bandwidth = args.bandwidth_gbs * 1e9 if args.bandwidth_gbs else None
    for batch in args.decode_batches:
        for engine in args.decode_engines:
            progress.stage(f"decode {engine}: batch {batch}, {args.decode_prompt}-token "
                           f"prompts, {args.decode_new} new tokens")
            run = decode_throughput(lm, batch, args.decode_prompt, args.decode_new, engine,
                                    args.kv_layout)
            if bandwidth:
                roof = roofline_tokens_per_s(lm.model, batch, args.decode_prompt,
                                             args.decode_new, bandwidth)
                run["roofline_tokens_per_s"] = round(roof, 1)
                run["share_of_roofline"] = round(run["decode_tokens_per_s"] / roof, 3)
            report["runs"].append(run)
    return report
