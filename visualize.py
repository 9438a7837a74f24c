"""Figures and the markdown report of a study, drawn from the results files only (no model).

Run:  python visualize.py --model qwen-1.5b [--models qwen-1.5b qwen-7b] [--format png pdf]

One function per figure; each takes loaded summaries and returns a matplotlib Figure:
  fig1_saturation_curve_{model}      accuracy vs budget (95% CI band, saturation point) and
                                     tokens used; every model with phase-1 results overlaid
  fig1b_stochastic_{model}           phase 1b: spread over sample runs, per-problem success,
                                     pass@k / maj@k vs k
  fig2_error_distribution_{model}    phase 2: error types per budget, counts and shares
  fig3_cliff_detail_{model}          phase 3: fine-grid accuracy and gain per token
  fig4_solution_structure_{model}    phase 3: tokens per solution phase per budget
  fig5_verification_accuracy_{model} phase 3: accuracy with vs without verification
Each is saved as PNG (300 DPI) and PDF in the figures folder; a figure whose phase has not run
is skipped with a line naming the command that produces it. Then results/report_{model}.md is
written (see report.py). Exit codes: 0 done (even with skipped figures), 2 no phase-1 results.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    NullLocator,
    PercentFormatter,
)

from study import report  # noqa: E402
from study.cli import Parser, fail  # noqa: E402
from config import RunConfig, model_tag  # noqa: E402

# Okabe-Ito: distinguishable under the common colour-vision deficiencies (yellow left out:
# too faint on white).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
ERROR_COLOURS = {"arithmetic": "#D55E00", "setup": "#E69F00", "logic": "#0072B2",
                 "incomplete": "#999999", "format": "#CC79A7", "hallucination": "#009E73"}
PHASE_COLOURS = {"setup": "#E69F00", "computation": "#0072B2", "verification": "#009E73"}
SHADE = {"window": "#BBBBBB"}
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.5,
    "lines.markersize": 4, "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "pdf.fonttype": 42, "ps.fonttype": 42,  # embed TrueType so PDFs stay editable
}
DPI = 300
FORMATS = ("png", "pdf")


# ---------------------------------------------------------------- shared helpers

def in_style(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function under STYLE: text sizes and colours are fixed when artists are
    made, so the whole drawing (not only figure creation) happens inside the context."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def styled(width: float, height: float, **subplots) -> tuple[Figure, list[Axes]]:
    """A bare Figure (no pyplot: nothing global to close or leak) and its axes, flattened."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(**subplots, squeeze=False).ravel().tolist()


