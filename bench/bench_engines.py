"""HF engine against vLLM engine on the demo's phase 1: the same 40 greedy rollouts, side by side.

    python -m bench.bench_engines                      # both engines, a table on stdout
    python -m bench.bench_engines --engines vllm --json out.json

Each engine runs in its own child process (``--one ENGINE``), so its start-up and peak memory
(RSS summed over the process tree, sampled every 0.25 s: vLLM runs an engine-core and a worker
process) are its own. The workload is the demo config's phase 1 (``examples/demo.yaml``: 40
``arith`` prompts under the chat template), greedy, one rollout per prompt up to the largest
budget (512), loaded the way the phases load it (``load_study_model``). Then force-end over the
cliff grid (phase 3's budgets, 16..128): every rollout cut at each budget, the cue appended and
the answer generated greedily (``Engine.branch_answers``, as ``--budget-mode force-end`` does).
The table says whether the two engines produced the same tokens (sha256 of every rollout and of
every forced answer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _tree_rss() -> int:
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_one(engine: str, budget: int | None) -> dict:
    """Load (timed), generate phase 1's rollouts (timed), and measure peak memory."""
    import utils
    from config import DEMO_CONFIG, load_yaml
    from study.data.datasets import load_problems
    from study.strategies.forcing import cue_text
    from study.strategies.rollouts import load_study_model

    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss())
            time.sleep(0.25)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    cfg = load_yaml(DEMO_CONFIG).replace({"model.engine": engine})
    budget = budget or max(cfg.phase1.budgets)
    started = time.perf_counter()
    lm = load_study_model(cfg)
    loaded = time.perf_counter()
    problems = load_problems(cfg.data.dataset, cfg.data.num_samples, cfg.seed, cfg.paths.data_dir)
    prompts = utils.chat_prompt_ids(lm.tokenizer, [p.prompt for p in problems])
    seeds = [utils.row_seed(cfg.seed, p.problem_id, 0) for p in problems]
    rollouts = lm.generate_rollouts(prompts, budget, utils.SamplingConfig(), seeds,
                                       cfg.model.batch_size, progress=False)
    done = time.perf_counter()
    sequences = [p + list(r.token_ids) for p, r in zip(prompts, rollouts)]
    cuts = sorted({(i, min(len(prompts[i]) + b, len(sequences[i])))
                   for i in range(len(prompts)) for b in cfg.phase3.budgets})
    branches = [utils.Branch(i, cut) for i, cut in cuts]
    cue = lm.tokenizer(cue_text(cfg, lm.tokenizer), add_special_tokens=False)["input_ids"]
    answers = lm.branch_answers(sequences, branches, cue, cfg.forcing.answer_tokens,
                                   cfg.model.batch_size, False)
    forced = time.perf_counter()
    stop.set()
    watcher.join()
    tokens = sum(len(r.token_ids) for r in rollouts)
    digest = hashlib.sha256(json.dumps([[list(r.token_ids) for r in rollouts],
                                        [list(a.token_ids) for a in answers]]).encode())
    if engine == "vllm":
        utils.shutdown_vllm(lm)
    return {"engine": engine, "prompts": len(prompts), "budget": budget, "tokens": tokens,
            "startup_s": round(loaded - started, 1), "generation_s": round(done - loaded, 1),
            "force_end_branches": len(branches), "force_end_s": round(forced - done, 1),
            "wall_s": round(forced - started, 1),
            "tokens_per_s": round(tokens / max(done - loaded, 1e-9), 1),
            "tokens_per_s_with_startup": round(tokens / max(done - started, 1e-9), 1),
            "peak_rss_gib": round(peak[0] / 2**30, 2), "device": lm.describe(),
            "tokens_sha256": digest.hexdigest()[:16]}


def table(rows: list[dict]) -> str:
    """A markdown table, with the vLLM / HF ratios when both ran."""
    head = ("| engine | device | tokens | start-up s | generation s | tok/s | force-end s "
            "(branches) | wall s | tok/s incl. start-up | peak RSS GiB | tokens sha256 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head] + [f"| {r['engine']} | {r['device']} | {r['tokens']} | {r['startup_s']} | "
                      f"{r['generation_s']} | {r['tokens_per_s']} | {r['force_end_s']} "
                      f"({r['force_end_branches']}) | {r['wall_s']} | "
                      f"{r['tokens_per_s_with_startup']} | {r['peak_rss_gib']} | "
                      f"{r['tokens_sha256']} |" for r in rows]
    by = {r["engine"]: r for r in rows}
    if {"hf", "vllm"} <= by.keys():
        hf, vl = by["hf"], by["vllm"]
        lines.append(f"\nvllm / hf: generation {vl['tokens_per_s'] / hf['tokens_per_s']:.2f}x "
                     f"tok/s, with start-up {vl['tokens_per_s_with_startup'] / hf['tokens_per_s_with_startup']:.2f}x; "  # noqa: E501
                     f"identical tokens: {hf['tokens_sha256'] == vl['tokens_sha256']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=["hf", "vllm"], choices=["hf", "vllm"])
    parser.add_argument("--budget", type=int, default=None, help="default: demo's largest (512)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--one", choices=["hf", "vllm"], help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.budget)), flush=True)
        return 0
    rows = []
    for engine in args.engines:
        cmd = [sys.executable, "-m", "bench.bench_engines", "--one", engine]
        cmd += ["--budget", str(args.budget)] if args.budget else []
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        found = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not found:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode or 1
        rows.append(json.loads(found[-1][len("RESULT "):]))
        print(f"{engine}: done ({rows[-1]['wall_s']} s)", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
