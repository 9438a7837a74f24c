"""visualize.py and report.py: every figure and the report, drawn from small fixture results.

The fixtures are hand-written summaries in the phases' schemas; one test also draws from
summaries made by the phase modules' own summary functions, so a schema change there that
breaks a figure fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from matplotlib.image import imread

from study import report
from study import store
import visualize

MODEL, OTHER = "m-a", "m-b"
BUDGETS = [32, 64, 128, 256]
GRID = [32, 48, 64, 80]
PROV = {"wall_time_s": 12.5, "generated_tokens": 4000, "tokens_per_s": 320.0,
        "device": "cuda:0 (Fake GPU)", "git": "abc123def4567890", "seed": 7,
        "packages": {"torch": "9.9", "transformers": "8.8"}, "config": {"precision": "bf16"},
        "written_at": "2026-01-01T00:00:00+0000"}


def acc_row(budget: int, acc: float, n: int = 40, **extra) -> dict:
    return {"budget": budget, "n": n, "n_correct": round(acc * n), "accuracy": acc,
            "ci_low": max(0.0, acc - 0.1), "ci_high": min(1.0, acc + 0.1),
            "accuracy_strict": acc / 2, "avg_tokens": budget * 0.8, "hit_budget_rate": 0.5,
            **extra}


def phase1(model: str, accs: list[float]) -> dict:
    return {"phase": "phase1", "model": model, "dataset": "arith",
            "budgets": {str(b): acc_row(b, a) for b, a in zip(BUDGETS, accs)},
            "saturation_budget": 128, "provenance": PROV}


def phase1b() -> dict:
    def row(budget: int, runs: list[float]) -> dict:
        mean = sum(runs) / len(runs)
        return {"budget": budget, "n_problems": 6, "k": 3, "mean_accuracy": mean,
                "std_accuracy": 0.05, "run_accuracies": runs, "ci_low": mean - 0.1,
                "ci_high": mean + 0.1, "success_histogram": {"0/3": 2, "1/3": 1, "2/3": 1,
                                                             "3/3": 2},
                "pass_at_k": {"1": mean, "2": mean + 0.1, "3": mean + 0.15},
                "maj_at_k": {"1": mean, "2": mean, "3": mean + 0.05}}

    return {"phase": "phase1b", "model": MODEL, "dataset": "arith", "samples": 3,
            "budgets": {"128": row(128, [0.5, 0.5, 0.6667]), "256": row(256, [0.5, 0.6667, 0.5])},
            "comparisons": [{"from": 128, "to": 256, "mean_diff": 0.0, "ci_low": -0.01,
                             "ci_high": 0.01, "p_value": 1.0, "test": "wilcoxon", "n": 6,
                             "is_plateau": True, "verdict": "plateau"}],
            "verdict": "PLATEAU GENUINE over 128-256 tokens", "provenance": PROV}


def phase2() -> dict:
    kinds = ("arithmetic", "setup", "logic", "incomplete", "format", "hallucination")

    def block(counts: dict[str, int]) -> dict:
        full = {k: counts.get(k, 0) for k in kinds}
        n = sum(full.values())
        return {"n": n, "counts": full, "pct": {k: round(100 * v / n, 1) for k, v in full.items()}}

    types = {"64": block({"incomplete": 6, "arithmetic": 2}),
             "256": block({"arithmetic": 5, "logic": 3})}
    return {"phase": "phase2", "model": MODEL, "budgets": [64, 256],
            "label_sources": {"auto": 10, "human": 6}, "errors_in_results": {"64": 20, "256": 12},
            "error_types": types, "unrecoverable": {"n": 16, "count": 4, "pct": 25.0},
            "provenance": {"wall_time_s": 0.2}}


def phase3() -> dict:
    accs = [0.10, 0.20, 0.45, 0.50]
    gains = [{"from": a, "to": b, "gain": y - x, "gain_per_token": (y - x) / (b - a),
              "ci_low": (y - x) / (b - a) - 0.002, "ci_high": (y - x) / (b - a) + 0.002}
             for a, b, x, y in zip(GRID, GRID[1:], accs, accs[1:])]
    return {"phase": "phase3", "model": MODEL, "dataset": "arith",
            "budgets": {str(b): acc_row(b, a) for b, a in zip(GRID, accs)},
            "gains": gains, "steepest": sorted(gains, key=lambda g: -g["gain_per_token"])[:3],
            "total_gain": 0.4, "half_gain_window": [48, 64], "half_gain_window_gain": 0.25,
            "provenance": {**PROV, "generated_tokens": 0, "tokens_per_s": None}}


def structure_row(budget: int, verify_share: float) -> dict:
    tokens = {"setup": 5.0, "computation": budget * 0.5, "verification": budget * verify_share}
    total = sum(tokens.values())
    return {"budget": budget, "source": "phase3", "n": 40, "accuracy": 0.3 + verify_share,
            "avg_tokens": total + 2, "tokens_per_phase": tokens,
            "token_share_per_phase": {k: v / total for k, v in tokens.items()},
            "verification_share": verify_share, "avg_steps": 4.0, "avg_operations": 2.0,
            "arith_steps_checked": 10, "arith_errors": 2, "arith_error_rate": 0.2,
            "with_verification": {"n": int(40 * verify_share), "accuracy": 0.8,
                                  "ci_low": 0.6, "ci_high": 0.9},
            "without_verification": {"n": 40 - int(40 * verify_share), "accuracy": 0.25,
                                     "ci_low": 0.15, "ci_high": 0.4}}


def structure() -> dict:
    group = {"length": "49..64", "accuracy_at_window_start": 0.0, "accuracy_at_window_end": 0.75,
             "gain_share": 0.6, **structure_row(64, 0.5)}
    return {"phase": "phase3_structure", "model": MODEL, "dataset": "arith",
            "budgets": {str(b): structure_row(b, s) for b, s in zip(GRID, [0, 0.1, 0.5, 0.6])},
            "window": {"from": 48, "to": 64, "chosen_by": "half_gain_window",
                       "measured_at_budget": 80},
            "groups": {"below": {**group, "length": "<= 48"}, "inside": group,
                       "above": {**group, "length": "> 64 or cut"}},
            "provenance": {"wall_time_s": 1.0}}


FILES = {"phase1": store.phase1_combined_path, "phase1b": store.phase1b_summary_path,
         "phase2": store.phase2_analysis_path, "phase3": store.phase3_cliff_summary_path,
         "structure": store.phase3_structure_path}


def write_all(results: Path) -> None:
    summaries = {"phase1": phase1(MODEL, [0.1, 0.3, 0.45, 0.5]), "phase1b": phase1b(),
                 "phase2": phase2(), "phase3": phase3(), "structure": structure()}
    for key, summary in summaries.items():
        store.write_json(FILES[key](results, MODEL), summary)
    store.write_json(store.phase1_combined_path(results, OTHER),
                     phase1(OTHER, [0.2, 0.5, 0.6, 0.62]))


@pytest.fixture()
def dirs(tmp_path) -> tuple[Path, Path]:
    results, figures = tmp_path / "results", tmp_path / "figures"
    write_all(results)
    return results, figures


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    """Every phase present, rendered once for the tests that only read the outputs."""
    root = tmp_path_factory.mktemp("rendered")
    results, figures = root / "results", root / "figures"
    write_all(results)
    assert run(results, figures) == 0
    return results, figures


def run(results: Path, figures: Path, *extra: str) -> int:
    return visualize.main(["--model", MODEL, "--results-dir", str(results),
                           "--figures-dir", str(figures), *extra])


STEMS = ["fig1_saturation_curve", "fig1b_stochastic", "fig2_error_distribution",
         "fig3_cliff_detail", "fig4_solution_structure", "fig5_verification_accuracy"]


# ---------------------------------------------------------------- files


def test_main_writes_every_figure_as_png_and_pdf(rendered):
    results, figures = rendered
    for stem in STEMS:
        png, pdf = figures / f"{stem}_{MODEL}.png", figures / f"{stem}_{MODEL}.pdf"
        assert png.stat().st_size > 5_000, stem
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000, stem
    # 300 DPI: a 3.6-inch-wide figure is 1080 pixels wide.
    assert imread(figures / f"fig1_saturation_curve_{MODEL}.png").shape[1] == 1080
    assert (results / f"report_{MODEL}.md").exists()


def test_format_flag_limits_the_files(dirs):
    results, figures = dirs
    assert run(results, figures, "--format", "png") == 0
    assert list(figures.glob("*.pdf")) == []
    assert len(list(figures.glob("*.png"))) == len(STEMS)


SKIPS = [  # (phase file removed, figure it feeds, command the skip line must name)
    ("phase1b", "fig1b_stochastic", "python run_all.py --phase1b --model m-a"),
    ("phase2", "fig2_error_distribution", "python run_all.py --phase2-prepare --model m-a"),
    ("phase3", "fig3_cliff_detail", "python run_all.py --phase3 --model m-a"),
    ("structure", "fig4_solution_structure", "python phase3_structure.py --model m-a"),
    ("structure", "fig5_verification_accuracy", "python phase3_structure.py --model m-a"),
]


@pytest.mark.parametrize("removed", [["phase1b", "phase3"], ["phase2", "structure"]])
def test_missing_phase_skips_its_figure_with_the_command(dirs, capsys, removed):
    results, figures = dirs
    for key in removed:
        FILES[key](results, MODEL).unlink()
    assert run(results, figures, "--format", "png") == 0
    out = capsys.readouterr().out
    report_text = (results / f"report_{MODEL}.md").read_text()
    for key, stem, command in SKIPS:
        png = figures / f"{stem}_{MODEL}.png"
        if key not in removed:
            assert png.exists() and f"skipped {stem}" not in out
            continue
        line = next(x for x in out.splitlines() if x.startswith(f"skipped {stem}_{MODEL}:"))
        assert command in line and f"--results-dir {results}" in line
        assert not png.exists() and command in report_text
    assert (figures / f"fig1_saturation_curve_{MODEL}.png").exists()


def test_unreadable_summary_is_skipped_not_fatal(dirs, capsys):
    results, figures = dirs
    store.phase3_cliff_summary_path(results, MODEL).write_text("{not json")
    assert run(results, figures, "--format", "pdf") == 0
    assert "not valid JSON" in capsys.readouterr().out
    assert not (figures / f"fig3_cliff_detail_{MODEL}.pdf").exists()


def test_no_phase1_result_exits_2_with_one_line(tmp_path, capsys):
    assert run(tmp_path / "empty", tmp_path / "figs") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "python run_all.py --phase1 --model m-a" in err
    assert not (tmp_path / "figs").exists()


# ---------------------------------------------------------------- figure contents


def labelled_lines(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_fig1_overlays_models_on_a_log2_budget_axis():
    fig = visualize.fig1_saturation_curve([phase1(MODEL, [0.1, 0.3, 0.45, 0.5]),
                                           phase1(OTHER, [0.2, 0.5, 0.6, 0.62])])
    acc, used = fig.axes
    assert labelled_lines(acc) == [MODEL, OTHER]
    assert len(acc.collections) == 2  # one CI band per model
    for ax in (acc, used):
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert list(used.get_xticks()) == BUDGETS
    assert [t.get_text() for t in used.get_xticklabels()] == [str(b) for b in BUDGETS]
    assert "Token budget" in used.get_xlabel() and "Accuracy" in acc.get_ylabel()
    stars = [line for line in acc.get_lines() if line.get_marker() == "*"]
    assert [tuple(s.get_xdata()) for s in stars] == [(128,), (128,)]


def test_fig1_overlay_defaults_to_every_model_with_phase1(dirs):
    results, _ = dirs
    loaded = report.load_results(MODEL, results)
    assert [s["model"] for s in visualize.overlay_models(loaded, None)] == [MODEL, OTHER]
    assert [s["model"] for s in visualize.overlay_models(loaded, [MODEL])] == [MODEL]


def test_fig1b_shows_runs_histogram_and_pass_maj_curves():
    fig = visualize.fig1b_stochastic(phase1b())
    spread, hist, curves = fig.axes
    runs = [line for line in spread.get_lines() if line.get_marker() == "o"]
    assert sorted(len(line.get_xdata()) for line in runs) == [3, 3]
    assert len(hist.patches) == 2 * 4  # 2 budgets x 4 success levels
    assert len(curves.get_lines()) >= 4  # pass@k and maj@k per budget
    assert list(curves.get_xticks()) == [1, 2, 3]


def test_fig2_stacks_counts_and_shares():
    fig = visualize.fig2_error_distribution(phase2())
    counts, shares = fig.axes[:2]
    assert len(counts.patches) == 3 * 2  # 3 error types that occur x 2 budgets
    tops = {}
    for bar in shares.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert tops == pytest.approx({0: 1.0, 1: 1.0})
    assert [t.get_text() for t in counts.texts] == ["8/20", "8/12"]
    assert "auto" in fig.get_suptitle()


def test_fig3_marks_the_window_and_the_steepest_step():
    fig = visualize.fig3_cliff_detail(phase3())
    acc, gain = fig.axes
    assert "steepest step" in labelled_lines(acc)
    spans = [p for p in acc.patches if p.get_label().startswith("cliff window")]
    assert len(spans) == 1
    assert len(gain.patches) >= 3  # one bar per step (and the shaded window)
    bars = [p for p in gain.patches if p.get_height() != 0 and p.get_width() < 16]
    assert sorted(round(b.get_height(), 3) for b in bars) == pytest.approx(
        sorted(round(100 * g["gain_per_token"], 3) for g in phase3()["gains"]))
    assert acc.get_xscale() == "linear" and "Token budget" in gain.get_xlabel()


def test_fig4_bars_are_tokens_per_phase():
    data = structure()
    fig = visualize.fig4_solution_structure(data)
    tokens_ax = fig.axes[0]
    verification = [p.get_height() for p in tokens_ax.patches if p.get_label() == "verification"]
    assert verification or tokens_ax.containers
    heights = [bar.get_height() for bar in tokens_ax.containers[2]]
    assert heights == [r["tokens_per_phase"]["verification"] for r in data["budgets"].values()]
    assert "tokens" in tokens_ax.get_ylabel().lower()


def test_fig5_has_with_and_without_series():
    data = structure()
    fig = visualize.fig5_verification_accuracy(data)
    acc, share = fig.axes
    with_v, without = acc.containers[:2]
    assert len(with_v.lines[0].get_xdata()) == 3  # budget 32 has no verifying solution
    assert len(without.lines[0].get_xdata()) == 4
    assert [b.get_height() for b in share.patches if b.get_width() == 0.6] == [0, 0.1, 0.5, 0.6]


# ---------------------------------------------------------------- report


def test_report_holds_tables_findings_provenance_and_links(rendered):
    results, _ = rendered
    text = (results / f"report_{MODEL}.md").read_text()
    for expected in [
        "saturates at 128 tokens", "10.0% at 32 tokens", "50.0% at 256 tokens",  # phase 1
        "| **128** | 45.0% | [35.0, 55.0] | 102.4 | 50% | 40 |",
        "PLATEAU GENUINE over 128-256 tokens",  # phase 1b
        "half of the total gain (+40.0 pp) lies in 48 → 64 tokens",  # phase 3
        "steepest step is 48 → 64 (+1.56 pp per token",
        "arithmetic 7/16 (44%)", "10 auto, 6 human",  # phase 2
        "Most common at 64 tokens: incomplete (75.0%)",
        "inside (length 49..64, n=40)",  # structure
        "solutions that verify are right 80.0%",
        "320", "cuda:0 (Fake GPU)", "`abc123def456`", "torch 9.9", "transformers 8.8",
    ]:
        assert expected in text, expected
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) >= 2 * len(STEMS)
    for link in links:
        assert (results / link).resolve().exists(), link


def test_report_names_the_command_for_each_missing_phase(tmp_path):
    results = tmp_path / "r"
    store.write_json(store.phase1_combined_path(results, MODEL), phase1(MODEL, [.1, .2, .3, .3]))
    assert run(results, tmp_path / "f", "--format", "pdf") == 0
    text = (results / f"report_{MODEL}.md").read_text()
    for key in ("phase1b", "phase2", "phase3", "structure"):
        assert report.how_to_make(key, MODEL, results) in text


# ---------------------------------------------------------------- real phase summaries


def records(budget: int, correct: list[bool], lengths: list[int], sample: int = 0) -> list[dict]:
    out = []
    for i, (ok, length) in enumerate(zip(correct, lengths)):
        text = "We need the sum. 2 + 3 = 5." + (" Let me verify: 5 - 3 = 2." if i % 2 else "")
        out.append({"problem_id": f"p{i}", "question": f"q{i}", "ground_truth": "5",
                    "generated": text, "predicted": "5" if ok else "4",
                    "predicted_strict": None, "correct": ok, "correct_strict": False,
                    "tokens_used": min(budget, length), "budget": budget,
                    "hit_budget": length > budget, "sample": sample})
    return out


def test_draws_from_summaries_made_by_the_phase_code(tmp_path, capsys):
    import phase1_main
    import phase1b_stochastic
    import phase2_analyze
    import phase3_cliff
    import phase3_structure

    results, lengths = tmp_path / "r", [20, 40, 60, 90, 120, 200]
    by_budget = {b: records(b, [length <= b for length in lengths], lengths) for b in BUDGETS}
    store.write_json(store.phase1_combined_path(results, MODEL), {
        "phase": "phase1", "model": MODEL, "dataset": "arith",
        **phase1_main.summarize(by_budget), "provenance": PROV})
    sampled = {b: [r for s in range(3) for r in records(b, [(i + s) % 2 == 0 for i in range(6)],
                                                        lengths, s)] for b in (128, 256)}
    store.write_json(store.phase1b_summary_path(results, MODEL), {
        "phase": "phase1b", "model": MODEL, "dataset": "arith",
        **phase1b_stochastic.summarize(sampled, n_resamples=50), "provenance": PROV})
    rows = {b: [{"problem_id": r["problem_id"], "error_type": "arithmetic", "annotator": "auto",
                 "recoverable": "", "suggested_error_type": "arithmetic"}
                for r in recs if not r["correct"]] for b, recs in by_budget.items()}
    store.write_json(store.phase2_analysis_path(results, MODEL), {
        "phase": "phase2", "model": MODEL, **phase2_analyze.analyse(rows, by_budget),
        "provenance": PROV})
    cliff = {b: records(b, [length <= b for length in lengths], lengths) for b in GRID}
    for b, recs in cliff.items():
        store.write_json(store.phase3_cliff_record_path(results, MODEL, b), recs)
    store.write_json(store.phase3_cliff_summary_path(results, MODEL), {
        "phase": "phase3", "model": MODEL, "dataset": "arith",
        **phase3_cliff.summarize(cliff, n_resamples=50), "provenance": PROV})
    analysis, _, _ = phase3_structure.analyse(MODEL, results, tmp_path,
                                              count_tokens=lambda t: len(t.split()))
    store.write_json(store.phase3_structure_path(results, MODEL), analysis)

    assert run(results, tmp_path / "f", "--format", "png") == 0
    assert "skipped" not in capsys.readouterr().out
    assert len(list((tmp_path / "f").glob("*.png"))) == len(STEMS)
    text = (results / f"report_{MODEL}.md").read_text()
    assert "no phase" not in text and json.dumps(text)
