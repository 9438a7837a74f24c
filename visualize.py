"""Figures and the markdown report of a study, drawn from the results files only (no model).

Run:  python visualize.py --model qwen-1.5b [--models qwen-1.5b qwen-7b] [--format png pdf]

Draws every figure of ``study.figures.catalog.FIGURES`` whose phase has run (fig1 saturation curve
with every model's phase-1 results overlaid, fig1b stochastic check, fig2 error types, fig3 cliff
detail, fig4 solution structure, fig5 verification and accuracy) as PNG (300 DPI) and PDF in
the figures folder; a figure whose phase has not run is skipped with a line naming the command
that produces it. Then writes results/report_{model}.md (``study.report.markdown``) and
results/report_{model}.html (``study.report.html_page``): the same report with every figure
embedded and a browser of every problem's rollout, one self-contained file to open in a browser.
Exit codes: 0 done (even with skipped figures), 2 no phase-1 results or a bad flag.
"""

from __future__ import annotations

import sys
from typing import Any

from config import StudyConfig
from study.cli import config_parser, run_command
from study.errors import ResultsError
from study.figures.catalog import render_all
from study.report.html_page import write_html
from study.report.markdown import write_report
from study.results import StudyResults, load_results, read_summary, tags_with
from study.schema import Phase1Summary


def overlay(cfg: StudyConfig, results: StudyResults) -> list[Phase1Summary]:
    """Phase-1 summaries of the other models for figure 1: ``cfg.figures.models``, or every
    model with phase-1 results in the results folder."""
    if cfg.figures.models is None:
        models = [(tag, tag) for tag in tags_with("phase1", results.results_dir)]
    else:
        models = [(name, cfg.replace({"model.name": name}).model_tag)
                  for name in cfg.figures.models]
    summaries = []
    for name, tag in models:
        if tag == results.tag:
            continue
        summary, _ = read_summary("phase1", results.results_dir, tag)
        if summary is None:
            print(f"fig1: no phase-1 results for {name}; not overlaid")
        else:
            summaries.append(summary)
    return summaries


def run(cfg: StudyConfig) -> dict[str, Any]:
    """Draw the figures and write the reports; returns ``{"figures": {stem: [paths]},
    "skipped": [lines], "report": path, "html": path}``. ResultsError when phase 1 has no
    results."""
    results = load_results(cfg.paths.results_dir, cfg.model.name, cfg.model_tag,
                           cfg.run_flags, cfg.run_variant)
    if results.phase1 is None:
        raise ResultsError(f"cannot draw anything for {cfg.model.name}: "
                           f"{results.missing_line('phase1')}")
    saved, skipped = render_all(results, cfg.paths.figures_dir, cfg.figures.formats,
                                overlay(cfg, results))
    for fig in saved:
        print(f"wrote {', '.join(str(p) for p in fig.paths)}")
    for line in skipped:
        print(f"skipped {line}")
    report = write_report(results, saved, skipped)
    print(f"wrote {report}")
    page = write_html(results, saved, skipped, cfg.paths.annotations_dir)
    print(f"wrote {page}")
    return {"figures": {fig.stem: list(fig.paths) for fig in saved}, "skipped": skipped,
            "report": report, "html": page}


PARSER = config_parser("visualize.py", __doc__, own="figures",
                       show=["model.name", "model.num_layers", "forcing.budget_mode",
                             "generation.decoding", "paths.results_dir", "paths.annotations_dir",
                             "paths.figures_dir", "figures"])


def main(argv: list[str] | None = None) -> int:
    return run_command(PARSER, argv, run)


if __name__ == "__main__":
    sys.exit(main())
