"""Exit 0 when every requirement in the given requirements files is installed, else 1.

``scripts/setup.sh`` asks this first, so a machine that already has everything skips pip's
resolver (about 10 s on the project's 2-core machine) on every demo and test run.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file, following ``-r`` includes."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            lines += requirement_lines(path.parent / line[2:].strip())
        elif line:
            lines.append(line)
    return lines


def unmet(lines: list[str]) -> list[str]:
    """The requirements (applying to this platform) that are missing or at another version."""
    missing = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            return [line]  # something pip understands and we do not: let pip decide
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (installed: {version})")
    return missing


def main(argv: list[str]) -> int:
    lines = [line for name in argv for line in requirement_lines(Path(name))]
    return 1 if unmet(lines) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
