"""Generation benchmark: the spec's per-budget HF ``generate`` against the project's core.

Both engines do exactly the same work (``bench.workload``): N GSM8K-like questions under the
chat template, the study's phases with the study's budgets (``config.StudyConfig``), every
row's stop length forced. ``bench.engines`` times the two engines:

- baseline — the spec's method: one ``model.generate`` per budget, fixed batch size, prompts in
  input order, 4-bit nf4 on CUDA when bitsandbytes is installed (else bf16 / fp32, recorded).
- ours — ``Engine.generate_rollouts`` exactly as the phases call it: once per phase at its largest
  budget, every smaller budget read off the rollout; phase 3 reuses phase 1's greedy rollouts.

Greedy outputs of the two engines are compared token by token (when both run at the same
precision). Progress goes to stderr (a line per stage and a bar per engine; ``--quiet`` drops
them), the report to stdout and a JSON file. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import utils  # noqa: E402
from bench.engines import EngineRun, Progress, compare_greedy, run_baseline, run_ours  # noqa: E402
from bench.models import bench_tokenizer, load_engines  # noqa: E402
from bench.throughput import decode_benchmark  # noqa: E402
from bench.workload import (  # noqa: E402
    build_workload,
    make_prompts,
    workload_summary,
)
from config import StudyConfig  # noqa: E402


def describe_device(device: torch.device) -> str:
    """The GPU's name, or the CPU's core count and type."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def benchmark(args) -> dict:
    """Build the workload, run the requested engines and return the report."""
    progress = Progress(args.quiet)
    progress.stage(f"loading {args.model}")
    tokenizer = bench_tokenizer(Path(args.data_dir))
    ours_lm, base_lm = load_engines(args, tokenizer)
    if args.mode == "decode":
        return decode_benchmark(args, ours_lm, describe_device(ours_lm.device), progress)
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
        runs["ours"] = run_ours(ours_lm, work, args.batch_size, progress, args.kv_layout)
    if "baseline" in args.engines:
        size = args.baseline_batch_size or args.batch_size or 16
        runs["baseline"] = run_baseline(base_lm, work, size, args.baseline_max_batches,
                                        progress)
    progress.stage("done")
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
    """The report as a short table for the console."""
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
    study = StudyConfig()  # budgets, k, seed and folders default to a default study run's
    p = argparse.ArgumentParser(prog="bench_generation", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny",
                   help="tiny | qwen2.5-1.5b-random | a model alias or local folder")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64,
                   help="rows decoded together by ours (0 = chosen from free GPU memory)")
    p.add_argument("--baseline-batch-size", type=int, default=None,
                   help="the baseline's fixed batch size (default: --batch-size)")
    p.add_argument("--budgets", type=int, nargs="*", default=list(study.phase1.budgets),
                   help="phase 1 budgets (default: the study's)")
    p.add_argument("--cliff-budgets", type=int, nargs="*", default=list(study.phase3.budgets),
                   help="phase 3 budgets (default: the study's)")
    p.add_argument("--stochastic-budgets", type=int, nargs="*", default=list(study.phase1b.budgets),
                   help="phase 1b budgets (default: the study's)")
    p.add_argument("--samples", type=int, default=study.phase1b.samples,
                   help="phase 1b samples per prompt (default: the study's k)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--precision", default="auto", help="ours: auto | fp32 | bf16 | nf4")
    p.add_argument("--baseline-precision", default="auto",
                   help="auto = nf4 on CUDA with bitsandbytes (the spec), else bf16/fp32")
    p.add_argument("--baseline-max-batches", type=int, default=None,
                   help="time only this many batches per generate() sweep and scale up")
    p.add_argument("--kv-layout", choices=utils.KV_LAYOUTS, default="auto",
                   help="ours: KV-cache layout (auto = CUDA graphs on CUDA bf16/fp32)")
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
    p.add_argument("--seed", type=int, default=study.seed)
    p.add_argument("--data-dir", default=str(study.paths.data_dir))
    p.add_argument("--out", default=None, help="report path (default: results/bench_*.json)")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write its JSON report and print the table."""
    args = build_parser().parse_args(argv)
    report = benchmark(args)
    device = "cpu" if report["device"].startswith("cpu") else "cuda"
    name = f"bench_{args.mode}_{args.model.replace('/', '--')}_{device}.json"
    out = Path(args.out or StudyConfig().paths.results_dir / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
