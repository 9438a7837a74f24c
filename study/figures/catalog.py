"""The study's figures: the registry, and drawing every figure whose summary exists.

One function per figure, each drawn only from results summaries (``study.schema``):

  fig1_saturation_curve       accuracy vs budget (95% CI band, saturation point) and tokens used;
                              every model with phase-1 results overlaid
  fig1b_stochastic            phase 1b: spread over sample runs, per-problem success, pass@k /
                              maj@k vs k
  fig2_error_distribution     phase 2: error types per budget, counts and shares
  fig3_cliff_detail           phase 3: fine-grid accuracy and gain per token
  fig4_solution_structure     phase 3: tokens per solution phase per budget
  fig5_verification_accuracy  phase 3: accuracy with vs without verification
  fig6_curve_fits             phase 1: log-linear / piecewise / saturating fits over the curve
  fig7_emergent_problems      phase 1: the most emergent problems, and who carries the cliff
  fig8_budget_forcing         forced runs only: truncate vs forced accuracy, p_gold and entropy
  fig9_depth_accuracy         depth sweep: accuracy vs decoder layers kept, critical depth
  fig10_logit_lens             logit lens: KL(final || layer) per layer, one line per budget
  fig11_compute_matched        phase 4: accuracy vs tokens spent per problem, every strategy,
                              Pareto frontier (``figures_compute``)
  fig12_thinking_budget       thinking models only: accuracy, closed-thinking share and answers
                              present per budget, and accuracy against the closed share

Files are named ``{figure}_{model}.{png,pdf}`` (PNG at 300 DPI). The functions live in
``figures_accuracy`` (1, 1b, 3) and ``figures_solutions`` (2, 4, 5); the look in
``figure_style``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from study.figures.accuracy import fig1_saturation_curve, fig1b_stochastic, fig3_cliff_detail
from study.figures.compute import fig11_compute_matched
from study.figures.depth import fig9_depth_accuracy, fig10_logit_lens
from study.figures.forcing import fig8_budget_forcing, has_forcing
from study.figures.scaling import fig6_curve_fits, fig7_emergent_problems
from study.figures.solutions import (
    fig2_error_distribution,
    fig4_solution_structure,
    fig5_verification_accuracy,
)
from study.figures.style import save_figure
from study.figures.thinking import fig12_thinking_budget, has_thinking
from study.report.markdown import FigureFiles
from study.results import StudyResults
from study.schema import Phase1Summary

__all__ = ["FIGURES", "FORCED_FIGURES", "THINKING_FIGURES", "FigureSpec", "fig1_saturation_curve",
           "fig1b_stochastic",
           "fig2_error_distribution", "fig3_cliff_detail", "fig4_solution_structure",
           "fig5_verification_accuracy", "fig8_budget_forcing", "fig11_compute_matched",
           "fig6_curve_fits", "fig9_depth_accuracy", "fig7_emergent_problems", "fig10_logit_lens",
           "fig12_thinking_budget", "render_all"]


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem before "_{model}"
    needs: str  # the summary it is drawn from: a key of study.results.SUMMARIES
    title: str  # a few words, for the report
    draw: Callable[[Any], Figure]  # from that summary (overlay: the list of phase-1 summaries)
    overlay: bool = False  # also drawn from other models' summaries of the same kind
    inline: bool = False  # shown in the report itself, not only linked
    when: Callable[[Any], bool] | None = None  # drawn only for summaries that pass this


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig1_saturation_curve", "phase1", "saturation curve", fig1_saturation_curve,
               overlay=True, inline=True),
    FigureSpec("fig1b_stochastic", "phase1b", "stochastic check", fig1b_stochastic),
    FigureSpec("fig2_error_distribution", "phase2", "error types", fig2_error_distribution),
    FigureSpec("fig3_cliff_detail", "phase3", "cliff detail", fig3_cliff_detail),
    FigureSpec("fig4_solution_structure", "structure", "solution structure",
               fig4_solution_structure),
    FigureSpec("fig5_verification_accuracy", "structure", "verification and accuracy",
               fig5_verification_accuracy),
    FigureSpec("fig6_curve_fits", "scaling", "curve fits", fig6_curve_fits),
    FigureSpec("fig7_emergent_problems", "scaling", "emergent problems", fig7_emergent_problems),
    FigureSpec("fig9_depth_accuracy", "depth", "accuracy vs depth", fig9_depth_accuracy),
    FigureSpec("fig10_logit_lens", "lens", "logit lens", fig10_logit_lens),
    FigureSpec("fig11_compute_matched", "compute", "compute-matched comparison",
               fig11_compute_matched),
)
# Figures of forced runs only (--budget-mode force-end|force-continue), drawn after FIGURES.
FORCED_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig8_budget_forcing", "phase1", "budget forcing", fig8_budget_forcing,
               inline=True, when=has_forcing),
)
# Figures of models with thinking markers only (reasoning models), drawn last.
THINKING_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig12_thinking_budget", "phase1", "thinking budget", fig12_thinking_budget,
               inline=True, when=has_thinking),
)


def render_all(results: StudyResults, figures_dir: Path, formats: Sequence[str],
               overlay: Sequence[Phase1Summary] = ()) -> tuple[list[FigureFiles], list[str]]:
    """Draw and save every figure whose summary exists; returns (files, skip lines).

    ``overlay``: phase-1 summaries of other models, drawn after this one's in figure 1.
    """
    saved: list[FigureFiles] = []
    skipped: list[str] = []
    for spec in (*FIGURES, *FORCED_FIGURES, *THINKING_FIGURES):
        stem, summary = f"{spec.name}_{results.tag}", results.summary(spec.needs)
        if summary is None and spec.when is not None:
            continue  # a forced-only figure of a missing summary: FIGURES already said so
        if summary is None and not results.applies(spec.needs):
            continue  # e.g. the depth figure of a forced run: no such summary is made
        if summary is None:
            skipped.append(f"{stem}: {results.missing_line(spec.needs)}")
            continue
        if spec.when is not None and not spec.when(summary):
            continue  # e.g. figure 8 of a truncation run: there is nothing to draw
        figure = spec.draw([summary, *overlay] if spec.overlay else summary)
        paths = save_figure(figure, stem, figures_dir, formats)
        saved.append(FigureFiles(stem, spec.title, paths, spec.inline))
    return saved, skipped
