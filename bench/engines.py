"""The two engines the benchmark times on the same workload, and how it measures them.

- baseline — the spec's method: one ``model.generate`` per budget, fixed batch size, prompts in
  input order.
- ours — ``Engine.generate_rollouts`` exactly as the phases call it: once per phase at its
  largest budget, every smaller budget read off the rollout; phase 3 reuses phase 1's rollouts.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

import utils
from bench.workload import Workload, core_hook, hf_processor
from engine.hf import scheduler


class Progress:
    """A line per stage on stderr, with the time since the benchmark started; silent if quiet.

    Also says whether the engines should show their own progress bars."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.started = quiet, time.perf_counter()

    @property
    def bars(self) -> bool:
        return not self.quiet

    def stage(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.started
            print(f"[bench {elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)

    def bar(self, total: int, desc: str):
        """A tqdm bar over ``total`` units of work, or None when quiet."""
        if self.quiet or total == 0:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="call", dynamic_ncols=True)


QUIET = Progress(quiet=True)


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


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so wall times measure it (no-op on CPU)."""
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


def hf_generate(lm: utils.HFEngine, prompts: Sequence[Sequence[int]], stops: Sequence[int],
                budget: int, sampling: utils.SamplingConfig) -> list[list[int]]:
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


def run_baseline(lm: utils.HFEngine, work: Workload, batch_size: int,
                 max_batches: int | None = None, progress: Progress = QUIET) -> EngineRun:
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
            progress.stage(f"baseline {phase.name}: {len(phase.budgets)} budgets x "
                           f"{len(timed)} generate() calls of {batch_size} rows")
            bar = progress.bar(len(phase.budgets) * len(timed), f"baseline {phase.name}")
            for budget in phase.budgets:
                outputs: list[list[int]] = []
                sync(lm.device)
                started = time.perf_counter()
                for chunk in timed:
                    outputs += hf_generate(lm, [work.prompts[phase.prompt_index[r]] for r in chunk],
                                           [phase.stops[r] for r in chunk], budget,
                                           phase.sampling)
                    if bar is not None:
                        bar.update(1)
                sync(lm.device)
                info["wall_s"] += (time.perf_counter() - started) * scale
                info["calls"] += len(timed)
                info["generated_tokens"] += round(sum(len(o) for o in outputs) * scale)
                if phase.sampling.greedy:
                    run.greedy[(phase.name, budget)] = outputs
            if bar is not None:
                bar.close()
            info["wall_s"] = round(info["wall_s"], 3)
            run.phases[phase.name] = info
            run.wall_s += info["wall_s"]
            run.generated_tokens += info["generated_tokens"]
    run.peak_mem_mib = memory.peak_bytes / 2**20
    return run


def run_ours(lm: utils.HFEngine, work: Workload, batch_size: int,
             progress: Progress = QUIET, kv_layout: str = "auto") -> EngineRun:
    """The project's core as the phases call it: one rollout per row at the phase's top budget."""
    run = EngineRun(lm.precision, batch_size if batch_size > 0 else "auto")
    rollouts: dict[str, list[utils.Rollout]] = {}
    with PeakMemory(lm.device) as memory:
        for phase in work.phases:
            if phase.reuses in rollouts:
                progress.stage(f"ours {phase.name}: read off {phase.reuses}'s rollouts")
                rollouts[phase.name] = rollouts[phase.reuses]
                run.phases[phase.name] = {"wall_s": 0.0, "generated_tokens": 0,
                                          "reused": phase.reuses}
            else:
                progress.stage(f"ours {phase.name}: {len(phase.prompt_index)} rollouts to "
                               f"{max(phase.budgets)} tokens")
                sync(lm.device)
                started = time.perf_counter()
                rollouts[phase.name] = scheduler.generate_rollouts(
                    lm, [work.prompts[i] for i in phase.prompt_index], max(phase.budgets),
                    phase.sampling, list(phase.seeds), batch_size,
                    on_batch=lambda indices, done: None, progress=progress.bars,
                    logits_hook=core_hook(phase.stops, lm.eos_ids, lm.device),
                    kv_layout=kv_layout)
                sync(lm.device)
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
