"""Rows from the Hugging Face hub, and multiple-choice questions built from rows.

The hub is asked once, quickly, whether it can be reached (``utils.hub_unreachable``) before
``datasets`` is called, because ``datasets`` retries for tens of seconds before failing offline.
Errors name the dataset, say why, and say what to do instead (log in for a gated set, a local
copy, the shipped copy).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from study.errors import DatasetError

HubSpec = tuple[str, "str | tuple[str, ...] | None", str]  # (repo id, config(s), split)


def read_hub(name: str, hub: HubSpec, data_dir: Path, instead: str,
             access: str = "") -> tuple[list[dict], str]:
    """Every row of ``hub`` (several configs are concatenated in order) and its location string.

    ``instead`` says what to do without the hub; ``access`` how to get access to a gated set.
    """
    repo, configs, split = hub
    names = configs if isinstance(configs, tuple) else (configs,)
    # Lazy: the probe lives with the engine's hub access; this module stays import-light.
    from utils import hub_unreachable

    if (reason := hub_unreachable()) is not None:
        raise DatasetError(f"{name}: the Hugging Face hub is unreachable ({reason}). With a "
                           f"cached copy under --data-dir, set HF_HUB_OFFLINE=1; otherwise "
                           f"{instead}")
    try:
        import datasets

        tables = [datasets.load_dataset(repo, config, split=split,
                                        cache_dir=str(Path(data_dir) / "hf")) for config in names]
    except (OSError, ConnectionError, ValueError, RuntimeError) as exc:
        gated = "gated" in str(exc).lower() or "authenticat" in str(exc).lower()
        why = f"it is gated: {access}" if gated and access else f"{type(exc).__name__}"
        raise DatasetError(
            f"{name} could not be read from the Hugging Face hub ({repo}, split {split}): {why}. "
            f"Offline? Connect once (the hub copy is then cached under --data-dir), or "
            f"{instead}") from exc
    rows = [dict(row) for table in tables for row in table]
    return rows, f"{repo}:{'+'.join(n or '' for n in names)}:{split}"


def shuffled_choices(question: str, correct: str, wrong: list[str],
                     key: str) -> tuple[str, str]:
    """The question with its choices in a seeded order, lettered A, B, ..., and the correct
    letter. ``key`` (e.g. "seed:index") fixes the permutation: same key, same order."""
    options = [correct.strip(), *(w.strip() for w in wrong)]
    order = list(range(len(options)))
    random.Random(key).shuffle(order)  # str seeds are hashed with SHA-512: stable across runs
    letters = string.ascii_uppercase
    lines = [f"{letters[pos]}) {options[i]}" for pos, i in enumerate(order)]
    return f"{question.strip()}\n\n" + "\n".join(lines), letters[order.index(0)]
