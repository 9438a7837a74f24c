"""Shared command-line plumbing: argument types, common flags, and the one-line error exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import DATASETS, PRECISIONS, RunConfig, SamplingConfig, resolve_model
from datasets_io import is_local_dataset

USER_ERROR = 2  # exit code for anything the user can fix (bad flag, bad file, offline model)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (exit 2), not usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def batch_size(text: str) -> int:
    """A positive integer, or 'auto' (0): sized from free GPU memory (16 on CPU)."""
    return 0 if text == "auto" else positive_int(text)


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def add_run_args(parser: argparse.ArgumentParser, budgets: tuple[int, ...],
                 sampling: SamplingConfig) -> None:
    """Flags shared by the generating phases (1, 1b, 3)."""
    defaults = RunConfig()
    parser.add_argument("--model", default=defaults.model,
                        help="alias (qwen-1.5b, qwen-7b, qwen-math-1.5b, smollm2-135m), hub id or "
                        "local folder (default: %(default)s)")
    parser.add_argument("--dataset", default=defaults.dataset,
                        help="gsm8k, gsm-symbolic, arith, or a local .jsonl/.json/.csv/.parquet "
                        "file with question/answer columns (default: %(default)s)")
    parser.add_argument("--num-samples", type=positive_int, default=None,
                        help="use the first N problems (default: all; 500 for generated sets)")
    parser.add_argument("--budgets", type=positive_int, nargs="+", default=list(budgets),
                        help="token budgets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="default: %(default)s")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="auto = fp32 on CPU; bf16 on CUDA if the weights fit in 40%% of GPU "
                        "memory, else nf4 (default: %(default)s)")
    parser.add_argument("--batch-size", type=batch_size, default=defaults.batch_size,
                        help="rows decoded together, or 'auto' (fits free GPU memory; 16 on "
                        "CPU); halved on CUDA OOM (default: %(default)s)")
    parser.add_argument("--temperature", type=non_negative_float, default=sampling.temperature,
                        help="0 = greedy (default: %(default)s)")
    parser.add_argument("--top-p", type=probability, default=sampling.top_p,
                        help="nucleus mass when sampling (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if "
                        "available)")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir)
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    parser.add_argument("--overwrite", action="store_true",
                        help="discard finished or partial results of this phase and start over")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_config_from_args(args: argparse.Namespace, samples_per_problem: int = 1) -> RunConfig:
    """Validate model/dataset names and build the resolved RunConfig (raises ValueError)."""
    resolve_model(args.model)
    if args.dataset not in DATASETS and not is_local_dataset(args.dataset):
        raise ValueError(
            f"--dataset {args.dataset!r}: unknown dataset; use one of {', '.join(DATASETS)} or a "
            "local .jsonl/.json/.csv/.parquet file"
        )
    if is_local_dataset(args.dataset) and not Path(args.dataset).exists():
        raise ValueError(f"--dataset {args.dataset}: file not found")
    return RunConfig(
        model=args.model, dataset=args.dataset, num_samples=args.num_samples, seed=args.seed,
        precision=args.precision, batch_size=args.batch_size,
        budgets=tuple(sorted(set(args.budgets))),
        sampling=SamplingConfig(args.temperature, args.top_p if args.temperature > 0 else 1.0),
        samples_per_problem=samples_per_problem, results_dir=args.results_dir,
        data_dir=args.data_dir,
    )


def fail(message: str) -> int:
    """Print one clear error line and return the user-error exit code."""
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR
