"""Synthetic results folders for the HTML report's tests (no tests of its own).

``synthetic_study`` writes what the phases would: phase-1 record files and their summary
(``phase1_main.summarize``), phase-1b records and summary (``plateau.summarize``), and labelled
annotation TSVs (``queue.build_rows`` + ``tsv.write_table``). A rollout is a list of tokens and
the record at budget B holds the text of its first B tokens, as the truncation strategy makes
it. With a codec (SmolLM2's tokenizer: ``smol_codec``) the tokens are real token ids decoded
with special tokens skipped, as the engine decodes; without one a token is four characters of
text (fast, for the GSM8K-sized folder).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config import REPO_ROOT, StudyConfig
from study import store
from study.annotation import queue, tsv

MODEL = "smollm2-135m"
HOSTILE = "</script><script>window.__pwned = 1</script></div><b>bold?</b> &amp; <!-- x"
WORDS = ("First", "we", "add", "the", "numbers:", "then", "multiply", "and", "check", "so",
         "that", "gives", "us", "a", "total", "of", "Let", "me", "verify", "again.")


@dataclass(frozen=True)
class Codec:
    encode: Callable[[str], list[int]]
    decode: Callable[[Sequence[int]], str]


@dataclass
class Study:
    """What a synthetic folder holds, for the tests to compute expectations from."""

    results: Path
    annotations: Path
    budgets: list[int]
    tokens: dict[str, list] = field(default_factory=dict)  # problem id -> rollout tokens
    decode: Callable[[Sequence], str] = "".join  # type: ignore[assignment]
    records: dict[int, list[dict]] = field(default_factory=dict)
    p1b_budgets: list[int] = field(default_factory=list)
    p1b_tokens: dict[tuple[str, int], list] = field(default_factory=dict)
    labels: list[tuple[str, int, str, str]] = field(default_factory=list)  # id, budget, type, note


def gsm8k_questions(n: int) -> list[tuple[str, str]]:
    """(question, gold) of the first n problems of the shipped GSM8K test set."""
    rows = [json.loads(line) for line in
            (REPO_ROOT / "data" / "gsm8k_test.jsonl").read_text().splitlines()[:n]]
    return [(r["question"], r["answer"].split("####")[-1].strip()) for r in rows]


def pattern(i: int, k: int) -> list[bool]:
    """Verdicts of problem i at k budgets: a jump, always wrong, always right, a regression,
    a zigzag (rises twice: no jump), in turn."""
    kind = i % 5
    if kind == 0:
        flip = 1 + i // 5 % (k - 1)
        return [j >= flip for j in range(k)]
    if kind == 1:
        return [False] * k
    if kind == 2:
        return [True] * k
    if kind == 3:
        return [j < k // 2 for j in range(k)]
    return [j % 2 == 1 for j in range(k)]


def rollout_text(rng: random.Random, gold: str, words: int, hostile: bool) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words * (4 if hostile else 1)))
    head = "🙂 Let's solve it. " + (HOSTILE + " " if hostile else "")
    return f"{head}{body} 2 + 3 = 5. So the answer is {gold}. {body}"


def make_records(study: Study, pid: str, question: str, gold: str, tokens: list,
                 budgets: Sequence[int], verdicts: Sequence[bool], sample: int) -> list[dict]:
    out = []
    for budget, ok in zip(budgets, verdicts):
        used = min(budget, len(tokens))
        cut = len(tokens) > budget
        out.append({"problem_id": pid, "question": question, "ground_truth": gold,
                    "generated": study.decode(tokens[:budget]),
                    "predicted": gold if ok else (None if cut else gold + "1"),
                    "predicted_strict": gold if ok else None, "correct": ok,
                    "correct_strict": ok, "tokens_used": used, "budget": budget,
                    "hit_budget": cut, "sample": sample})
    return out


def smol_codec() -> Codec | None:
    """SmolLM2's tokenizer read with the ``tokenizers`` library (a second to load, where
    transformers' takes half a minute on a busy 2-core machine); None when the converted model
    is not there (``data/models``, made by scripts/setup.sh)."""
    from engine.loading import SMOLLM2_DIR_NAME

    path = REPO_ROOT / "data" / "models" / SMOLLM2_DIR_NAME / "tokenizer.json"
    if not path.exists():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    return Codec(lambda text: tok.encode(text, add_special_tokens=False).ids,
                 lambda ids: tok.decode(list(ids), skip_special_tokens=True))


def synthetic_study(root: Path, n: int, budgets: Sequence[int], codec: Codec | None = None,
                    p1b_budgets: Sequence[int] = (), k: int = 3, p1b_problems: int | None = None,
                    length: Callable[[random.Random], int] | None = None) -> Study:
    """Write a results folder of ``n`` GSM8K problems (``synthetic_study.__doc__`` above)."""
    import phase1_main
    from study.analysis import plateau

    rng = random.Random(7)
    study = Study(root / "results", root / "annotations", list(budgets))
    if codec is not None:
        study.decode = codec.decode
    length = length or (lambda r: r.randint(budgets[0] // 2, budgets[-1] + budgets[-1] // 2))

    def tokens_for(gold: str, hostile: bool) -> list:
        # The hostile rollout runs past the largest budget, so all of it is on the page.
        want = max(length(rng), budgets[-1] + 1 if hostile else 0)
        text = rollout_text(rng, gold, rng.randint(20, 60), hostile)
        while True:
            pieces = (codec.encode(text) if codec
                      else [text[i:i + 4] for i in range(0, len(text), 4)])
            if len(pieces) >= want:
                return pieces[:want]
            text += " " + " ".join(rng.choice(WORDS) for _ in range(want))  # a rambling tail

    by_budget: dict[int, list[dict]] = {b: [] for b in budgets}
    sampled: dict[int, list[dict]] = {b: [] for b in p1b_budgets}
    for i, (question, gold) in enumerate(gsm8k_questions(n)):
        pid = f"gsm8k-{i:04d}"
        study.tokens[pid] = tokens_for(gold, hostile=i == 3)
        for b, r in zip(budgets, make_records(study, pid, question, gold, study.tokens[pid],
                                              budgets, pattern(i, len(budgets)), 0)):
            by_budget[b].append(r)
        if p1b_budgets and i < (p1b_problems or n):
            for s in range(k):
                ids = study.p1b_tokens[(pid, s)] = tokens_for(gold, hostile=False)
                verdicts = [rng.random() < 0.5 for _ in p1b_budgets]
                for b, r in zip(p1b_budgets, make_records(study, pid, question, gold, ids,
                                                          p1b_budgets, verdicts, s)):
                    sampled[b].append(r)
    head = {"model": MODEL, "dataset": "gsm8k", "provenance": {"wall_time_s": 1.0}}
    for b, recs in by_budget.items():
        store.write_json(store.phase1_record_path(study.results, MODEL, b), recs)
    store.write_json(store.phase1_combined_path(study.results, MODEL),
                     {"phase": "phase1", **head, **phase1_main.summarize(by_budget, 0.95)})
    study.records = by_budget
    if p1b_budgets:
        st = dataclasses.replace(StudyConfig().statistics, bootstrap_resamples=50)
        for b, recs in sampled.items():
            store.write_json(store.phase1b_record_path(study.results, MODEL, b), recs)
        store.write_json(store.phase1b_summary_path(study.results, MODEL),
                         {"phase": "phase1b", **head, "samples": k,
                          **plateau.summarize(sampled, st, 7)})
        study.p1b_budgets = list(p1b_budgets)
    annotate(study, rng)
    return study


def annotate(study: Study, rng: random.Random) -> None:
    """Label the first wrong answers at two budgets the way an annotator would (plus one row
    left unlabelled), through the project's own TSV writer."""
    kinds = ("arithmetic", "logic", "incomplete")
    for budget in study.budgets[-2:]:
        wrong = [r for r in study.records[budget] if not r["correct"]][:6]
        rows = queue.build_rows(budget, wrong)
        for j, row in enumerate(rows[:-1]):
            row.update(error_type=kinds[j % 3], annotator="human", recoverable="yes",
                       notes=f"note <i>{j}</i> for {row['problem_id']}", error_location="")
            study.labels.append((row["problem_id"], budget, kinds[j % 3], row["notes"]))
        tsv.write_table(tsv.tsv_path(study.annotations / MODEL, budget), rows)