def log2_budget_axis(ax: Axes, budgets: list[int], axis: str = "x") -> None:
    """Log2 scale with one tick per budget, labelled with the plain number."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    target.set_major_locator(FixedLocator(sorted(set(budgets))))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(NullLocator())


def categorical_budgets(ax: Axes, budgets: list[int], label: str = "Token budget") -> None:
    ax.set_xticks(range(len(budgets)), [str(b) for b in budgets])
    ax.set_xlabel(label)
    ax.grid(axis="x", visible=False)


def percent_axis(ax: Axes, label: str, top: float | None = 1.0) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(label)
    ax.set_ylim(0, top)


def display_name(summary: dict, fallback: str = "") -> str:
    """Short model name for labels: the last part of a hub id or path."""
    return str(summary.get("model") or fallback).rstrip("/").split("/")[-1]


def rows_of(budgets: dict) -> list[dict]:
    return sorted(budgets.values(), key=lambda row: row["budget"])


def _value(x: float | None) -> float:
    return float("nan") if x is None else float(x)


# ---------------------------------------------------------------- figure 1

@in_style
def fig1_saturation_curve(summaries: list[dict]) -> Figure:
    """Accuracy (95% CI band) and mean tokens used vs budget; one line per model."""
    fig, (acc, used) = styled(3.6, 4.4, nrows=2, sharex=True, height_ratios=[3, 2])
    budgets: list[int] = []
    for i, summary in enumerate(summaries):
        rows, colour = rows_of(summary["budgets"]), OKABE_ITO[i % len(OKABE_ITO)]
        x = [r["budget"] for r in rows]
        budgets += x
        acc.fill_between(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows],
                         color=colour, alpha=0.18, linewidth=0)
        acc.plot(x, [r["accuracy"] for r in rows], "o-", color=colour,
                 label=display_name(summary))
        used.plot(x, [r["avg_tokens"] for r in rows], "o-", color=colour)
        _mark_saturation(acc, summary, colour)
    used.plot(sorted(set(budgets)), sorted(set(budgets)), "--", color="#777777", linewidth=1,
              label="budget (upper bound)")
    log2_budget_axis(used, budgets)
    log2_budget_axis(used, budgets, axis="y")
    percent_axis(acc, "Accuracy (95% CI)", top=None)
    acc.set_ylim(bottom=0)
    used.set_ylabel("Mean tokens used")
    used.set_xlabel("Token budget (log2 scale)")
    handles = [*acc.get_legend_handles_labels()[0],
               Line2D([], [], marker="*", linestyle="none", color="#333333", markersize=9)]
    sat = summaries[0].get("saturation_budget")
    labels = [*acc.get_legend_handles_labels()[1], "saturation point" if len(summaries) > 1
              else f"saturation point ({sat} tokens)"]
    acc.legend(handles, labels, loc="lower right")
    used.legend(loc="upper left")
    first = summaries[0]
    title = (f"Saturation curve — {display_name(first)}" if len(summaries) == 1
             else f"Saturation curves — {len(summaries)} models")
    acc.set_title(f"{title}\n{first.get('dataset', '?')}, "
                  f"n = {rows_of(first['budgets'])[0]['n']} problems")
    return fig


def _mark_saturation(ax: Axes, summary: dict, colour: str) -> None:
    sat = summary.get("saturation_budget")
    row = summary["budgets"].get(str(sat))
    if row is None:
        return
    ax.plot([sat], [row["accuracy"]], marker="*", markersize=13, color=colour,
            markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=5,
            label="_saturation")


# ---------------------------------------------------------------- figure 1b

@in_style
def fig1b_stochastic(summary: dict) -> Figure:
    """Per-run accuracy spread, per-problem success distribution, pass@k / maj@k vs k."""
    fig, (spread, hist, curves) = styled(7.0, 2.6, ncols=3)
    rows = rows_of(summary["budgets"])
    colours = {r["budget"]: OKABE_ITO[i % len(OKABE_ITO)] for i, r in enumerate(rows)}
    _run_spread(spread, rows, colours)
    _success_histogram(hist, rows, colours)
    _pass_maj_curves(curves, rows, colours)
    k, n = rows[0].get("k", summary.get("samples")), rows[0].get("n_problems")
    fig.suptitle(f"Stochastic check — {display_name(summary)}: {n} problems × {k} samples "
                 f"(temperature sampling)", fontsize=9)
    return fig


def _run_spread(ax: Axes, rows: list[dict], colours: dict) -> None:
    for i, r in enumerate(rows):
        runs = r.get("run_accuracies") or []
        jitter = [i + 0.18 * ((j % 5) - 2) / 2 for j in range(len(runs))]
        ax.plot(jitter, runs, "o", color=colours[r["budget"]], alpha=0.55, markersize=3.5)
        ax.errorbar([i], [r["mean_accuracy"]], yerr=_value(r.get("std_accuracy")), fmt="_",
                    color="#222222", markersize=14, capsize=3, linewidth=1.2)
    categorical_budgets(ax, [r["budget"] for r in rows])
    percent_axis(ax, "Accuracy of each sample run", top=None)
    ax.set_ylim(bottom=0)
    ax.set_title("(a) run-to-run spread (bar: mean ± std)")


def _success_histogram(ax: Axes, rows: list[dict], colours: dict) -> None:
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        hist = r.get("success_histogram") or {}
        ax.bar([j + (i - (len(rows) - 1) / 2) * width for j in range(len(hist))],
               list(hist.values()), width=width, color=colours[r["budget"]],
               label=f"{r['budget']} tokens")
        ax.set_xticks(range(len(hist)), list(hist))
    ax.set_xlabel("Samples correct per problem")
    ax.set_ylabel("Problems")
    ax.grid(axis="x", visible=False)
    # Headroom above the tallest bar so the legend never covers one.
    tallest = max([p.get_height() for p in ax.patches] + [1])
    ax.set_ylim(0, tallest * (1.15 + 0.12 * len(rows)))
    ax.legend(loc="upper right")
    ax.set_title("(b) per-problem success")


def _pass_maj_curves(ax: Axes, rows: list[dict], colours: dict) -> None:
    for r in rows:
        for key, style in (("pass_at_k", "o-"), ("maj_at_k", "s--")):
            values = r.get(key) or {}
            ks = sorted(int(j) for j in values)
            ax.plot(ks, [values[str(j)] for j in ks], style, color=colours[r["budget"]],
                    markersize=3)
    ks = sorted({int(j) for r in rows for j in (r.get("pass_at_k") or {})})
    ax.set_xticks(ks)
    ax.set_xlabel("k (samples)")
    percent_axis(ax, "Accuracy", top=None)
    ax.set_ylim(bottom=0)
    style_key = [Line2D([], [], color="#333333", marker="o", label="pass@k"),
                 Line2D([], [], color="#333333", marker="s", linestyle="--", label="maj@k")]
    ax.legend(handles=style_key, loc="lower right")
    ax.set_title("(c) pass@k and maj@k")


# ---------------------------------------------------------------- figure 2

@in_style
def fig2_error_distribution(analysis: dict) -> Figure:
    """Stacked error types per annotated budget: counts (left) and shares (right)."""
    fig, (counts_ax, share_ax) = styled(7.0, 2.9, ncols=2)
    types = analysis["error_types"]
    budgets = sorted(types, key=int)
    kinds = [k for k in next(iter(types.values()))["counts"]
             if any(types[b]["counts"][k] for b in budgets)]
    totals = [types[b]["n"] for b in budgets]
    bottom_c, bottom_s = [0.0] * len(budgets), [0.0] * len(budgets)
    for kind in kinds:
        counts = [types[b]["counts"][kind] for b in budgets]
        shares = [c / t if t else 0.0 for c, t in zip(counts, totals)]
        colour = ERROR_COLOURS.get(kind, "#333333")
        counts_ax.bar(range(len(budgets)), counts, bottom=bottom_c, color=colour, label=kind,
                      edgecolor="white", linewidth=0.5)
        share_ax.bar(range(len(budgets)), shares, bottom=bottom_s, color=colour,
                     edgecolor="white", linewidth=0.5)
        bottom_c = [a + b for a, b in zip(bottom_c, counts)]
        bottom_s = [a + b for a, b in zip(bottom_s, shares)]
    errors = analysis.get("errors_in_results", {})
    for i, b in enumerate(budgets):
        label = f"{totals[i]}/{errors[b]}" if b in errors else str(totals[i])
        counts_ax.text(i, totals[i], label, ha="center", va="bottom", fontsize=7)
    counts_ax.set_ylim(0, max(totals + [1]) * 1.15)
    counts_ax.set_ylabel("Annotated errors")
    counts_ax.set_title("(a) counts (label: annotated / all errors)")
    percent_axis(share_ax, "Share of annotated errors")
    share_ax.set_title("(b) shares")
    for ax in (counts_ax, share_ax):
        categorical_budgets(ax, [int(b) for b in budgets])
    handles, labels = counts_ax.get_legend_handles_labels()
    # Reversed so the legend reads top to bottom like the stacks.
    fig.legend(handles[::-1], labels[::-1], loc="outside right center", title="Error type",
               title_fontsize=7)
    fig.suptitle(f"Error types by budget — {display_name(analysis)} "
                 f"({report.label_sources_text(analysis).split(' — ')[0]})", fontsize=9)
    return fig


# ---------------------------------------------------------------- figure 3

@in_style
def fig3_cliff_detail(cliff: dict) -> Figure:
    """Fine-grid accuracy (Wilson CIs) and gain per token; the cliff window (narrowest span with
    half the total gain) shaded, the steepest step in orange. Linear x axis: the grid is evenly
    spaced, so a log scale would only squeeze its top end."""
    fig, (acc, gain) = styled(3.6, 4.4, nrows=2, sharex=True, height_ratios=[3, 2])
    rows = rows_of(cliff["budgets"])
    x = [r["budget"] for r in rows]
    y = [r["accuracy"] for r in rows]
    err = [[a - r["ci_low"] for a, r in zip(y, rows)], [r["ci_high"] - a for a, r in zip(y, rows)]]
    _shade_window(acc, gain, cliff)
    acc.errorbar(x, y, yerr=err, fmt="o-", color=OKABE_ITO[0], capsize=2, label="accuracy")
    _steepest_segment(acc, cliff)
    percent_axis(acc, "Accuracy (95% CI)", top=None)
    acc.set_ylim(bottom=0)
    # Below the panels: inside, it would cover error bars wherever the curve is high.
    fig.legend(*acc.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    acc.set_title(f"Cliff detail — {display_name(cliff)}\n{cliff.get('dataset', '?')}, "
                  f"n = {rows[0]['n']} problems")
    _gain_bars(gain, cliff)
    gain.set_xticks(x, [str(b) for b in x], rotation=45 if len(x) > 10 else 0)
    gain.set_xlabel("Token budget")
    return fig


def _shade_window(acc: Axes, gain: Axes, cliff: dict) -> None:
    window = cliff.get("half_gain_window")
    if window:
        for ax, label in ((acc, "cliff window (half of total gain)"), (gain, None)):
            ax.axvspan(*window, color=SHADE["window"], alpha=0.35, linewidth=0, zorder=0,
                       label=label)


def _steepest_segment(ax: Axes, cliff: dict) -> None:
    steep = (cliff.get("steepest") or [None])[0]
    if not steep or steep["gain_per_token"] <= 0:
        return
    ends = [cliff["budgets"][str(b)] for b in (steep["from"], steep["to"])]
    ax.plot([r["budget"] for r in ends], [r["accuracy"] for r in ends], "-", color=OKABE_ITO[1],
            linewidth=3, zorder=4, label="steepest step")


def _gain_bars(ax: Axes, cliff: dict) -> None:
    gains = cliff.get("gains") or []
    steep = (cliff.get("steepest") or [{}])[0]
    mids = [(g["from"] + g["to"]) / 2 for g in gains]
    widths = [0.7 * (g["to"] - g["from"]) for g in gains]
    per_token = [100 * g["gain_per_token"] for g in gains]
    colours = [OKABE_ITO[1] if (g["from"], g["to"]) == (steep.get("from"), steep.get("to"))
               else OKABE_ITO[0] for g in gains]
    ax.bar(mids, per_token, width=widths, color=colours, alpha=0.85)
    if gains and all(g.get("ci_low") is not None for g in gains):
        ax.errorbar(mids, per_token, fmt="none", color="#333333", capsize=2, linewidth=0.8,
                    yerr=[[p - 100 * g["ci_low"] for p, g in zip(per_token, gains)],
                          [100 * g["ci_high"] - p for p, g in zip(per_token, gains)]])
    ax.axhline(0, color="#333333", linewidth=0.6)
    ax.set_ylabel("Gain (pp per token)")


# ---------------------------------------------------------------- figures 4 and 5

def _shade_window_categorical(ax: Axes, budgets: list[int], window: dict | None) -> None:
    if window and window["from"] in budgets and window["to"] in budgets:
        ax.axvspan(budgets.index(window["from"]) - 0.45, budgets.index(window["to"]) + 0.45,
                   color=SHADE["window"], alpha=0.35, linewidth=0, zorder=0,
                   label="cliff window")


@in_style
def fig4_solution_structure(structure: dict) -> Figure:
    """Mean tokens per solution phase (setup / computation / verification) and their shares."""
    fig, (tokens_ax, share_ax) = styled(7.0, 2.8, ncols=2)
    rows = rows_of(structure["budgets"])
    budgets = [r["budget"] for r in rows]
    xs = range(len(rows))
    bottom_t, bottom_s = [0.0] * len(rows), [0.0] * len(rows)
    for phase, colour in PHASE_COLOURS.items():
        tokens = [_value(r.get("tokens_per_phase", {}).get(phase)) for r in rows]
        shares = [_value(r.get("token_share_per_phase", {}).get(phase)) for r in rows]
        tokens_ax.bar(xs, tokens, bottom=bottom_t, color=colour, label=phase,
                      edgecolor="white", linewidth=0.5)
        share_ax.bar(xs, shares, bottom=bottom_s, color=colour, edgecolor="white",
                     linewidth=0.5)
        bottom_t = [a + b for a, b in zip(bottom_t, tokens)]
        bottom_s = [a + b for a, b in zip(bottom_s, shares)]
    used = [_value(r.get("avg_tokens")) for r in rows]
    tokens_ax.plot(xs, used, "D", color="#222222", markersize=3.5, label="all tokens used")
    tokens_ax.set_ylim(0, 1.1 * max([v for v in used + bottom_t if v == v] + [1.0]))
    for ax in (tokens_ax, share_ax):
        _shade_window_categorical(ax, budgets, structure.get("window"))
        categorical_budgets(ax, budgets)
    tokens_ax.set_ylabel("Mean tokens per solution")
    tokens_ax.set_title("(a) tokens per phase")
    percent_axis(share_ax, "Share of segmented tokens")
    share_ax.set_title("(b) share of tokens")
    handles, labels = tokens_ax.get_legend_handles_labels()
    phases = [i for i, label in enumerate(labels) if label in PHASE_COLOURS]
    others = [i for i, label in enumerate(labels) if label not in PHASE_COLOURS]
    order = phases[::-1] + others  # phases read top-down like the stacks
    fig.legend([handles[i] for i in order], [labels[i] for i in order],
               loc="outside right center")
    fig.suptitle(f"Solution structure — {display_name(structure)}", fontsize=9)
    return fig


@in_style
def fig5_verification_accuracy(structure: dict) -> Figure:
    """Accuracy of solutions with vs without a verification phase, and how many verify."""
    fig, (acc, share) = styled(3.6, 4.2, nrows=2, sharex=True, height_ratios=[3, 2])
    rows = rows_of(structure["budgets"])
    budgets = [r["budget"] for r in rows]
    for key, offset, colour, marker in (("with_verification", -0.12, OKABE_ITO[2], "o"),
                                        ("without_verification", 0.12, OKABE_ITO[1], "s")):
        _accuracy_points(acc, rows, key, offset, colour, marker)
    if not any((r.get("with_verification") or {}).get("n") for r in rows):
        acc.text(0.5, 0.93, "no solution has a verification phase", transform=acc.transAxes,
                 ha="center", va="top", fontsize=7, color="#555555")
    percent_axis(acc, "Accuracy (95% CI)", top=1.05)
    acc.legend(loc="upper left", bbox_to_anchor=(0, 0.88) if acc.texts else None)
    acc.set_title(f"Verification and accuracy — {display_name(structure)}")
    shares = [_value(r.get("verification_share")) for r in rows]
    share.bar(range(len(rows)), shares, color=OKABE_ITO[2], width=0.6)
    _shade_window_categorical(share, budgets, structure.get("window"))
    # At least 0-10 %, so an all-zero panel reads as "none" rather than as noise.
    highest = max([v for v in shares if v == v] + [0.0])
    percent_axis(share, "Solutions that verify", top=min(1.0, max(0.1, 1.25 * highest)))
    if share.get_legend_handles_labels()[0]:
        share.legend(loc="upper left")
    categorical_budgets(share, budgets)
    return fig


def _accuracy_points(ax: Axes, rows: list[dict], key: str, offset: float, colour: str,
                     marker: str) -> None:
    points = [(i, r[key]) for i, r in enumerate(rows) if (r.get(key) or {}).get("n")]
    xs = [i + offset for i, _ in points]
    ys = [b["accuracy"] for _, b in points]
    err = [[y - b["ci_low"] for y, (_, b) in zip(ys, points)],
           [b["ci_high"] - y for y, (_, b) in zip(ys, points)]]
    label = key.replace("_", " ").replace("verification", "verification phase")
    ax.errorbar(xs, ys, yerr=err if points else None, fmt=marker, color=colour, capsize=2,
                label=label)


# ---------------------------------------------------------------- rendering

def save_figure(fig: Figure, stem: str, figures_dir: Path,
                formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``stem.{fmt}`` for every format (PNG at 300 DPI); returns the paths."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = [figures_dir / f"{stem}.{fmt}" for fmt in formats]
    with matplotlib.rc_context(STYLE):
        for path in paths:
            fig.savefig(path, dpi=DPI, format=path.suffix[1:])
    return paths


# (figure name prefix, phase key it needs, function drawing it from that phase's summary)
SINGLE_FIGURES: list[tuple[str, str, Callable[[dict], Figure]]] = [
    ("fig1b_stochastic", "phase1b", fig1b_stochastic),
    ("fig2_error_distribution", "phase2", fig2_error_distribution),
    ("fig3_cliff_detail", "phase3", fig3_cliff_detail),
    ("fig4_solution_structure", "structure", fig4_solution_structure),
    ("fig5_verification_accuracy", "structure", fig5_verification_accuracy),
]


def overlay_models(results: report.Results, models: list[str] | None) -> list[dict]:
    """Phase-1 summaries for the fig-1 overlay: the main model first, then the others."""
    if models is None:
        found = sorted(results.results_dir.glob("phase1_combined_*.json"))
        models = [p.stem.removeprefix("phase1_combined_") for p in found]
    summaries = [results.data["phase1"]]
    for other in models:
        if model_tag(other) == results.tag:
            continue
        extra = report.load_results(other, results.results_dir).data["phase1"]
        if extra is None:
            print(f"fig1: no phase-1 results for {other}; not overlaid")
        else:
            summaries.append(extra)
    return summaries


def render_all(results: report.Results, figures_dir: Path, formats: tuple[str, ...],
               models: list[str] | None = None) -> tuple[dict[str, list[Path]], list[str]]:
    """Draw and save every figure whose data exist; returns (saved files, skip lines)."""
    saved: dict[str, list[Path]] = {}
    skipped: list[str] = []
    jobs = [(f"fig1_saturation_curve_{results.tag}", "phase1",
             lambda _: fig1_saturation_curve(overlay_models(results, models)))]
    jobs += [(f"{name}_{results.tag}", key, draw) for name, key, draw in SINGLE_FIGURES]
    for stem, key, draw in jobs:
        summary = results.data.get(key)
        if summary is None:
            skipped.append(f"{stem}: {report.missing_line(results, key)}")
            continue
        saved[stem] = save_figure(draw(summary), stem, figures_dir, formats)
    return saved, skipped


def build_parser() -> Parser:
    defaults = RunConfig()
    parser = Parser(prog="visualize.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=defaults.model, help="default: %(default)s")
    parser.add_argument("--models", nargs="+", default=None,
                        help="models overlaid in figure 1 (default: every model with "
                        "phase-1 results in the results folder)")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir)
    parser.add_argument("--figures-dir", type=Path, default=defaults.figures_dir)
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS),
                        help="file formats (default: png pdf)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = report.load_results(args.model, args.results_dir)
    if results.data["phase1"] is None:
        return fail(f"cannot draw anything for {args.model}: "
                    f"{report.missing_line(results, 'phase1')}")
    saved, skipped = render_all(results, args.figures_dir, tuple(args.format), args.models)
    for paths in saved.values():
        print(f"wrote {', '.join(str(p) for p in paths)}")
    for line in skipped:
        print(f"skipped {line}")
    print(f"wrote {report.write_report(results, saved, skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
