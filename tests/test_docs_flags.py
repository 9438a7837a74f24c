"""The docs stay true: docs/flags.md is what scripts/gen_flags.py makes today, README.md stays
short, and every relative link in README.md and docs/*.md points to a file that exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
# [text](target) and ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _generator():
    spec = importlib.util.spec_from_file_location("gen_flags", REPO / "scripts" / "gen_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flags_doc_is_up_to_date():
    fresh = _generator().generate()
    committed = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    assert committed == fresh, "docs/flags.md is out of date: run `python scripts/gen_flags.py`"


def test_check_mode_fails_on_a_stale_file(tmp_path, capsys):
    gen = _generator()
    stale = tmp_path / "flags.md"
    stale.write_text("old\n", encoding="utf-8")
    assert gen.main(["--check", "--output", str(stale)]) == 1
    assert "python scripts/gen_flags.py" in capsys.readouterr().err
    assert gen.main(["--output", str(stale)]) == 0
    assert gen.main(["--check", "--output", str(stale)]) == 0


def test_flags_doc_lists_every_flag_and_key():
    gen = _generator()
    text = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    for name in gen.SCRIPTS:
        assert f"## `{name}.py`" in text
    for key, _, _ in gen.config_leaves():
        assert f"| `{key}` |" in text
    assert str(REPO) not in text  # nothing of this machine


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def _doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_to_existing_files(doc):
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))  # links in code blocks are not links
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)}: links to missing files: {broken}"


SLURM_SCRIPTS = sorted((REPO / "docs" / "slurm").glob("*.sbatch"))


@pytest.mark.parametrize("script", SLURM_SCRIPTS, ids=lambda p: p.name)
def test_slurm_scripts_parse_and_pass_known_flags(script):
    """Each job script is valid bash, and every flag it gives run_all.py is one of its flags."""
    import subprocess

    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text(encoding="utf-8")
    flags_doc = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    run_all = flags_doc.split("## `run_all.py`", 1)[1].split("\n## ", 1)[0]
    study = re.findall(r"^STUDY=\((.*)\)", text, re.MULTILINE)
    calls = re.findall(r"python run_all\.py((?:.*\\\n)*.*)", text)
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", " ".join(study + calls)))
    unknown = sorted(flag for flag in used if f"`{flag}`" not in run_all)
    assert not unknown, f"{script.name}: run_all.py has no {unknown}"
