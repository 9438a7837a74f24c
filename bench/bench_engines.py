"""The HF engine, in-process vLLM and a served model (vLLM's OpenAI-compatible server) on the
demo's phase 1: the same 40 greedy rollouts and force-end answers, side by side.

    python -m bench.bench_engines                      # hf, vllm, openai: a table on stdout
    python -m bench.bench_engines --engines openai --max-concurrency 16 40 --json out.json

Each engine runs in its own child process (``--one ENGINE``), so its start-up and peak memory
(RSS summed over the process tree, sampled every 0.25 s: vLLM runs an engine-core and a worker
process) are its own. The workload is the demo config's phase 1 (``examples/demo.yaml``: 40
``arith`` prompts under the chat template), greedy, one rollout per prompt up to the largest
budget (512), loaded the way the phases load it (``load_study_model``). Then force-end over the
cliff grid (phase 3's budgets, 16..128): every rollout cut at each budget, the cue appended and
the answer generated greedily (``Engine.branch_answers``, as ``--budget-mode force-end`` does).
The table says whether each engine produced the HF engine's tokens (sha256 of every rollout and
of every forced answer).

``openai``: this script starts a local vLLM server (``bench.served.VllmServer``, 127.0.0.1, a
free port, the in-process engine's KV cache size) and times its start-up apart: the server's
start is not the client's cost. The client (``--engine openai``) then runs the same workload
once per ``--max-concurrency``; the server is stopped by its process group at the end, whatever
happens. Besides wall times each row has the CPU seconds its processes used (client and server
apart) and the latency of one 1-token request (the per-request overhead).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE_NAMES = ("hf", "vllm", "openai")
SERVED_NAME = "smollm2-135m"  # what the local server calls the demo's model
# Sequential 1-token requests on a prefix-cached prompt: the per-request overhead.
OVERHEAD_REQUESTS = 20


def default_engines() -> list[str]:
    """Every engine when vLLM is installed (it also serves the openai row), else hf alone."""
    from engine.base import ENGINES

    return list(ENGINE_NAMES) if ENGINES["vllm"].missing() is None else ["hf"]


def default_concurrency() -> int:
    from engine.openai import OpenAISettings

    return OpenAISettings().max_concurrency


def study_config(engine: str, base_url: str | None = None, concurrency: int | None = None):
    """The demo config on ``engine``; for openai, pointed at the local server."""
    from config import DEMO_CONFIG, load_yaml

    changes: dict = {"model.engine": engine}
    if engine == "openai":
        changes.update({"openai.base_url": (base_url,), "openai.served_model": SERVED_NAME,
                        "openai.max_concurrency": concurrency or default_concurrency()})
    return load_yaml(DEMO_CONFIG).replace(changes)


class Sampler:
    """Peak RSS of this process tree (and of the server's, when given), every 0.25 s."""

    def __init__(self, server_pid: int | None = None):
        self.server_pid, self.peak, self.server_peak = server_pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from bench.served import tree_rss

        while True:
            self.peak = max(self.peak, tree_rss())
            if self.server_pid is not None:
                self.server_peak = max(self.server_peak, tree_rss(self.server_pid))
            if self._stop.wait(0.25):
                return


def cpu_now(server_pid: int | None) -> tuple[float, float]:
    """CPU seconds so far of (this process tree, the server's tree or 0)."""
    from bench.served import tree_cpu_s

    return tree_cpu_s(), tree_cpu_s(server_pid) if server_pid is not None else 0.0


def one_token_ms(lm, prompt: list[int], seed: int) -> float:
    """Median latency of one greedy 1-token request (its prompt cached after the first)."""
    import utils

    times = []
    for _ in range(OVERHEAD_REQUESTS):
        started = time.perf_counter()
        lm.generate_rollouts([prompt], 1, utils.SamplingConfig(), [seed], progress=False)
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times[1:]), 1)


