"""The benchmark's workload: the study's phases over N GSM8K-like prompts, with forced stops.

Budgets, samples and sampling settings are the study's own (``config.StudyConfig``), so the
benchmark measures what a default run does. Every row's stop length is drawn from one seeded
lognormal (median 280/2048 of the cap, ~10 % never stopping before it) and enforced by forcing
EOS at that step, with EOS masked before it: how much each row generates depends on neither
the model nor the engine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

import utils
from config import StudyConfig

# The stop-length distribution, as shares of the cap: median 280 of 2048 tokens; 10 % of rows
# go past the cap (z = 1.2816 is the standard normal's 90th percentile).
MEDIAN_SHARE = 280 / 2048
CAP_SHARE = 0.10
_Z90 = 1.2815516

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


def study_sampling(cfg: StudyConfig) -> tuple[utils.SamplingConfig, utils.SamplingConfig]:
    """(phases 1 and 3, phase 1b) sampling settings of a study run with ``cfg``."""
    return (utils.SamplingConfig(cfg.generation.temperature, cfg.generation.top_p),
            utils.SamplingConfig(cfg.phase1b.temperature, cfg.phase1b.top_p))


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
    sampling: utils.SamplingConfig
    reuses: str | None = None  # ours reads this phase off another phase's rollouts


@dataclass
class Workload:
    prompts: list[list[int]]
    phases: list[PhaseWork]
    tokenizer: str  # where prompt ids came from


def build_workload(prompts: list[list[int]], budgets: Sequence[int], cliff: Sequence[int],
                   stochastic: Sequence[int], samples: int, seed: int, tokenizer: str,
                   cfg: StudyConfig | None = None) -> Workload:
    """The three phases over the same prompts; phase 3 reuses phase 1 when its budgets fit.
    Sampling is the study's (``cfg``, default ``StudyConfig()``)."""
    greedy, stochastic_sampling = study_sampling(cfg or StudyConfig())
    count = len(prompts)
    cap = max([*budgets, *cliff, *stochastic])
    greedy_stops = tuple(stop_lengths(count, cap, seed))
    greedy_seeds = tuple(utils.row_seed(seed, f"bench-{i}", 0) for i in range(count))
    everyone = tuple(range(count))
    phases = []
    if budgets:
        phases.append(PhaseWork("phase1", everyone, greedy_seeds, greedy_stops, tuple(budgets),
                                greedy))
    if cliff:
        reuse = "phase1" if budgets and max(cliff) <= max(budgets) else None
        phases.append(PhaseWork("phase3", everyone, greedy_seeds, greedy_stops, tuple(cliff),
                                greedy, reuse))
    if stochastic and samples:
        rows = tuple(i for i in range(count) for _ in range(samples))
        seeds = tuple(utils.row_seed(seed, f"bench-{i}", s) for i in range(count)
                      for s in range(samples))
        stops = tuple(stop_lengths(len(rows), cap, seed + 1))
        phases.append(PhaseWork("phase1b", rows, seeds, stops, tuple(stochastic),
                                stochastic_sampling))
    return Workload(prompts, phases, tokenizer)


def make_prompts(tokenizer, count: int, seed: int) -> list[list[int]]:
    """Chat-template prompt ids; without a tokenizer, random ids of GSM8K-like lengths."""
    if tokenizer is not None:
        return utils.chat_prompt_ids(tokenizer, synth_questions(count, seed))
    rng = random.Random(seed)
    return [[rng.randrange(100, 40000) for _ in range(rng.randint(90, 200))]
            for _ in range(count)]


def workload_summary(work: Workload) -> dict:
    """The report's description of the workload: prompt lengths and each phase's rows."""
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
