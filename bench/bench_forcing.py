"""Cost of force-end over a budget grid: one rollout + KV branches against one run per budget.

- **per-budget (s1's way)**: for every budget B, generate B tokens for every prompt, then
  generate the forced answer from prompt + those tokens (EOS dropped) + cue: the prefix is
  generated again at every budget and re-encoded for every answer.
- **ours (--budget-mode force-end)**: one rollout per prompt to the largest budget, then every
  budget's answer as a short branch off a crop of that rollout's KV cache
  (``Engine.branch_answers``; each rollout encoded once).

Both use the project's engine (``Engine.generate_rollouts``), greedy, the same prompts (the
offline ``arith`` set under the chat template), the same cue and answer length. The forced
answers of the two ways are compared row by row. ``--no-eos`` masks EOS while thinking, so every
row runs to its budget (the token ratio then depends on the grid alone: ~2x on the doubling
grid, ~7.6x on the cliff grid).

    python -m bench.bench_forcing --model smollm2-135m --num-prompts 8
    python -m bench.bench_forcing --model smollm2-135m --num-prompts 4 --no-eos --grids cliff

Prints a table and writes ``results/bench_forcing_{model}.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import utils  # noqa: E402
from config import StudyConfig  # noqa: E402
from engine.hf import scheduler  # noqa: E402
from study.data.datasets import load_problems  # noqa: E402

GRIDS = {"doubling": (32, 64, 128, 256, 512, 1024, 2048),  # the spec's phase-1 grid
         "cliff": tuple(range(96, 257, 16))}  # the spec's phase-3 grid
GREEDY = utils.SamplingConfig()


def _no_eos(eos_ids: tuple[int, ...]) -> utils.LogitsHook:
    def hook(rows, steps, logits):
        logits = logits.clone()
        logits[:, list(eos_ids)] = float("-inf")
        return logits
    return hook


def _thinking(tokens: tuple[int, ...], eos_ids: tuple[int, ...], budget: int) -> list[int]:
    ids = list(tokens[:budget])
    return ids[:-1] if ids and ids[-1] in eos_ids else ids


def per_budget(lm, prompts, budgets, cue, answer_tokens, batch, hook) -> dict:
    """s1's way: one generation per budget, then the answer from a re-encoded prefix."""
    seeds = [0] * len(prompts)
    started = time.perf_counter()
    generated = encoded = 0
    answers = {}
    for budget in budgets:
        outs = scheduler.generate_rollouts(lm, prompts, budget, GREEDY, seeds, batch,
                                           progress=False, logits_hook=hook)
        thinking = [_thinking(o.token_ids, lm.eos_ids, budget) for o in outs]
        forced = [p + t + cue for p, t in zip(prompts, thinking)]
        got = lm.generate_rollouts(forced, answer_tokens, GREEDY, seeds, batch,
                                      progress=False)
        generated += sum(len(o.token_ids) for o in outs) + sum(len(a.token_ids) for a in got)
        encoded += sum(len(p) for p in prompts) + sum(len(f) for f in forced)
        answers.update({(i, budget): a.token_ids for i, a in enumerate(got)})
    return {"wall_s": time.perf_counter() - started, "generated_tokens": generated,
            "encoded_prompt_tokens": encoded, "answers": answers}


def one_rollout(lm, prompts, budgets, cue, answer_tokens, batch, hook) -> dict:
    """Ours: one rollout to the largest budget, every answer a branch off its KV cache."""
    started = time.perf_counter()
    outs = scheduler.generate_rollouts(lm, prompts, max(budgets), GREEDY, [0] * len(prompts),
                                       batch, progress=False, logits_hook=hook)
    thinking = {(i, b): _thinking(o.token_ids, lm.eos_ids, b)
                for i, o in enumerate(outs) for b in budgets}
    branches = sorted({(i, len(t)) for (i, _), t in thinking.items()})
    sequences = [p + list(o.token_ids) for p, o in zip(prompts, outs)]
    got = lm.branch_answers(sequences, [utils.Branch(i, len(prompts[i]) + n)
                                               for i, n in branches], cue, answer_tokens, batch)
    by_branch = dict(zip(branches, got))
    generated = sum(len(o.token_ids) for o in outs) + sum(len(a.token_ids) for a in got)
    encoded = sum(len(p) for p in prompts) + sum(
        len(prompts[i]) + max(n for j, n in branches if j == i) for i in {i for i, _ in branches})
    encoded += len(branches) * len(cue)
    answers = {(i, b): by_branch[(i, len(t))].token_ids for (i, b), t in thinking.items()}
    return {"wall_s": time.perf_counter() - started, "generated_tokens": generated,
            "encoded_prompt_tokens": encoded, "branches": len(branches), "answers": answers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--num-prompts", type=int, default=8)
    parser.add_argument("--grids", nargs="+", choices=tuple(GRIDS), default=list(GRIDS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-eos", action="store_true", help="every row thinks to its budget")
    parser.add_argument("--data-dir", type=Path, default=StudyConfig().paths.data_dir)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    cfg = StudyConfig()
    lm = utils.load_model(args.model, "fp32", args.data_dir, "cpu")
    problems = load_problems("arith", args.num_prompts, cfg.seed, args.data_dir)
    prompts = utils.chat_prompt_ids(lm.tokenizer, [p.prompt for p in problems])
    cue = lm.tokenizer(cfg.forcing.cue, add_special_tokens=False)["input_ids"]
    hook = _no_eos(lm.eos_ids) if args.no_eos else None
    report = {"model": args.model, "device": lm.describe(),
              "torch_threads": torch.get_num_threads(), "num_prompts": len(prompts),
              "no_eos": args.no_eos, "answer_tokens": cfg.forcing.answer_tokens, "grids": {}}
    print(f"{'grid':<10}{'way':<12}{'gen tok':>9}{'enc tok':>9}{'wall s':>9}")
    for name in args.grids:
        budgets = GRIDS[name]
        ours = one_rollout(lm, prompts, budgets, cue, cfg.forcing.answer_tokens,
                           args.batch_size, hook)
        theirs = per_budget(lm, prompts, budgets, cue, cfg.forcing.answer_tokens,
                            args.batch_size, hook)
        same = sum(ours["answers"][k] == theirs["answers"][k] for k in ours["answers"])
        row = {"budgets": list(budgets), "answers_equal": same, "answers": len(ours["answers"]),
               "ratio_tokens": theirs["generated_tokens"] / ours["generated_tokens"],
               "ratio_wall": theirs["wall_s"] / ours["wall_s"]}
        for way, r in (("one-rollout", ours), ("per-budget", theirs)):
            row[way] = {k: v for k, v in r.items() if k != "answers"}
            print(f"{name:<10}{way:<12}{r['generated_tokens']:>9}{r['encoded_prompt_tokens']:>9}"
                  f"{r['wall_s']:>9.1f}")
        print(f"{name:<10}ratio: tokens {row['ratio_tokens']:.2f}x, wall {row['ratio_wall']:.2f}x;"
              f" forced answers equal {same}/{len(ours['answers'])}")
        report["grids"][name] = row
    out = args.out or REPO / "results" / f"bench_forcing_{utils.model_tag(args.model)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({os.cpu_count()} CPU cores visible)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