def run_one(engine: str, budget: int | None, base_url: str | None = None,
            concurrency: int | None = None, server_pid: int | None = None) -> dict:
    """Load (timed), generate phase 1's rollouts and force-end (timed), with memory and CPU."""
    import utils
    from study.data.datasets import load_problems
    from study.strategies.forcing import cue_text
    from study.strategies.rollouts import load_study_model

    cfg = study_config(engine, base_url, concurrency)
    budget = budget or max(cfg.phase1.budgets)
    with Sampler(server_pid) as memory:
        started = time.perf_counter()
        lm = load_study_model(cfg)
        loaded = time.perf_counter()
        problems = load_problems(cfg.data.dataset, cfg.data.num_samples, cfg.seed,
                                 cfg.paths.data_dir)
        prompts = lm.prompt_ids([p.prompt for p in problems])
        seeds = [utils.row_seed(cfg.seed, p.problem_id, 0) for p in problems]
        cpu_start = cpu_now(server_pid)
        started_gen = time.perf_counter()
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
        cpu_end = cpu_now(server_pid)
        latency = one_token_ms(lm, prompts[0], seeds[0]) if engine != "hf" else None
    tokens = sum(len(r.token_ids) for r in rollouts)
    digest = hashlib.sha256(json.dumps([[list(r.token_ids) for r in rollouts],
                                        [list(a.token_ids) for a in answers]]).encode())
    if engine == "vllm":
        utils.shutdown_vllm(lm)
    row = {"engine": engine, "prompts": len(prompts), "budget": budget, "tokens": tokens,
           "startup_s": round(loaded - started, 1), "generation_s": round(done - started_gen, 1),
           "force_end_branches": len(branches), "force_end_s": round(forced - done, 1),
           "wall_s": round(forced - started, 1),
           "tokens_per_s": round(tokens / max(done - started_gen, 1e-9), 1),
           "tokens_per_s_with_startup": round(tokens / max(done - started, 1e-9), 1),
           "peak_rss_gib": round(memory.peak / 2**30, 2), "device": lm.describe(),
           "cpu_s": round(cpu_end[0] - cpu_start[0], 1), "one_token_ms": latency,
           "tokens_sha256": digest.hexdigest()[:16]}
    if engine == "openai":
        row.update(max_concurrency=cfg.openai.max_concurrency,
                   server_cpu_s=round(cpu_end[1] - cpu_start[1], 1),
                   server_peak_rss_gib=round(memory.server_peak / 2**30, 2))
    return row


# ---------------------------------------------------------------- the table


def label(row: dict) -> str:
    if row["engine"] == "openai":
        return f"openai (concurrency {row['max_concurrency']})"
    return row["engine"]


def table(rows: list[dict], server: dict | None = None) -> str:
    """A markdown table, with the ratios to HF and to in-process vLLM when they ran."""
    head = ("| engine | device | tokens | start-up s | generation s | tok/s | force-end s "
            "(branches) | wall s | tok/s incl. start-up | CPU s (client + server) | "
            "1-token request ms | peak RSS GiB (client + server) | tokens sha256 | "
            "same tokens as hf |\n" + "|---" * 14 + "|")
    by = {r["engine"]: r for r in rows if r["engine"] != "openai"}
    ref = by.get("hf", {}).get("tokens_sha256")
    lines = [head]
    for r in rows:
        served = r["engine"] == "openai"
        cpu = f"{r['cpu_s']} + {r['server_cpu_s']}" if served else f"{r['cpu_s']}"
        rss = (f"{r['peak_rss_gib']} + {r['server_peak_rss_gib']}" if served
               else f"{r['peak_rss_gib']}")
        same = "n/a" if ref is None else ("yes" if r["tokens_sha256"] == ref else "NO")
        lines.append(f"| {label(r)} | {r['device']} | {r['tokens']} | {r['startup_s']} | "
                     f"{r['generation_s']} | {r['tokens_per_s']} | {r['force_end_s']} "
                     f"({r['force_end_branches']}) | {r['wall_s']} | "
                     f"{r['tokens_per_s_with_startup']} | {cpu} | "
                     f"{r.get('one_token_ms') or '-'} | {rss} | {r['tokens_sha256']} | "
                     f"{same} |")
    lines.append("")
    if {"hf", "vllm"} <= by.keys():
        hf, vl = by["hf"], by["vllm"]
        lines.append(f"vllm / hf: generation {vl['tokens_per_s'] / hf['tokens_per_s']:.2f}x "
                     f"tok/s, with start-up {vl['tokens_per_s_with_startup'] / hf['tokens_per_s_with_startup']:.2f}x")  # noqa: E501
    for r in rows:
        if r["engine"] == "openai" and "vllm" in by:
            vl = by["vllm"]
            lines.append(f"{label(r)} / vllm: generation "
                         f"{r['tokens_per_s'] / vl['tokens_per_s']:.2f}x tok/s, force-end "
                         f"{r['force_end_s'] / max(vl['force_end_s'], 1e-9):.2f}x the time")
    if server is not None:
        lines.append(f"server start-up (launch to /health, counted in no row): "
                     f"{server['startup_s']} s")
    return "\n".join(lines)


