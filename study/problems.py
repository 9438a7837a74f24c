"""Problem sets: GSM8K (hub or local file), GSM-Symbolic and the offline `arith` demo set.

A dataset yields ``Problem``s with a stable ``problem_id``, the gold answer and the user prompt
(the prompt template of each dataset lives here, next to the data, not in the engine).
``--num-samples N`` takes the first N problems, so smaller runs are prefixes of larger ones.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from study.errors import DatasetError  # also re-exported: callers catch problems.DatasetError
from study.grading import parse_gold

# Qwen2.5's recommended math instruction; chat models then end with a boxed answer we can grade.
GSM8K_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
# The arith demo set keeps the bare zero-shot CoT cue: SmolLM2-135M follows it better than \boxed.
ARITH_SUFFIX = " Let's think step by step."
LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
GSM8K_CACHE_NAME = "gsm8k_test.jsonl"
DEFAULT_GENERATED_SIZE = 500  # problems drawn for seeded generated sets when --num-samples is unset


@dataclass(frozen=True)
class Problem:
    problem_id: str
    question: str  # the question as the dataset states it
    answer: str  # normalised gold answer
    prompt: str  # the user message sent to the model


def _problem(prefix: str, index: int, question: str, answer: str, suffix: str) -> Problem:
    """One Problem: the id format and gold parsing are shared by every dataset."""
    return Problem(f"{prefix}-{index:05d}", question, parse_gold(answer), question + suffix)


def is_local_dataset(name: str) -> bool:
    """Whether ``--dataset`` names a local file (by its suffix) rather than a known set."""
    return Path(name).suffix.lower() in LOCAL_SUFFIXES


def load_problems(name: str, num_samples: int | None, seed: int, data_dir: Path) -> list[Problem]:
    """Load ``num_samples`` problems (all when None) of dataset ``name``."""
    if name == "arith":
        return _reasoning_gym_problems("arith", num_samples, seed)
    if name == "gsm-symbolic":
        return _reasoning_gym_problems("gsm-symbolic", num_samples, seed)
    if name == "gsm8k":
        return _take(_gsm8k_rows(Path(data_dir)), num_samples, "gsm8k-test", GSM8K_SUFFIX)
    if is_local_dataset(name):
        path = Path(name)
        if not path.exists():
            raise DatasetError(f"--dataset {name}: file not found")
        return _take(read_local_rows(path), num_samples, path.stem, GSM8K_SUFFIX)
    raise DatasetError(
        f"--dataset {name!r}: unknown dataset; use gsm8k, gsm-symbolic, arith, or a local "
        ".jsonl/.json/.csv/.parquet file with 'question' and 'answer' columns"
    )


def _take(rows: list[dict], num_samples: int | None, prefix: str, suffix: str) -> list[Problem]:
    rows = rows if num_samples is None else rows[:num_samples]
    return [_problem(prefix, index, str(row["question"]).strip(), str(row["answer"]), suffix)
            for index, row in enumerate(rows)]


def _reasoning_gym_problems(name: str, num_samples: int | None, seed: int) -> list[Problem]:
    import reasoning_gym

    size = num_samples or DEFAULT_GENERATED_SIZE
    if name == "arith":
        data = reasoning_gym.create_dataset(
            "basic_arithmetic", size=size, seed=seed, min_terms=2, max_terms=3, min_digits=1,
            max_digits=1, operators=("+", "*"), allow_parentheses=False, allow_negation=False,
        )
        suffix, prefix = ARITH_SUFFIX, f"arith-s{seed}"
    else:
        data = reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed)
        suffix, prefix = GSM8K_SUFFIX, f"gsm-symbolic-s{seed}"
    return [_problem(prefix, i, item["question"], str(item["answer"]), suffix)
            for i, item in enumerate(data)]


def _gsm8k_rows(data_dir: Path) -> list[dict]:
    """GSM8K test split: the cached copy under data/, else the hub (then cached for offline use)."""
    cache = data_dir / GSM8K_CACHE_NAME
    if cache.exists():
        return read_local_rows(cache)
    try:
        import datasets

        split = datasets.load_dataset("openai/gsm8k", "main", split="test",
                                      cache_dir=str(data_dir / "hf"))
    except (OSError, ConnectionError, ValueError, RuntimeError) as exc:
        raise DatasetError(
            "GSM8K could not be downloaded from the Hugging Face hub (openai/gsm8k, config main, "
            f"split test): {type(exc).__name__}. Offline? Copy the test split as JSONL with "
            f"'question' and 'answer' fields to {cache}, or pass --dataset path/to/file.jsonl"
        ) from exc
    rows = [{"question": r["question"], "answer": r["answer"]} for r in split]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def read_local_rows(path: Path) -> list[dict]:
    """Rows with 'question' and 'answer' from a .jsonl/.json/.csv/.parquet file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data if isinstance(data, list) else data.get("data", data.get("rows", []))
        elif suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        else:
            import pandas as pd

            rows = pd.read_parquet(path).to_dict("records")
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    for line_no, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "question" not in row or "answer" not in row:
            raise DatasetError(f"{path}: row {line_no}: needs 'question' and 'answer' fields")
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows
