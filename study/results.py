"""Reading a study back: the registry of summary files and the one typed loader.

Every phase leaves one summary file per model in the results store. ``SUMMARIES`` lists them in
the order the phases run: where each file lives (a path function of ``study.store``), the script
that writes it, the command that (re)makes it, and its TypedDict in ``study.schema``.
``load_results`` reads a model's summaries into a ``StudyResults`` that the report and the figures
share; a file that is missing or unreadable counts as absent, and ``missing_line`` says why and
names the command that makes it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import StudyConfig
from study import store
from study.schema import CliffSummary, Phase1bSummary, Phase1Summary, Phase2Summary
from study.schema_analyses import (
    ComputeSummary,
    DepthSummary,
    LensSummary,
    ScalingSummary,
    StructureSummary,
)

RUN_VARIANTS = frozenset({"num_layers", "budget_mode", "decoding"})


@dataclass(frozen=True)
class SummaryFile:
    """One summary file of the results store."""

    key: str  # attribute of StudyResults
    what: str  # in sentences: "no {what} results"
    title: str  # the report section
    path: Callable[[Path, str], Path]  # (results dir, model tag) -> file
    script: str  # the phase script that writes it
    schema: type  # its TypedDict
    # Command(s) that make it; "{args}" becomes the run's flags (StudyConfig.run_flags, e.g.
    # " --model M --budget-mode force-end", + " --results-dir D" off default).
    # Default: the run_all.py flag named after the key.
    make: tuple[str, ...] = ()
    # The kinds of run its script makes (StudyConfig.run_variant): a forced run has no depth
    # sweep, for instance, so its report does not ask for one.
    accepts: frozenset[str] = RUN_VARIANTS

    @property
    def commands(self) -> tuple[str, ...]:
        return self.make or (f"python run_all.py --{self.key}{{args}}",)


SUMMARIES: dict[str, SummaryFile] = {s.key: s for s in (
    SummaryFile("phase1", "phase-1 saturation curve", "Phase 1 — saturation curve",
                store.phase1_combined_path, "phase1_main.py", Phase1Summary),
    SummaryFile("scaling", "phase-1 curve fits and emergence",
                "Phase 1 — curve fits and emergent problems", store.scaling_path,
                "phase1_main.py", ScalingSummary, ("python run_all.py --phase1{args}",)),
    SummaryFile("phase1b", "phase-1b stochastic check", "Phase 1b — stochastic verification",
                store.phase1b_summary_path, "phase1b_stochastic.py", Phase1bSummary),
    # Phase 2 needs a person in the loop: prepare, label, then analyse.
    SummaryFile("phase2", "phase-2 error analysis", "Phase 2 — error types",
                store.phase2_analysis_path, "phase2_analyze.py", Phase2Summary,
                ("python run_all.py --phase2-prepare{args}",
                 "label the TSVs (python phase2_annotate.py{args})",
                 "python run_all.py --phase2-analyze{args}")),
    SummaryFile("phase3", "phase-3 cliff", "Phase 3 — the cliff on a fine grid",
                store.phase3_cliff_summary_path, "phase3_cliff.py", CliffSummary),
    # run_all.py --phase3 also redoes the cliff; the structure alone needs only its script.
    SummaryFile("structure", "phase-3 solution structure", "Phase 3 — solution structure",
                store.phase3_structure_path, "phase3_structure.py", StructureSummary,
                ("python phase3_structure.py{args}",)),
    SummaryFile("depth", "depth sweep", "Depth — accuracy against layers kept",
                store.depth_summary_path, "phase_depth.py", DepthSummary,
                ("python phase_depth.py{args}",), frozenset({"decoding"})),
    SummaryFile("lens", "logit-lens", "Depth — the logit lens",
                store.lens_summary_path, "phase_lens.py", LensSummary,
                ("python phase_lens.py{args}",), frozenset({"num_layers", "decoding"})),
    SummaryFile("compute", "phase-4 compute-matched comparison",
                "Phase 4 — compute-matched comparison", store.phase4_compute_path,
                "phase4_compute.py", ComputeSummary, ("python phase4_compute.py{args}",),
                frozenset({"num_layers"})),
)}


def how_to_make(key: str, run_flags: str, results_dir: Path) -> str:
    """The command(s) that produce a summary file, for a run (``StudyConfig.run_flags``) and
    results folder."""
    args = f" {run_flags}"
    if Path(results_dir).resolve() != StudyConfig().paths.results_dir.resolve():
        args += f" --results-dir {results_dir}"
    steps = [step.format(args=args) for step in SUMMARIES[key].commands]
    return steps[0] if len(steps) == 1 else f"{', '.join(steps[:-1])}, then {steps[-1]}"


def read_summary(key: str, results_dir: Path, tag: str) -> tuple[Any, str | None]:
    """``(summary, None)``; ``(None, None)`` when the file does not exist; ``(None, problem)``
    when it cannot be read or is not a summary."""
    entry = SUMMARIES[key]
    path = entry.path(Path(results_dir), tag)
    if not path.exists():
        return None, None
    try:
        summary = store.read_json(path)
    except store.ResultsError as exc:
        return None, str(exc)
    # Every summary holds its per-budget results under "budgets"; without them the file is not
    # a summary of this kind (nothing else is checked: fields are read where they are used).
    if not isinstance(summary, dict) or "budgets" not in summary:
        return None, f"{path}: not a {entry.what} summary (no budgets); delete it and re-run"
    return summary, None


def tags_with(key: str, results_dir: Path) -> list[str]:
    """Model tags that have this summary file in ``results_dir``, sorted."""
    pattern = SUMMARIES[key].path(Path(results_dir), "*").name
    head, tail = pattern.split("*")
    return sorted(p.name[len(head):len(p.name) - len(tail)]
                  for p in Path(results_dir).glob(pattern))


@dataclass
class StudyResults:
    """Every summary of one model that could be read (``None`` where it could not)."""

    model: str  # as the user gave it (alias, hub id or folder)
    tag: str  # its file-name form, used in every results file name
    results_dir: Path
    run_flags: str = ""  # the flags that select this run in a command (default: --model only)
    variant: frozenset[str] = frozenset()  # StudyConfig.run_variant: what sets this run apart
    phase1: Phase1Summary | None = None
    scaling: ScalingSummary | None = None
    phase1b: Phase1bSummary | None = None
    phase2: Phase2Summary | None = None
    phase3: CliffSummary | None = None
    structure: StructureSummary | None = None
    depth: DepthSummary | None = None
    lens: LensSummary | None = None
    compute: ComputeSummary | None = None
    problems: dict[str, str] = field(default_factory=dict)  # why a present file was not read

    def summary(self, key: str) -> Any:
        """The summary under a ``SUMMARIES`` key (None when absent)."""
        if key not in SUMMARIES:
            raise KeyError(f"unknown summary {key!r}; known: {', '.join(SUMMARIES)}")
        return getattr(self, key)

    def present(self) -> Iterator[tuple[SummaryFile, Any]]:
        """(registry entry, summary) of every summary read, in phase order."""
        for key, entry in SUMMARIES.items():
            if getattr(self, key) is not None:
                yield entry, getattr(self, key)

    def applies(self, key: str) -> bool:
        """Whether the summary ``key`` is made for runs like this one at all."""
        return self.variant <= SUMMARIES[key].accepts

    def missing_line(self, key: str) -> str:
        """Why a summary is absent, and the command that makes it."""
        reason = self.problems.get(key, f"no {SUMMARIES[key].what} results")
        flags = self.run_flags or f"--model {shlex.quote(self.model)}"
        return f"{reason} — run {how_to_make(key, flags, self.results_dir)}"


def load_results(results_dir: Path, model: str, tag: str, run_flags: str = "",
                 variant: frozenset[str] = frozenset()) -> StudyResults:
    """Read each summary of ``model`` (file names use ``tag``, e.g. ``cfg.model_tag``; hints
    name ``run_flags``, e.g. ``cfg.run_flags``; ``variant`` is ``cfg.run_variant``)."""
    results = StudyResults(model, tag, Path(results_dir), run_flags, variant)
    for key in SUMMARIES:
        summary, problem = read_summary(key, results_dir, tag)
        setattr(results, key, summary)
        if problem is not None:
            results.problems[key] = problem
    return results
