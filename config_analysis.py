"""The analysis and reporting sections of the study config (``config.StudyConfig``): what is
annotated, the statistics, the figures. Split from ``config.py`` to keep each file short; the
tree, its YAML mapping and its flags are one (``config.StudyConfig`` holds these sections,
``config`` re-exports them), and each default is still written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

from study.config_mapping import opt


@dataclass(frozen=True)
class AnnotationConfig:
    # None: prepare takes the keys of `samples` that have phase-1 results; analyze every TSV.
    budgets: tuple[int, ...] | None = opt(None, flag="--annotate-budgets", local="--budgets",
                                          help="phase 2 budgets (default: prepare: the budgets "
                                          "of `samples` with phase-1 results; analyze: every TSV)")
    # Errors sampled per budget (spec: ~160 rows, 2-3 hours of labelling).
    samples: dict[int, int] = opt(help="errors sampled per budget (YAML only)",
                                  factory=lambda: {128: 30, 256: 30, 512: 50, 1024: 50})
    per_budget: int | None = opt(None, flag="--per-budget",  # None: `samples`
                                 help="errors sampled per budget (default: the config's counts)")
    auto_annotate: bool = opt(False, flag="--auto-annotate",  # labels are a person's job
                              help="fill missing labels from the suggestions (annotator=auto)")
    force: bool = opt(False, local="--force",  # never overwrite human labels unasked
                      help="regenerate TSVs that hold labels (a timestamped backup is kept)")


@dataclass(frozen=True)
class StatisticsConfig:
    bootstrap_resamples: int = opt(2000, flag="--bootstrap-resamples",  # CI error < 1 pp
                                   help="bootstrap resamples for every CI")
    # Plateau criterion: a step counts as flat when its CI lies within +-min_effect.
    min_effect: float = opt(0.02, flag="--min-effect",
                            help="plateau criterion: largest accuracy change that still counts "
                            "as flat, as a fraction (0.02 = 2 pp)")
    alpha: float = opt(0.05, help="significance level of the paired tests")  # the usual 5 %
    confidence: float = opt(0.95, help="confidence level of every interval")  # the usual 95 %
    top_steepest: int = opt(3, help="steepest cliff windows listed")  # the spec shows three
    # Each resample refits the breakpoint profile; 200 keeps the fits of a run to seconds on CPU.
    fit_bootstrap_resamples: int = opt(200, flag="--fit-bootstrap-resamples",
                                       help="bootstrap resamples (over problems) of the curve "
                                       "fits' breakpoint CI")
    top_emergent: int = opt(10, help="most emergent problems listed per run")  # a readable list


@dataclass(frozen=True)
class FigureConfig:
    models: tuple[str, ...] | None = opt(None, flag="--models",  # None: every model with results
                                         help="models overlaid in figure 1 (default: every "
                                         "model with phase-1 results); with --datasets, the "
                                         "grid's models (NAME or NAME@PRECISION)")
    formats: tuple[str, ...] = opt(("png", "pdf"), flag="--format",  # raster + vector for papers
                                   choices=("png", "pdf"), help="figure file formats")
