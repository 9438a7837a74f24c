"""scripts/requirements_met.py: setup.sh skips pip only when every requirement is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("requirements_met",
                                               REPO / "scripts" / "requirements_met.py")
requirements_met = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(requirements_met)


def test_installed_missing_wrong_version_and_other_platforms():
    assert requirements_met.unmet(["pytest>=1", "numpy"]) == []
    assert requirements_met.unmet(["no-such-package-for-this-test>=1"]) != []
    assert requirements_met.unmet(["pytest<1"])[0].startswith("pytest<1 (installed: ")
    assert requirements_met.unmet(['no-such-package; sys_platform == "no-such-os"']) == []


def test_includes_are_followed_and_comments_dropped(tmp_path):
    (tmp_path / "base.txt").write_text("pytest>=1  # the runner\n\n# a comment\n")
    (tmp_path / "dev.txt").write_text("-r base.txt\nno-such-package-for-this-test\n")
    lines = requirements_met.requirement_lines(tmp_path / "dev.txt")
    assert lines == ["pytest>=1", "no-such-package-for-this-test"]
    assert requirements_met.main([str(tmp_path / "base.txt")]) == 0
    assert requirements_met.main([str(tmp_path / "dev.txt")]) == 1


def test_the_project_requirements_parse():
    lines = requirements_met.requirement_lines(REPO / "requirements-dev.txt")
    assert any(line.startswith("torch") for line in lines)
