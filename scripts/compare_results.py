"""Compare two results folders file by file, ignoring provenance and timing.

    python scripts/compare_results.py RESULTS_A RESULTS_B [--annotations A_DIR B_DIR]

Use it to check that a change (or another machine) reproduces a study: every JSON result must
be identical apart from its ``provenance`` block; rollout logs (``rollouts/*.jsonl``) must be
identical token for token; annotation TSVs (matched by file name, in any sub-folder) identical
byte for byte. Keys listed with ``--ignore`` (dotted, e.g. ``files``) are left out too.
Prints one line per file and exits 1 when anything differs, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TIMING_KEYS = {"provenance"}  # where wall times, versions and hashes live


def _strip(obj: Any, ignore: set[str], prefix: str = "") -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v, ignore, f"{prefix}{k}.") for k, v in obj.items()
                if k not in TIMING_KEYS and f"{prefix}{k}" not in ignore}
    if isinstance(obj, list):
        return [_strip(v, ignore, prefix) for v in obj]
    return obj


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The path of the first differing value, or None when equal."""
    if type(a) is not type(b):
        return f"{where or '.'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{where or '.'}: keys {sorted(set(a) ^ set(b)) or 'in another order'}"
        return next((d for k in a if (d := first_difference(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where or '.'}: {len(a)} vs {len(b)} items"
        return next((d for i, (x, y) in enumerate(zip(a, b))
                     if (d := first_difference(x, y, f"{where}[{i}]"))), None)
    return None if a == b else f"{where or '.'}: {a!r} vs {b!r}"


def compare_file(a: Path, b: Path, ignore: set[str]) -> str | None:
    if a.suffix == ".json":
        return first_difference(_strip(json.loads(a.read_text()), ignore),
                                _strip(json.loads(b.read_text()), ignore))
    return None if a.read_bytes() == b.read_bytes() else "contents differ"


def files_by_name(root: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pattern in patterns:
        for path in sorted(root.rglob(pattern)):
            found[str(path.relative_to(root)) if path.suffix != ".tsv" else path.name] = path
    return found


def compare_folders(a: Path, b: Path, patterns: tuple[str, ...], ignore: set[str]) -> int:
    left, right = files_by_name(a, patterns), files_by_name(b, patterns)
    differing = 0
    for name in sorted(set(left) | set(right)):
        if name not in left or name not in right:
            print(f"ONLY IN {'A' if name in left else 'B'}  {name}")
            differing += 1
            continue
        problem = compare_file(left[name], right[name], ignore)
        print(f"{'DIFFERS' if problem else 'same   '}  {name}" + (f"  ({problem})" if problem
                                                                 else ""))
        differing += bool(problem)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--annotations", nargs=2, type=Path, metavar=("A_DIR", "B_DIR"))
    parser.add_argument("--ignore", nargs="*", default=[], help="dotted keys to leave out")
    args = parser.parse_args(argv)
    ignore = set(args.ignore)
    differing = compare_folders(args.a, args.b, ("*.json", "*.jsonl"), ignore)
    if args.annotations:
        differing += compare_folders(*args.annotations, ("*.tsv",), ignore)
    print(f"{differing} file(s) differ" if differing else "all files identical "
          "(provenance blocks excluded)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
