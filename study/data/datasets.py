"""The dataset registry: every problem set the study runs on, declared once in ``REGISTRY``.

An entry names its loader (where the rows come from), its id scheme, its prompt template (with
the template's version) and its answer kind, which picks the grader: ``numeric`` (GSM-style
numbers), ``latex`` (``\\boxed{}`` expressions) or ``choice`` (a letter). ``config.DATASETS`` is
``tuple(REGISTRY)``; any local .jsonl/.json/.csv/.parquet file works too, its answer kind given
by ``--answer-kind``. A new dataset is one ``Dataset`` entry here.

Shipped copies live in the repository's ``data/`` next to ``SOURCES.md`` (attribution, license,
sha256); the sha256 is checked at every load. ``--data-source hub`` reads the hub instead.
``--num-samples N`` takes the first N problems, so smaller runs are prefixes of larger ones;
``study.data.subsets`` selects others (a range, a seeded subset, a list of ids).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from study.data import subsets
from study.data.gold_check import GoldChecker, arithmetic_answer, verify_golds
from study.data.hub_data import read_hub, shuffled_choices
from study.data.problems import (
    LOCAL_SUFFIXES,
    Problem,
    gold_answer,
    is_local_dataset,
    read_local_rows,
)
from study.data.subsets import Subset
from study.errors import DatasetError

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "data"  # the repository's data/
SOURCES_FILE = "SOURCES.md"
ANSWER_KINDS = ("numeric", "latex", "choice")
DATA_SOURCES = ("shipped", "hub")
LEGACY_TEMPLATE_VERSION = 1  # the version every pre-registry prompt had (kept out of fingerprints)
DEFAULT_GENERATED_SIZE = 500  # problems drawn for seeded generated sets when --num-samples is unset


@dataclass(frozen=True)
class Template:
    """A user prompt: ``{question}`` is replaced by the question (str.replace: LaTeX braces)."""

    text: str
    version: int = LEGACY_TEMPLATE_VERSION

    def fill(self, question: str) -> str:
        return self.text.replace("{question}", question)


# Qwen2.5's recommended math instruction; chat models then end with a boxed answer we can grade.
BOXED = Template("{question}\nPlease reason step by step, and put your final answer within "
                 "\\boxed{}.")
# The arith demo set keeps the bare zero-shot CoT cue: SmolLM2-135M follows it better than \boxed.
COT = Template("{question} Let's think step by step.")
LETTER = Template("{question}\nPlease reason step by step, and end with the line "
                  "\"Answer: X\", where X is the letter of the correct choice.")
TEMPLATES_BY_KIND = {"numeric": BOXED, "latex": BOXED, "choice": LETTER}  # for local files


@dataclass(frozen=True)
class Request:
    """What a loader is asked for."""

    num_samples: int | None
    seed: int
    data_dir: Path
    source: str  # "shipped" or "hub" (sets without a shipped copy ignore it)


@dataclass(frozen=True)
class Rows:
    """A loader's answer: rows with 'question' and 'answer' (maybe 'subject', 'level'), and
    where they came from (provenance)."""

    rows: list[dict]
    source: str  # "shipped", "hub", "generated" or "local file"
    location: str  # file path, hub id or generator
    sha256: str


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[Dataset, Request], Rows]
    id_prefix: str  # ids are "{id_prefix}-{index:05d}"; "{seed}" is replaced by the seed
    template: Template
    answer_kind: str
    origin: str  # for the README table
    license: str
    shipped_file: str | None = None
    hub: tuple[str, str | None, str] | None = None  # (repo id, config, split)
    # The row's question and answer fields (a choice set: question, correct, then wrong ones).
    fields: tuple[str, ...] = ("question", "answer")
    extra_fields: tuple[str, ...] = ()  # kept on each Problem (e.g. subject, level)
    # Recomputes a gold answer from its question where that is possible (study.data.gold_check).
    check_gold: GoldChecker | None = None
    local_copy: str | None = None  # a file under --data-dir read instead of the hub (gated sets)
    access: str = ""  # how to get access to a gated set


@dataclass(frozen=True)
class LoadedDataset:
    problems: list[Problem]
    info: dict  # provenance: name, source, location, sha256, n, answer_kind, template_version


def rows_sha256(rows: list[dict]) -> str:
    """sha256 of rows that come from no file (hub, generator): their canonical JSONL."""
    blob = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    return hashlib.sha256(blob.encode()).hexdigest()


def expected_sha256(filename: str, shipped_dir: Path) -> str:
    """The sha256 that SOURCES.md lists for a shipped file."""
    sources = shipped_dir / SOURCES_FILE
    try:
        text = sources.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{sources}: cannot read it ({exc.strerror}); restore it with "
                           f"`git checkout -- data/{SOURCES_FILE}`") from None
    for line in text.splitlines():
        if line.startswith(f"| {filename} |"):
            match = re.search(r"\b([0-9a-f]{64})\b", line)
            if match:
                return match.group(1)
    raise DatasetError(f"{sources}: no sha256 listed for {filename}; restore it with "
                       f"`git checkout -- data/{SOURCES_FILE}`")


def _shipped(spec: Dataset, request: Request) -> Rows:
    if request.source == "hub":
        return _hub(spec, request)
    path = SHIPPED_DIR / spec.shipped_file
    want = expected_sha256(spec.shipped_file, SHIPPED_DIR)
    try:
        got = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the shipped {spec.name} copy ({exc.strerror}); "
                           f"restore it with `git checkout -- data/{spec.shipped_file}`, or "
                           "pass --data-source hub") from None
    if got != want:
        raise DatasetError(f"{path}: sha256 {got[:12]}... differs from {want[:12]}... listed in "
                           f"data/{SOURCES_FILE}: the shipped copy is damaged; restore it with "
                           f"`git checkout -- data/{spec.shipped_file}`, or pass --data-source hub")
    rows = [_row(spec, r) for r in read_local_rows(path, spec.fields)]
    return Rows(rows, "shipped", str(path), got)


def _instead(spec: Dataset) -> str:
    """What to do when the hub cannot give a set."""
    if spec.shipped_file:
        return f"drop --data-source hub to use the shipped copy data/{spec.shipped_file}"
    if spec.local_copy:
        return f"put a local copy at --data-dir/{spec.local_copy} ({spec.access})"
    return ("save its rows as JSONL with 'question' and 'answer' and pass --dataset FILE.jsonl "
            f"--answer-kind {spec.answer_kind}")


def _hub(spec: Dataset, request: Request) -> Rows:
    raw, location = read_hub(spec.name, spec.hub, request.data_dir, _instead(spec), spec.access)
    rows = [_row(spec, r) for r in raw]
    return Rows(rows, "hub", location, rows_sha256(rows))


def _choices(spec: Dataset, request: Request) -> Rows:
    """A multiple-choice set (GPQA's columns): a local copy under --data-dir when there is one,
    else the hub; choices shuffled per problem with a permutation seeded by (seed, index)."""
    local = Path(request.data_dir) / spec.local_copy
    if local.exists():
        raw, source, location = read_local_rows(local, spec.fields), "local file", str(local)
        sha = hashlib.sha256(local.read_bytes()).hexdigest()
    else:
        raw, location = read_hub(spec.name, spec.hub, request.data_dir, _instead(spec),
                                 spec.access)
        source, sha = "hub", None
    question, correct, *wrong = spec.fields
    rows = []
    for index, row in enumerate(raw):
        text, letter = shuffled_choices(str(row[question]), str(row[correct]),
                                        [str(row[w]) for w in wrong], f"{request.seed}:{index}")
        rows.append({"question": text, "answer": letter})
    return Rows(rows, source, location, sha or rows_sha256(rows))


def _row(spec: Dataset, raw: dict) -> dict:
    question, answer = spec.fields
    row = {"question": str(raw[question]).strip(), "answer": str(raw[answer])}
    row.update({key: raw.get(key) for key in spec.extra_fields})
    return row


def _reasoning_gym(task: str, **options) -> Callable[[Dataset, Request], Rows]:
    def load(spec: Dataset, request: Request) -> Rows:
        with warnings.catch_warnings():
            # one of its dependencies (cellpylib) writes `is "literal"`; Python says so when it
            # first compiles the source, which setup.sh leaves to the first import (--no-compile)
            warnings.simplefilter("ignore", SyntaxWarning)
            import reasoning_gym

        size = request.num_samples or DEFAULT_GENERATED_SIZE
        data = reasoning_gym.create_dataset(task, size=size, seed=request.seed, **options)
        rows = [{"question": item["question"], "answer": str(item["answer"])} for item in data]
        return Rows(rows, "generated", f"reasoning-gym {task} (seed {request.seed}, size {size})",
                    rows_sha256(rows))

    return load


REGISTRY: dict[str, Dataset] = {d.name: d for d in (
    Dataset("gsm8k", _shipped, "gsm8k-test", BOXED, "numeric",
            "data/gsm8k_test.jsonl (= hub openai/gsm8k main/test)", "MIT",
            shipped_file="gsm8k_test.jsonl", hub=("openai/gsm8k", "main", "test")),
    Dataset("math500", _shipped, "math500", BOXED, "latex",
            "data/math500_test.jsonl (= hub HuggingFaceH4/MATH-500 test)", "MIT",
            shipped_file="math500_test.jsonl", hub=("HuggingFaceH4/MATH-500", None, "test"),
            fields=("problem", "answer"), extra_fields=("subject", "level")),
    # Schema checked on the dataset card: id, problem, solution, answer (an integer), url, year.
    Dataset("aime24", _hub, "aime24", BOXED, "numeric",
            "hub HuggingFaceH4/aime_2024 (train: AIME 2024 I and II)", "not stated (AIME: MAA)",
            hub=("HuggingFaceH4/aime_2024", None, "train"), fields=("problem", "answer")),
    # Schema checked on the dataset card and its users: two configs (AIME2025-I, AIME2025-II),
    # split test, fields question and answer (an integer).
    Dataset("aime25", _hub, "aime25", BOXED, "numeric",
            "hub opencompass/AIME2025 (test: AIME 2025 I and II)", "MIT (card); AIME: MAA",
            hub=("opencompass/AIME2025", ("AIME2025-I", "AIME2025-II"), "test"),
            fields=("question", "answer")),
    # Gated: config gpqa_diamond, split train (198 rows); the GPQA release's CSV has the same
    # columns. Choices are shuffled per problem and seed; the answer is a letter.
    Dataset("gpqa-diamond", _choices, "gpqa-diamond-s{seed}", LETTER, "choice",
            "hub Idavidrein/gpqa gpqa_diamond (gated), or a local copy", "CC-BY-4.0",
            hub=("Idavidrein/gpqa", "gpqa_diamond", "train"),
            fields=("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                    "Incorrect Answer 3"),
            local_copy="gpqa_diamond.csv",
            access="accept its terms at https://huggingface.co/datasets/Idavidrein/gpqa, then "
                   "`hf auth login` (or set HF_TOKEN); or save the GPQA release's "
                   "gpqa_diamond.csv under --data-dir"),
    Dataset("gsm-symbolic", _reasoning_gym("gsm_symbolic"), "gsm-symbolic-s{seed}", BOXED,
            "numeric", "generated offline by reasoning-gym gsm_symbolic (--seed)",
            "Apache-2.0 (reasoning-gym)"),
    Dataset("arith", _reasoning_gym("basic_arithmetic", min_terms=2, max_terms=3, min_digits=1,
                                    max_digits=1, operators=("+", "*"),
                                    allow_parentheses=False, allow_negation=False),
            "arith-s{seed}", COT, "numeric",
            "generated offline by reasoning-gym basic_arithmetic (--seed); golds verified",
            "Apache-2.0 (reasoning-gym)", check_gold=arithmetic_answer),
)}


def _local(spec: Dataset, request: Request) -> Rows:
    path = Path(spec.name)
    if not path.exists():
        raise DatasetError(f"--dataset {spec.name}: file not found")
    rows = [_row(spec, r) for r in read_local_rows(path)]
    return Rows(rows, "local file", str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def dataset_spec(name: str, answer_kind: str = "numeric") -> Dataset:
    """The registry entry of ``name``, or an ad-hoc entry for a local file."""
    if name in REGISTRY:
        return REGISTRY[name]
    if is_local_dataset(name):
        if answer_kind not in ANSWER_KINDS:
            raise DatasetError(f"--answer-kind {answer_kind!r}: use {', '.join(ANSWER_KINDS)}")
        return Dataset(name, _local, Path(name).stem,
                       TEMPLATES_BY_KIND[answer_kind], answer_kind, "local file", "-")
    raise DatasetError(
        f"--dataset {name!r}: unknown dataset; use {', '.join(REGISTRY)}, or a local "
        f"{'/'.join(LOCAL_SUFFIXES)} file with 'question' and 'answer' columns")


def rollout_keys(name: str, answer_kind: str = "numeric") -> dict:
    """Keys a dataset adds to the rollout config: none for the legacy numeric sets and
    templates (their fingerprints stay as before registries existed)."""
    spec = dataset_spec(name, answer_kind)
    keys: dict = {}
    if spec.answer_kind != "numeric":
        keys["answer_kind"] = spec.answer_kind
    if spec.template.version != LEGACY_TEMPLATE_VERSION:
        keys["template_version"] = spec.template.version
    return keys


def load_dataset(name: str, num_samples: int | None, seed: int, data_dir: Path,
                 answer_kind: str = "numeric", source: str = "shipped",
                 subset: Subset | None = None) -> LoadedDataset:
    """The first ``num_samples`` problems (all when None) of ``name``, or those ``subset``
    selects (``study.data.subsets``), with provenance."""
    spec, subset = dataset_spec(name, answer_kind), subset or Subset()
    size = subsets.needed_rows(subset, num_samples, DEFAULT_GENERATED_SIZE)
    loaded = spec.load(spec, Request(size, seed, Path(data_dir), source))
    prefix = spec.id_prefix.replace("{seed}", str(seed))
    ids = [f"{prefix}-{index:05d}" for index in range(len(loaded.rows))]
    positions = subsets.select(ids, subset, num_samples, name)  # ids keep their set position
    rows = [loaded.rows[i] for i in positions]
    fixes = []
    if spec.check_gold is not None:
        rows, fixes = verify_golds(rows, spec.check_gold)
    problems = [
        Problem(ids[index], row["question"],
                gold_answer(row["answer"], spec.answer_kind), spec.template.fill(row["question"]),
                spec.answer_kind, **{key: row.get(key) for key in spec.extra_fields})
        for index, row in zip(positions, rows)]
    info = {"name": name, "source": loaded.source, "location": loaded.location,
            "sha256": loaded.sha256, "n": len(problems), "rows_available": len(loaded.rows),
            "answer_kind": spec.answer_kind, "template_version": spec.template.version,
            **subsets.provenance(subset)}
    if spec.check_gold is not None:
        info["gold_checked"] = len(problems)
        info["gold_fixed"] = [{"problem_id": problems[f.index].problem_id, "stated": f.stated,
                               "verified": f.verified} for f in fixes]
    return LoadedDataset(problems, info)


def load_problems(name: str, num_samples: int | None, seed: int, data_dir: Path,
                  answer_kind: str = "numeric", source: str = "shipped",
                  subset: Subset | None = None) -> list[Problem]:
    """The problems of ``load_dataset`` without the provenance."""
    return load_dataset(name, num_samples, seed, data_dir, answer_kind, source, subset).problems
