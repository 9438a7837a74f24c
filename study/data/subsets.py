"""Which problems of a set a run takes: a range, a seeded random subset, or a list of ids.

Seed 001 runs on slices of a fixed set (``sample_idxs_range``); without a selection,
``--num-samples N`` takes the first N problems, so every "quick pass" is the same leading
slice. A selection is applied to the set's rows in this order, each step optional:

1. ``--problem-range START:END`` keeps the rows at positions START..END-1;
2. ``--problem-ids FILE`` keeps the rows whose ids the file lists (not with a range);
3. ``--num-samples N`` keeps N of what is left: the first N, or with ``--subset-seed S`` the
   first N of a permutation seeded by S. A smaller N thus draws a subset of a larger N's
   problems, as prefixes are for the plain first N.

Problems keep the id of their position in the whole set (``gsm8k-test-01000`` is problem 1000
whichever selection picked it) and are listed in the set's order. Pure: rows in, positions out.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from study.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class Subset:
    """A selection of problems, as the data section of the config gives it (all None: none)."""

    problem_range: str | None = None  # "START:END"
    subset_seed: int | None = None
    problem_ids: Path | None = None

    @property
    def empty(self) -> bool:
        return self.problem_range is None and self.subset_seed is None and \
            self.problem_ids is None


def subset_of(data: object) -> Subset:
    """The selection of a ``config.DataConfig`` (duck-typed: study.data imports no config)."""
    return Subset(getattr(data, "problem_range", None), getattr(data, "subset_seed", None),
                  getattr(data, "problem_ids", None))


def parse_range(text: str) -> tuple[int, int]:
    """``"START:END"`` -> (START, END) with 0 <= START < END; ConfigError naming the flag."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if match and int(match[1]) < int(match[2]):
        return int(match[1]), int(match[2])
    raise ConfigError(f"--problem-range {text!r}: expected START:END with 0 <= START < END, "
                      "e.g. --problem-range 1000:1200 (0-based, END excluded)")


def check(subset: Subset, num_samples: int | None) -> None:
    """Checks that need no dataset: the range's form, and flags that go together."""
    if subset.problem_range is not None:
        parse_range(subset.problem_range)
        if subset.problem_ids is not None:
            raise ConfigError("--problem-range and --problem-ids both select problems; give one "
                              "(put the ids of the range in the file)")
    if subset.subset_seed is not None and num_samples is None:
        raise ConfigError(f"--subset-seed {subset.subset_seed}: give the subset's size with "
                          "--num-samples N")


def read_ids(path: Path) -> list[tuple[int, str]]:
    """(line number, id) of each id in a file: one a line, blank lines and '#' comments
    skipped; DatasetError naming the file and line for a malformed or repeated id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DatasetError(f"--problem-ids {path}: cannot read it ({reason})") from None
    out: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if len(item.split()) > 1:
            raise DatasetError(f"{path}:{number}: {item!r} is not one id (one id a line)")
        if item in seen:
            raise DatasetError(f"{path}:{number}: id {item!r} repeats line {seen[item]}")
        seen[item] = number
        out.append((number, item))
    if not out:
        raise DatasetError(f"--problem-ids {path}: the file lists no ids")
    return out


def needed_rows(subset: Subset, num_samples: int | None, default: int) -> int | None:
    """How many rows a generated set must generate for this selection (its items do not depend
    on the size asked for): a range's END, else ``num_samples`` when it takes a prefix, else
    ``default`` (the draw and the id list pick from the default-sized set)."""
    if subset.problem_range is not None:
        return parse_range(subset.problem_range)[1]
    if subset.subset_seed is None and subset.problem_ids is None:
        return num_samples
    return default


def select(ids: Sequence[str], subset: Subset, num_samples: int | None,
           set_name: str) -> list[int]:
    """Positions (into ``ids``, the whole set's problem ids) of the selected problems, in the
    set's order; DatasetError for a range past the set's end or an id not in it."""
    positions = list(range(len(ids)))
    if subset.problem_range is not None:
        start, end = parse_range(subset.problem_range)
        if end > len(ids):
            raise DatasetError(f"--problem-range {subset.problem_range}: {set_name} has "
                               f"{len(ids)} problems (positions 0..{len(ids) - 1})")
        positions = positions[start:end]
    if subset.problem_ids is not None:
        where = {problem_id: i for i, problem_id in enumerate(ids)}
        listed = read_ids(subset.problem_ids)
        for number, problem_id in listed:
            if problem_id not in where:
                example = ids[0] if ids else "?"
                raise DatasetError(f"{subset.problem_ids}:{number}: unknown problem id "
                                   f"{problem_id!r}: not in {set_name} (its ids look like "
                                   f"{example!r})")
        positions = sorted(where[problem_id] for _, problem_id in listed)
    if num_samples is None or num_samples >= len(positions):
        return positions
    if subset.subset_seed is None:
        return positions[:num_samples]
    order = list(positions)
    random.Random(subset.subset_seed).shuffle(order)
    return sorted(order[:num_samples])


def fingerprint_keys(subset: Subset) -> dict:
    """The selection's keys in a rollout config: only those set (so fingerprints of runs
    without a selection stay valid); an id list by the sha256 of its ids, not its path."""
    keys: dict = {}
    if subset.problem_range is not None:
        start, end = parse_range(subset.problem_range)
        keys["problem_range"] = f"{start}:{end}"
    if subset.subset_seed is not None:
        keys["subset_seed"] = subset.subset_seed
    if subset.problem_ids is not None:
        listed = "\n".join(problem_id for _, problem_id in read_ids(subset.problem_ids))
        keys["problem_ids"] = hashlib.sha256(listed.encode()).hexdigest()
    return keys


def provenance(subset: Subset) -> dict:
    """The selection as the provenance block's dataset entry records it ({} for none)."""
    if subset.empty:
        return {}
    block = fingerprint_keys(subset)
    if subset.problem_ids is not None:
        block["problem_ids_file"] = str(subset.problem_ids)
    return {"selection": block}
