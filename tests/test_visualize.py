"""visualize.py, the figures and the report, drawn from small fixture results; the typed schema,
the summary registry and the loader they share.

The fixtures are hand-written summaries in today's schema (every key the phases write, checked
against the TypedDicts in study/schema.py), so these tests do not depend on the phase code.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import pytest
from matplotlib.image import imread

import visualize
from config import REPO_ROOT, StudyConfig
from study import schema, store
from study.figures import catalog
from study.report import markdown
from study.results import SUMMARIES, StudyResults, how_to_make, load_results, tags_with

# Aliases, so the command line accepts them as models (their tags are the names themselves).
MODEL, OTHER = "smollm2-135m", "qwen-1.5b"
BUDGETS = [32, 64, 128, 256]
GRID = [32, 48, 64, 80]
KINDS = ("arithmetic", "setup", "logic", "incomplete", "format", "hallucination")
PROV = {"wall_time_s": 12.5, "generated_tokens": 4000, "tokens_per_s": 320.0,
        "device": "cuda:0 (Fake GPU)", "git": "abc123def4567890", "seed": 7,
        "packages": {"torch": "9.9", "transformers": "8.8"}, "config": {"precision": "bf16"},
        "written_at": "2026-01-01T00:00:00+0000"}


def acc_row(budget: int, acc: float, n: int = 40) -> dict:
    return {"budget": budget, "n": n, "n_correct": round(acc * n), "accuracy": acc,
            "ci_low": max(0.0, acc - 0.1), "ci_high": min(1.0, acc + 0.1),
            "accuracy_strict": acc / 2, "avg_tokens": budget * 0.8, "hit_budget_rate": 0.5}


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
                "pass_at_k_ci": {str(j): [0.2, 0.9] for j in (1, 2, 3)},
                "maj_at_k": {"1": mean, "2": mean, "3": mean + 0.05},
                "maj_at_k_ci": {str(j): [0.2, 0.9] for j in (1, 2, 3)},
                "accuracy_strict": 0.0, "avg_tokens": 0.7 * budget, "hit_budget_rate": 0.1}

    return {"phase": "phase1b", "model": MODEL, "dataset": "arith", "samples": 3,
            "budgets": {"128": row(128, [0.5, 0.5, 0.6667]), "256": row(256, [0.5, 0.6667, 0.5])},
            "comparisons": [{"from": 128, "to": 256, "mean_diff": 0.0, "ci_low": -0.01,
                             "ci_high": 0.01, "p_value": 1.0, "test": "wilcoxon", "n": 6,
                             "is_plateau": True, "verdict": "plateau"}],
            "criterion": "a step is a plateau when ...",
            "verdict": "PLATEAU GENUINE over 128-256 tokens",
            "analysis": {"bootstrap_resamples": 50, "min_effect": 0.02, "alpha": 0.05,
                         "confidence": 0.95, "seed": 7, "maj_at_k": "all k-subsets"},
            "provenance": PROV}


def scaling_fixture() -> dict:
    """Fits and emergence of 40 problems: 4 right from 32 tokens, 8 more from 64, 6 from 128,
    2 from 256 (phase 1's accuracies 10/30/45/50 %)."""
    import numpy as np

    from study.analysis import emergence, fits

    first = [0] * 4 + [1] * 8 + [2] * 6 + [3] * 2 + [9] * 20
    outcomes = np.array([[float(j >= f) for j in range(4)] for f in first])
    ids = [f"p{i}" for i in range(40)]
    return {"phase": "phase1_scaling", "model": MODEL, "dataset": "arith",
            "budgets": phase1(MODEL, [0.1, 0.3, 0.45, 0.5])["budgets"],
            "fits": fits.fit_all(BUDGETS, outcomes, n_resamples=20, confidence=0.95, seed=7),
            "cliff_window": [32, 64],
            "emergence": {"correct": emergence.summarize(ids, BUDGETS, outcomes, "correct", 5,
                                                         (32, 64))},
            "analysis": {}, "provenance": PROV}


def share(counts: dict[str, int], keys: tuple[str, ...] = KINDS) -> dict:
    full = {k: counts.get(k, 0) for k in keys}
    n = sum(full.values())
    return {"n": n, "counts": full,
            "pct": {k: round(100 * v / n, 1) if n else None for k, v in full.items()}}


def phase2() -> dict:
    def block(counts: dict[str, int]) -> dict:
        return {**share(counts), "by_annotator": {"human": share({}), "auto": share(counts)}}

    unrec = {"n": 16, "count": 4, "pct": 25.0}
    states = [*KINDS, "fixed", "unsampled"]
    matrix = {k: dict.fromkeys(states, 0) for k in KINDS}
    return {"phase": "phase2", "model": MODEL, "budgets": [64, 256],
            "label_sources": {"auto": 10, "human": 6}, "errors_in_results": {"64": 20, "256": 12},
            "error_types": {"64": block({"incomplete": 6, "arithmetic": 2}),
                            "256": block({"arithmetic": 5, "logic": 3})},
            "recoverable": {b: share({"no": 2, "yes": 6}, ("yes", "no", "unknown"))
                            for b in ("64", "256", "all")},
            "unrecoverable": {**unrec, "by_budget": {"64": unrec, "256": unrec},
                              "by_error_type": {k: unrec for k in KINDS}},
            "persistent_errors": {"n_problems": 1, "same_type": 1, "changed_type": 0,
                                  "same_type_pct": 100.0,
                                  "wrong_at_several_budgets_in_results": 3,
                                  "problems": [{"problem_id": "p1", "same": True,
                                                "types": {"64": "logic", "256": "logic"}}]},
            "evolution": {"states": states, "total": matrix,
                          "pairs": [{"from_budget": 64, "to_budget": 256, "matrix": matrix}]},
            "suggestion_agreement": {"n": 0, "kappa": None, "observed_agreement": None,
                                     "confusion": {}, "note": "no human labels yet"},
            "files": {"64": "annotate_errors_budget64.tsv", "256": "annotate_errors_budget256.tsv"},
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
            "bootstrap": {"resamples": 50, "seed": 7, "unit": "problem",
                          "paired_across_budgets": True},
            "provenance": {**PROV, "generated_tokens": 0, "tokens_per_s": None}}


def structure_row(budget: int, verify_share: float) -> dict:
    tokens = {"setup": 5.0, "computation": budget * 0.5, "verification": budget * verify_share}
    total = sum(tokens.values())
    verifying = int(40 * verify_share)
    return {"budget": budget, "source": "phase3", "n": 40, "accuracy": 0.3 + verify_share,
            "avg_tokens": total + 2, "tokens_per_phase": tokens,
            "token_share_per_phase": {k: v / total for k, v in tokens.items()},
            "verification_share": verify_share, "avg_steps": 4.0, "avg_operations": 2.0,
            "arith_steps_checked": 10, "arith_errors": 2, "arith_error_rate": 0.2,
            "with_verification": {"n": verifying, "n_correct": round(0.8 * verifying),
                                  "accuracy": 0.8 if verifying else None,
                                  "ci_low": 0.6, "ci_high": 0.9},
            "without_verification": {"n": 40 - verifying, "n_correct": 10, "accuracy": 0.25,
                                     "ci_low": 0.15, "ci_high": 0.4}}


def structure() -> dict:
    group = {"length": "49..64", "accuracy_at_window_start": 0.0, "accuracy_at_window_end": 0.75,
             "gain_share": 0.6, **structure_row(64, 0.5)}
    del group["budget"], group["source"]  # a group is not a budget row
    return {"phase": "phase3_structure", "model": MODEL, "dataset": "arith",
            "token_counter": "custom token counter",
            "budgets": {str(b): structure_row(b, s) for b, s in zip(GRID, [0, 0.1, 0.5, 0.6])},
            "window": {"from": 48, "to": 64, "chosen_by": "half_gain_window",
                       "measured_at_budget": 80},
            "groups": {"below": {**group, "length": "<= 48"}, "inside": group,
                       "above": {**group, "length": "> 64 or cut"}},
            "phase1_note": None, "provenance": {"wall_time_s": 1.0}}


def depth() -> dict:
    depths = {str(n): {**acc_row(256, a), "layers": n}
              for n, a in zip([12, 18, 24, 30], [0.0, 0.05, 0.3, 0.4])}
    run = {"summary_file": "f.json", "reused": False, "wall_time_s": 3.0,
           "generated_tokens": 100, "tokens_per_s": 10.0, "reused_rollouts_from": None}
    return {"phase": "depth", "model": MODEL, "dataset": "arith", "model_layers": 30,
            "layers": [12, 18, 24, 30],
            "budgets": {"256": {"budget": 256, "depths": depths, "critical_depth": 24}},
            "runs": {n: {**run, "layers": int(n)} for n in depths}, "provenance": PROV}


def lens() -> dict:
    def row(budget: int, scale: float) -> dict:
        return {"budget": budget, "n_rollouts": 4, "n_tokens": 4 * budget,
                "kl": [scale * 8.0, scale * 5.0, scale * 0.5, 0.0], "steepest_drop": [2, 3]}

    return {"phase": "lens", "model": MODEL, "dataset": "arith", "source": "r.jsonl",
            "model_layers": 4, "n_rollouts": 4, "problem_ids": ["p0", "p1", "p2", "p3"],
            "budgets": {"32": row(32, 1.0), "256": row(256, 1.5)}, "provenance": PROV}


def compute() -> dict:
    def point(strategy, label, budget, k, acc, tokens, oracle=False, pareto=False) -> dict:
        return {"strategy": strategy, "label": label, "budget": budget, "k": k,
                "accuracy": acc, "ci_low": acc - 0.1, "ci_high": acc + 0.1,
                "tokens_per_problem": tokens, "tokens_used": tokens / k, "oracle": oracle,
                "pareto": pareto}

    points = [point("truncation", "single chain (truncation)", 64, 1, 0.3, 50, pareto=True),
              point("truncation", "single chain (truncation)", 128, 1, 0.4, 90, pareto=True),
              point("majority", "maj@k, B=128", 128, 2, 0.42, 180, pareto=True),
              point("pass", "pass@k, B=128", 128, 2, 0.6, 180, oracle=True),
              point("power", "power sampling", 128, 1, 0.41, 900)]
    row = {"budget": 128, "chains": 6, "samples": 1, "accuracy": 0.41, "ci_low": 0.31,
           "ci_high": 0.51, "tokens_per_chain": 900.0, "tokens_used": 90.0, "proposals": 96,
           "acceptance_rate": 0.4, "cost_ratio": 10.0}
    return {"phase": "phase4_compute", "model": MODEL, "dataset": "arith", "n_problems": 6,
            "strategies": {"truncation": "r/phase1_combined_x.json"}, "points": points,
            "budgets": {"128": row}, "power_settings": {"alpha": 4.0, "blocks": 16,
                                                        "mcmc_steps": 10},
            "provenance": {"wall_time_s": 1.0}}


FIXTURES = {"phase1": lambda: phase1(MODEL, [0.1, 0.3, 0.45, 0.5]), "scaling": scaling_fixture,
            "phase1b": phase1b, "phase2": phase2, "phase3": phase3, "structure": structure,
            "depth": depth, "lens": lens, "compute": compute}


def path_of(key: str, results: Path, tag: str = MODEL) -> Path:
    return SUMMARIES[key].path(results, tag)


def write_all(results: Path) -> None:
    for key, make in FIXTURES.items():
        store.write_json(path_of(key, results), make())
    store.write_json(path_of("phase1", results, OTHER), phase1(OTHER, [0.2, 0.5, 0.6, 0.62]))


@pytest.fixture()
def dirs(tmp_path) -> tuple[Path, Path]:
    results, figs = tmp_path / "results", tmp_path / "figures"
    write_all(results)
    return results, figs


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    """Every phase present, rendered once for the tests that only read the outputs."""
    root = tmp_path_factory.mktemp("rendered")
    results, figs = root / "results", root / "figures"
    write_all(results)
    assert run(results, figs) == 0
    return results, figs


def run(results: Path, figs: Path, *extra: str) -> int:
    return visualize.main(["--model", MODEL, "--results-dir", str(results),
                           "--figures-dir", str(figs), *extra])


def config(results: Path, figs: Path, **figure_options) -> StudyConfig:
    return StudyConfig().replace({"model.name": MODEL, "paths.results_dir": results,
                                  "paths.figures_dir": figs,
                                  **{f"figures.{k}": v for k, v in figure_options.items()}})


STEMS = [spec.name for spec in catalog.FIGURES]


# ---------------------------------------------------------------- the schema and the registry


def schema_problems(value: object, hint: object, where: str = "") -> list[str]:
    """Keys a TypedDict ``hint`` requires that ``value`` lacks, recursively (dicts, lists,
    optionals); values of other types are not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return []
        return schema_problems(value, next(a for a in args if a is not type(None)), where)
    if origin is list:
        return [p for i, v in enumerate(value)
                for p in schema_problems(v, args[0], f"{where}[{i}]")]
    if origin is dict:
        return [p for k, v in value.items() for p in schema_problems(v, args[1], f"{where}.{k}")]
    if not typing.is_typeddict(hint):
        return []
    missing = [f"{where}.{k}" for k in sorted(hint.__required_keys__) if k not in value]
    hints = typing.get_type_hints(hint)
    return missing + [p for k, v in value.items() if k in hints
                      for p in schema_problems(v, hints[k], f"{where}.{k}")]


@pytest.mark.parametrize("key", list(SUMMARIES))
def test_fixtures_follow_todays_schema(key):
    # The fixtures are the schema's examples: a key the TypedDicts require is in them.
    assert schema_problems(FIXTURES[key](), SUMMARIES[key].schema) == []
    assert schema_problems([{"problem_id": "p"}], list[schema.Record]) == [
        f"[0].{k}" for k in sorted(schema.RECORD_KEYS) if k != "problem_id"]


def test_registry_names_file_script_and_command_of_each_summary():
    stores = {"phase1": store.phase1_combined_path, "scaling": store.scaling_path,
              "phase1b": store.phase1b_summary_path,
              "phase2": store.phase2_analysis_path, "phase3": store.phase3_cliff_summary_path,
              "structure": store.phase3_structure_path, "depth": store.depth_summary_path,
              "lens": store.lens_summary_path, "compute": store.phase4_compute_path}
    assert list(SUMMARIES) == list(stores)  # the order the phases run in
    for key, entry in SUMMARIES.items():
        assert entry.key == key and entry.path(Path("r"), "t") == stores[key](Path("r"), "t")
        assert (REPO_ROOT / entry.script).exists()
        assert typing.is_typeddict(entry.schema)
    fields = [f.name for f in dataclasses.fields(StudyResults)]
    assert [f for f in fields if f in SUMMARIES] == list(SUMMARIES)  # one attribute each
    default = StudyConfig().paths.results_dir
    assert how_to_make("phase1", f"--model {MODEL}", default) == (
        f"python run_all.py --phase1 --model {MODEL}")
    assert how_to_make("structure", f"--model {MODEL}", Path("elsewhere")) == (
        f"python phase3_structure.py --model {MODEL} --results-dir elsewhere")
    assert how_to_make("phase2", f"--model {MODEL}", default) == (
        f"python run_all.py --phase2-prepare --model {MODEL}, label the TSVs (python "
        f"phase2_annotate.py --model {MODEL}), then python run_all.py --phase2-analyze "
        f"--model {MODEL}")


def test_figure_registry_draws_from_registered_summaries():
    assert len(set(STEMS)) == len(STEMS) and STEMS[0] == "fig1_saturation_curve"
    assert all(spec.needs in SUMMARIES for spec in catalog.FIGURES)
    assert [spec.name for spec in catalog.FIGURES if spec.inline] == ["fig1_saturation_curve"]


def test_load_results_types_every_summary_and_says_why_one_is_absent(dirs):
    results, _ = dirs
    path_of("phase2", results).unlink()
    path_of("phase3", results).write_text("{not json")
    path_of("structure", results).write_text("[1, 2]")
    loaded = load_results(results, MODEL, MODEL)
    assert loaded.phase1 == FIXTURES["phase1"]() and loaded.phase1b == phase1b()
    assert loaded.phase2 is None and loaded.phase3 is None and loaded.structure is None
    assert loaded.summary("phase1b") is loaded.phase1b
    assert [entry.key for entry, _ in loaded.present()] == ["phase1", "scaling", "phase1b",
                                                            "depth", "lens", "compute"]
    assert loaded.missing_line("phase2").startswith("no phase-2 error analysis results — run ")
    assert "not valid JSON" in loaded.missing_line("phase3")
    assert "not a phase-3 solution structure summary" in loaded.missing_line("structure")
    assert set(loaded.problems) == {"phase3", "structure"}
    with pytest.raises(KeyError, match="unknown summary"):
        loaded.summary("phase9")


def test_tags_with_lists_the_models_of_a_summary(dirs):
    results, _ = dirs
    assert tags_with("phase1", results) == sorted([MODEL, OTHER])
    assert tags_with("phase3", results) == [MODEL]
    assert tags_with("phase1", results / "nowhere") == []


# ---------------------------------------------------------------- files


def test_main_writes_every_figure_as_png_and_pdf(rendered):
    results, figs = rendered
    for stem in STEMS:
        png, pdf = figs / f"{stem}_{MODEL}.png", figs / f"{stem}_{MODEL}.pdf"
        assert png.stat().st_size > 5_000, stem
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000, stem
    # 300 DPI: a 3.6-inch-wide figure is 1080 pixels wide.
    assert imread(figs / f"fig1_saturation_curve_{MODEL}.png").shape[1] == 1080
    assert (results / f"report_{MODEL}.md").exists()
    # No record files in these fixtures: the page is still written, and says why it has no
    # problem browser (tests/test_report_html.py checks the browser itself).
    page = (results / f"report_{MODEL}.html").read_text()
    assert "no problem browser" in page and "phase1_main_smollm2-135m_budget32.json" in page


def test_run_returns_and_prints_what_it_wrote(dirs, capsys):
    results, figs = dirs
    out = visualize.run(config(results, figs, formats=("png",), models=(MODEL, "qwen-7b")))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "fig1: no phase-1 results for qwen-7b; not overlaid"
    assert list(out["figures"]) == [f"{stem}_{MODEL}" for stem in STEMS] and out["skipped"] == []
    assert out["figures"][f"fig1b_stochastic_{MODEL}"] == [figs / f"fig1b_stochastic_{MODEL}.png"]
    assert printed[1:] == [f"wrote {paths[0]}" for paths in out["figures"].values()] + [
        f"wrote {out['report']}", f"wrote {out['html']}"]
    assert out["report"] == results / f"report_{MODEL}.md"
    assert out["html"] == results / f"report_{MODEL}.html"


def test_format_flag_limits_the_files(dirs):
    results, figs = dirs
    assert run(results, figs, "--format", "png") == 0
    assert list(figs.glob("*.pdf")) == []
    assert len(list(figs.glob("*.png"))) == len(STEMS)


SKIPS = [  # (phase file removed, figure it feeds, command the skip line must name)
    ("phase1b", "fig1b_stochastic", f"python run_all.py --phase1b --model {MODEL}"),
    ("phase2", "fig2_error_distribution", f"python run_all.py --phase2-prepare --model {MODEL}"),
    ("phase3", "fig3_cliff_detail", f"python run_all.py --phase3 --model {MODEL}"),
    ("structure", "fig4_solution_structure", f"python phase3_structure.py --model {MODEL}"),
    ("structure", "fig5_verification_accuracy", f"python phase3_structure.py --model {MODEL}"),
    ("compute", "fig11_compute_matched", f"python phase4_compute.py --model {MODEL}"),
]


@pytest.mark.parametrize("removed", [["phase1b", "phase3"], ["phase2", "structure", "compute"]])
def test_missing_phase_skips_its_figure_with_the_command(dirs, capsys, removed):
    results, figs = dirs
    for key in removed:
        path_of(key, results).unlink()
    assert run(results, figs, "--format", "png") == 0
    out = capsys.readouterr().out
    report_text = (results / f"report_{MODEL}.md").read_text()
    for key, stem, command in SKIPS:
        png = figs / f"{stem}_{MODEL}.png"
        if key not in removed:
            assert png.exists() and f"skipped {stem}" not in out
            continue
        line = next(x for x in out.splitlines() if x.startswith(f"skipped {stem}_{MODEL}:"))
        assert command in line and f"--results-dir {results}" in line
        assert not png.exists() and command in report_text
    assert (figs / f"fig1_saturation_curve_{MODEL}.png").exists()


def test_unreadable_summary_is_skipped_not_fatal(dirs, capsys):
    results, figs = dirs
    path_of("phase3", results).write_text("{not json")
    assert run(results, figs, "--format", "pdf") == 0
    assert "not valid JSON" in capsys.readouterr().out
    assert not (figs / f"fig3_cliff_detail_{MODEL}.pdf").exists()


def test_no_phase1_result_exits_2_with_one_line(tmp_path, capsys):
    assert run(tmp_path / "empty", tmp_path / "figs") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"python run_all.py --phase1 --model {MODEL}" in err
    assert not (tmp_path / "figs").exists()


# ---------------------------------------------------------------- figure contents


def labelled_lines(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_fig1_overlays_models_on_a_log2_budget_axis():
    fig = catalog.fig1_saturation_curve([phase1(MODEL, [0.1, 0.3, 0.45, 0.5]),
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
    results, figs = dirs
    loaded = load_results(results, MODEL, MODEL)
    assert [s["model"] for s in visualize.overlay(config(results, figs), loaded)] == [OTHER]
    only = config(results, figs, models=(MODEL,))
    assert visualize.overlay(only, loaded) == []


def test_fig1b_shows_runs_histogram_and_pass_maj_curves():
    fig = catalog.fig1b_stochastic(phase1b())
    spread, hist, curves = fig.axes
    runs = [line for line in spread.get_lines() if line.get_marker() == "o"]
    assert sorted(len(line.get_xdata()) for line in runs) == [3, 3]
    assert len(hist.patches) == 2 * 4  # 2 budgets x 4 success levels
    assert len(curves.get_lines()) >= 4  # pass@k and maj@k per budget
    assert list(curves.get_xticks()) == [1, 2, 3]


def test_fig2_stacks_counts_and_shares():
    fig = catalog.fig2_error_distribution(phase2())
    counts, shares = fig.axes[:2]
    assert len(counts.patches) == 3 * 2  # 3 error types that occur x 2 budgets
    tops: dict[int, float] = {}
    for bar in shares.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert tops == pytest.approx({0: 1.0, 1: 1.0})
    assert [t.get_text() for t in counts.texts] == ["8/20", "8/12"]
    assert "auto" in fig.get_suptitle()


def test_fig3_marks_the_window_and_the_steepest_step():
    fig = catalog.fig3_cliff_detail(phase3())
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
    fig = catalog.fig4_solution_structure(data)
    tokens_ax = fig.axes[0]
    heights = [bar.get_height() for bar in tokens_ax.containers[2]]
    assert heights == [r["tokens_per_phase"]["verification"] for r in data["budgets"].values()]
    assert [c.get_label() for c in tokens_ax.containers] == list(
        data["budgets"]["32"]["tokens_per_phase"])
    assert "tokens" in tokens_ax.get_ylabel().lower()


def test_fig5_has_with_and_without_series():
    data = structure()
    fig = catalog.fig5_verification_accuracy(data)
    acc, share_ax = fig.axes
    with_v, without = acc.containers[:2]
    assert len(with_v.lines[0].get_xdata()) == 3  # budget 32 has no verifying solution
    assert len(without.lines[0].get_xdata()) == 4
    assert [b.get_height() for b in share_ax.patches if b.get_width() == 0.6] == [0, 0.1, 0.5,
                                                                                  0.6]


# ---------------------------------------------------------------- report


def test_report_holds_tables_findings_provenance_and_links(rendered):
    results, _ = rendered
    text = (results / f"report_{MODEL}.md").read_text()
    for expected in [
        "saturates at 128 tokens", "10.0% at 32 tokens", "50.0% at 256 tokens",  # phase 1
        "| **128** | 45.0% | [35.0, 55.0] | 102.4 | 50% | 40 |",
        "PLATEAU GENUINE over 128-256 tokens",  # phase 1b
        "| 128 → 256 | +0.0 pp | [-1.0, +1.0] | 1 (wilcoxon) | plateau |",
        "half of the total gain (+40.0 pp) lies in 48 → 64 tokens",  # phase 3
        "steepest step is 48 → 64 (+1.56 pp per token, 95% CI [+1.36, +1.76])",
        "| **48 → 64** | +25.0 pp | +1.562 | [+1.363, +1.763] |",
        "arithmetic 7/16 (44%)", "10 auto, 6 human",  # phase 2
        "Most common at 64 tokens: incomplete (75.0%)",
        "inside (length 49..64, n=40)",  # structure
        "solutions that verify are right 80.0%", "| 32 | 30% | 5.0 | 16.0 | 0.0 | 0% |",
        "320", "cuda:0 (Fake GPU)", "`abc123def456`", "torch 9.9", "transformers 8.8",
        "precision bf16",
    ]:
        assert expected in text, expected
    assert f"![Saturation curve](../figures/fig1_saturation_curve_{MODEL}.png)" in text
    for entry in SUMMARIES.values():
        assert f"## {entry.title}" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) >= 2 * len(STEMS)
    for link in links:
        assert (results / link).resolve().exists(), link


def test_a_flat_study_is_called_flat_in_the_report_figure_6_and_phase_1(tmp_path):
    """0 % at every budget: the constant fit is best, so the report, figure 6 and phase 1's
    table say flat, give no saturation budget, breakpoint or level; phase 3's steps have no
    CI above 0, so there is no cliff."""
    import numpy as np

    import phase1_main
    from study.analysis import fits

    results = tmp_path / "results"
    p1 = phase1(MODEL, [0.0] * 4)
    p1["saturation_budget"] = 32
    flat = {**scaling_fixture(), "budgets": p1["budgets"], "cliff_window": None,
            "fits": fits.fit_all(BUDGETS, np.zeros((40, 4)), n_resamples=20, confidence=0.95,
                                 seed=7)}
    p3 = phase3()
    for g in p3["gains"]:
        g["ci_low"] = -0.001  # every step's interval reaches below 0
    for key, summary in (("phase1", p1), ("scaling", flat), ("phase3", p3)):
        store.write_json(path_of(key, results), summary)
    assert run(results, tmp_path / "figs", "--format", "png") == 0
    text = (results / f"report_{MODEL}.md").read_text()
    for expected in ["Accuracy is flat: no budget dependence over 32–256 tokens (measured "
                     "0.0%, 0.0%, 0.0%, 0.0%): the constant fit, 0.0% at every budget, is best",
                     "so the curve is flat from 32 and has no saturation budget",
                     "Flat: no budget dependence (flat from 32; the constant fit is best).",
                     "| constant * | 1 |", "flat: no budget dependence (0.0% at every budget), so "
                     "no breakpoint and no fitted saturation level",
                     "no cliff: no step's gain per token has a 95% CI above 0"]:
        assert expected in text, expected
    assert "saturates at" not in text and "**32**" not in text and "break at" not in text
    figure = catalog.fig6_curve_fits(flat)
    assert "flat: no budget dependence" in figure.axes[0].get_title()
    assert "constant (best BIC)" in labelled_lines(figure.axes[0])
    assert "fitted saturation level" not in labelled_lines(figure.axes[0])
    table = phase1_main.format_table(p1, flat)
    assert table.endswith("n = 40 problems; Cut = share of generations stopped by the budget; "
                          "flat from 32")
    assert phase1_main.format_table(p1).endswith("saturation budget: 32")  # without the fits


def test_report_names_the_command_for_each_missing_phase(tmp_path):
    results = tmp_path / "r"
    store.write_json(path_of("phase1", results), phase1(MODEL, [.1, .2, .3, .3]))
    assert run(results, tmp_path / "f", "--format", "pdf") == 0
    text = (results / f"report_{MODEL}.md").read_text()
    for key in ("phase1b", "phase2", "phase3", "structure"):
        assert how_to_make(key, f"--model {MODEL}", results) in text


def test_report_reads_the_precision_of_a_nested_config(tmp_path):
    summary = phase1(MODEL, [.1, .2, .3, .3])
    summary["provenance"] = {**PROV, "config": {"model": {"precision": "nf4"}}}
    loaded = StudyResults(MODEL, MODEL, tmp_path, phase1=summary)
    assert "precision nf4;" in markdown.provenance_section(loaded)


# ---------------------------------------------------------------- summaries made by the study code


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


def test_summaries_made_by_the_study_code_follow_the_schema_and_draw(tmp_path, capsys):
    """The phases' own summary functions (not the hand-written fixtures): a key they stop
    writing that the schema promises, or a change that breaks a figure, fails here."""
    import phase1_main
    from study.analysis import cliff, compute, plateau, scaling, structure_analysis
    from study.annotation import error_analysis

    st = dataclasses.replace(StudyConfig().statistics, bootstrap_resamples=50)  # quick CIs
    head = {"model": MODEL, "dataset": "arith", "provenance": PROV}
    results, lengths = tmp_path / "r", [20, 40, 60, 90, 120, 200]
    by_budget = {b: records(b, [length <= b for length in lengths], lengths) for b in BUDGETS}
    made = {"phase1": {"phase": "phase1", **head, **phase1_main.summarize(by_budget, 0.95)}}
    for b, recs in by_budget.items():
        store.write_json(store.phase1_record_path(results, MODEL, b), recs)
    store.write_json(path_of("phase1", results), made["phase1"])
    made["scaling"] = scaling.analyse(StudyConfig().replace({
        "model.name": MODEL, "paths.results_dir": results,
        "statistics.fit_bootstrap_resamples": 20}))
    sampled = {b: [r for s in range(3) for r in records(b, [(i + s) % 2 == 0 for i in range(6)],
                                                        lengths, s)] for b in (128, 256)}
    made["phase1b"] = {"phase": "phase1b", **head, **plateau.summarize(sampled, st, 7)}
    rows = {b: [{"problem_id": r["problem_id"], "error_type": "arithmetic", "annotator": "auto",
                 "recoverable": "", "suggested_error_type": "arithmetic"}
                for r in recs if not r["correct"]] for b, recs in by_budget.items()}
    made["phase2"] = {"phase": "phase2", "model": MODEL, **error_analysis.analyse(rows, by_budget),
                      "files": {str(b): f"annotate_errors_budget{b}.tsv" for b in rows},
                      "provenance": PROV}  # phase 2 names no dataset
    grid = {b: records(b, [length <= b for length in lengths], lengths) for b in GRID}
    for b, recs in grid.items():
        store.write_json(store.phase3_cliff_record_path(results, MODEL, b), recs)
    made["phase3"] = {"phase": "phase3", **head, **cliff.summarize(grid, st, 7)}
    store.write_json(path_of("phase3", results), made["phase3"])
    analysis, _, _ = structure_analysis.analyse(f"--model {MODEL}", MODEL, results,
                                                lambda t: len(t.split()), confidence=0.95)
    made["structure"] = {**analysis, "provenance": PROV}
    keep = {f"p{i}" for i in range(6)}
    points = compute.single_chain_points("truncation", "single chain (truncation)", by_budget,
                                         None, keep, 0.95) + compute.sample_points(sampled, keep,
                                                                                   st, 7)
    chains = {b: [{"problem_id": r["problem_id"], "tokens_proposed": 5 * r["tokens_used"],
                   "proposals": 4, "accepted": 1} for r in recs] for b, recs in sampled.items()}
    power_points, power_rows = compute.power_points(sampled, chains, keep, st, 7)
    compute.mark_pareto(points + power_points)
    made["compute"] = {"phase": "phase4_compute", **head, "n_problems": 6, "strategies": {},
                       "points": points + power_points, "budgets": power_rows,
                       "power_settings": {"alpha": 4.0, "blocks": 16, "mcmc_steps": 10}}
    for key, summary in made.items():
        assert schema_problems(summary, SUMMARIES[key].schema) == [], key
        store.write_json(path_of(key, results), summary)
    for key in ("depth", "lens"):  # made end to end in tests/test_run_depth_sweep.py
        store.write_json(path_of(key, results), FIXTURES[key]())

    assert run(results, tmp_path / "f", "--format", "png") == 0
    assert "skipped" not in capsys.readouterr().out
    assert len(list((tmp_path / "f").glob("*.png"))) == len(STEMS)
    text = (results / f"report_{MODEL}.md").read_text()
    assert "no phase" not in text and "## Phase 3 — solution structure" in text


def test_depth_figures_and_report_sections(rendered):
    results, figs = rendered
    fig = catalog.fig9_depth_accuracy(depth())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["12", "18", "24", "30"]
    assert "critical depth (24 layers)" in [t.get_text() for t in ax.get_legend().get_texts()]
    lens_ax = catalog.fig10_logit_lens(lens()).axes[0]
    assert lens_ax.get_yscale() == "log" and len(lens_ax.get_lines()) == 2
    assert list(lens_ax.get_lines()[0].get_ydata()) == [8.0, 5.0, 0.5]  # the final 0 left off
    text = (results / f"report_{MODEL}.md").read_text()
    assert "| **24** | 30.0% | [20.0, 40.0] | 204.8 | 50% | 40 |" in text
    assert "| 2 | 5.000 | 7.500 |" in text and "32 tokens: layer 2 → 3" in text
    assert (figs / f"fig10_logit_lens_{MODEL}.png").exists()