# ---------------------------------------------------------------- running the children


def run_child(engine: str, budget: int | None, extra: list[str] = ()) -> dict:
    """One engine's row from its own process (stderr shown when it fails)."""
    cmd = [sys.executable, "-m", "bench.bench_engines", "--one", engine, *extra]
    cmd += ["--budget", str(budget)] if budget else []
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    found = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not found:
        raise RuntimeError(f"bench --one {engine} failed (exit {out.returncode}):\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(found[-1][len("RESULT "):])


def served_rows(budget: int | None, concurrencies: list[int], log_dir: Path,
                finished: Callable[[dict | None, dict], None]) -> None:
    """Start the local server (timed), run the client once per concurrency (each row handed to
    ``finished(row, server)`` as it comes), and stop the server whatever happens."""
    from bench.served import VllmServer
    from config import DEMO_CONFIG, load_yaml
    from engine.loading import prepare_smollm2

    cfg = load_yaml(DEMO_CONFIG)
    log = log_dir / "vllm-server.log"
    # the in-process engine's KV cache size, so both vLLM rows hold the same cache
    server = VllmServer(prepare_smollm2(cfg.paths.data_dir), SERVED_NAME, log,
                        kv_space_gib=cfg.vllm.cpu_kv_space_gib)
    try:
        started = time.perf_counter()
        server.start()
        info = {"startup_s": round(time.perf_counter() - started, 1), "log": str(log)}
        print(f"openai: server up at {server.url} ({info['startup_s']} s)", file=sys.stderr,
              flush=True)
        finished(None, info)
        for n in concurrencies:
            finished(run_child("openai", budget, ["--base-url", server.url,
                                                  "--max-concurrency", str(n),
                                                  "--server-pid", str(server.pid)]), info)
    finally:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", choices=ENGINE_NAMES, default=None,
                        help="default: hf vllm openai when vLLM is installed, else hf")
    parser.add_argument("--budget", type=int, default=None, help="default: demo's largest (512)")
    parser.add_argument("--max-concurrency", type=int, nargs="+", default=None,
                        help="openai: one row per value (default: the engine's, 16)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the server's log goes (default: a temporary folder)")
    # child mode: one engine in this process
    parser.add_argument("--one", choices=ENGINE_NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.one:
        concurrency = args.max_concurrency[0] if args.max_concurrency else None
        row = run_one(args.one, args.budget, args.base_url, concurrency, args.server_pid)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    engines = args.engines or default_engines()
    from engine.base import ENGINES

    if {"vllm", "openai"} & set(engines) and ENGINES["vllm"].missing():
        print(f"error: {ENGINES['vllm'].missing()} (the openai row serves the model with "
              "vLLM too)", file=sys.stderr)
        return 2
    # a SIGTERM unwinds like Ctrl-C, so the server's process group is stopped all the same
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[dict] = []
    server: dict = {}

    def finished(row: dict | None, served: dict | None = None) -> None:
        """Keep a row as it comes (the JSON is rewritten each time: a killed run keeps it)."""
        if served is not None:
            server.update(served)
        if row is not None:
            rows.append(row)
            print(f"{label(row)}: done ({row['wall_s']} s)", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps({"rows": rows, "server": server or None},
                                            indent=1) + "\n")

    try:
        for engine in [e for e in ENGINE_NAMES if e in engines]:
            if engine == "openai":
                log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-served-"))
                served_rows(args.budget, args.max_concurrency or [default_concurrency()],
                            log_dir, finished)
            else:
                finished(run_child(engine, args.budget))
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:  # what finished, also when a failure or a signal cut the run short
        if rows:
            print(table(rows, server or None), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
