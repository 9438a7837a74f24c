"""The look shared by every figure: palette, rc style, axis helpers and saving.

Figures are built on bare ``matplotlib.figure.Figure`` objects (no pyplot: nothing global to
close or leak) under one rc style, so all of them share fonts, sizes and colours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    NullLocator,
    PercentFormatter,
)

# Okabe-Ito: distinguishable under the common colour-vision deficiencies (yellow left out:
# too faint on white).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
ERROR_COLOURS = {"arithmetic": "#D55E00", "setup": "#E69F00", "logic": "#0072B2",
                 "incomplete": "#999999", "format": "#CC79A7", "hallucination": "#009E73"}
PHASE_COLOURS = {"setup": "#E69F00", "computation": "#0072B2", "verification": "#009E73"}
WINDOW_SHADE = "#BBBBBB"  # the cliff window, behind everything
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.5,
    "lines.markersize": 4, "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "pdf.fonttype": 42, "ps.fonttype": 42,  # embed TrueType so PDFs stay editable
}
DPI = 300  # print quality; a 3.6-inch figure is 1080 pixels wide
FORMATS = ("png", "pdf")


def in_style(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function under STYLE: text sizes and colours are fixed when artists are
    made, so the whole drawing (not only figure creation) happens inside the context."""
    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def styled(width: float, height: float, **subplots: Any) -> tuple[Figure, list[Axes]]:
    """A bare Figure (inches) and its axes, flattened."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(**subplots, squeeze=False).ravel().tolist()


def log2_budget_axis(ax: Axes, budgets: Sequence[int], axis: str = "x") -> None:
    """Log2 scale with one tick per budget, labelled with the plain number."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    target.set_major_locator(FixedLocator(sorted(set(budgets))))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(NullLocator())


def categorical_budgets(ax: Axes, budgets: Sequence[int], label: str = "Token budget") -> None:
    """Budgets as evenly spaced categories 0..n-1 (bar charts)."""
    ax.set_xticks(range(len(budgets)), [str(b) for b in budgets])
    ax.set_xlabel(label)
    ax.grid(axis="x", visible=False)


def percent_axis(ax: Axes, label: str, top: float | None = 1.0) -> None:
    """A y axis of shares shown as percentages, from 0 (to ``top``; None: automatic)."""
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(label)
    ax.set_ylim(0, top)


def shade_window(ax: Axes, start: float, end: float, label: str | None = None) -> None:
    """The cliff window as a grey band behind the data."""
    ax.axvspan(start, end, color=WINDOW_SHADE, alpha=0.35, linewidth=0, zorder=0, label=label)


def shade_window_categorical(ax: Axes, budgets: Sequence[int], window: Any) -> None:
    """The cliff window on a categorical budget axis (both ends must be on it)."""
    if window and window["from"] in budgets and window["to"] in budgets:
        shade_window(ax, budgets.index(window["from"]) - 0.45, budgets.index(window["to"]) + 0.45,
                     label="cliff window")


def stacked_bars(ax: Axes, series: dict[str, list[float]], colours: dict[str, str],
                 label: bool = True) -> list[float]:
    """Bars stacked in ``series`` order at x = 0..n-1; returns the stack heights."""
    bottom: list[float] = []
    for name, values in series.items():
        bottom = bottom or [0.0] * len(values)
        ax.bar(range(len(values)), values, bottom=bottom, color=colours.get(name, "#333333"),
               edgecolor="white", linewidth=0.5, **({"label": name} if label else {}))
        bottom = [a + b for a, b in zip(bottom, values)]
    return bottom


def display_name(summary: Any, fallback: str = "") -> str:
    """Short model name for labels: the last part of a hub id or path."""
    return str(summary.get("model") or fallback).rstrip("/").split("/")[-1]


def value(x: float | None) -> float:
    """None (undefined in the summary) -> NaN, which matplotlib leaves undrawn."""
    return float("nan") if x is None else float(x)


def save_figure(fig: Figure, stem: str, figures_dir: Path,
                formats: Sequence[str] = FORMATS) -> tuple[Path, ...]:
    """Write ``stem.{fmt}`` for every format (PNG at 300 DPI); returns the paths."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = tuple(figures_dir / f"{stem}.{fmt}" for fmt in formats)
    with matplotlib.rc_context(STYLE):
        for path in paths:
            fig.savefig(path, dpi=DPI, format=path.suffix[1:])
    return paths
