"""The grid runner (study/grid.py via run_all.py --models ... --datasets ...) and compare.py."""

from __future__ import annotations

import csv
import json

import pytest
from scipy.stats import spearmanr

import compare
import run_all
from config import StudyConfig
from study import grid, store
from study.analysis import fits


def test_cells_and_their_folders():
    cfg = StudyConfig().replace({"paths.results_dir": "/r"})
    made = grid.cells(["smollm2-135m", "smollm2-135m@bf16"], ["arith", "/x/my set.jsonl"])
    assert [c.name for c in made] == ["smollm2-135m__arith", "smollm2-135m__my set",
                                      "smollm2-135m-bf16__arith", "smollm2-135m-bf16__my set"]
    cell = grid.cell_config(cfg, made[2])
    assert (cell.model.name, cell.model.precision, cell.data.dataset) == (
        "smollm2-135m", "bf16", "arith")
    assert str(cell.paths.results_dir) == "/r/grid/smollm2-135m-bf16__arith"
    assert cell.grid.datasets is None  # a cell never starts a grid of its own


def test_grid_on_the_tiny_model(tiny_model_dir, arith_file, tmp_path, capsys):
    """One model x (a dataset, a missing file): the missing cell fails and is reported, the
    other finishes, the table and the comparison are written; a rerun reuses the finished cell."""
    missing = tmp_path / "missing.jsonl"
    flags = ["--models", f"{tiny_model_dir}@fp32", "--datasets", str(arith_file), str(missing),
             "--budgets", "4", "8", "16", "--batch-size", "4", "--quiet",
             "--fit-bootstrap-resamples", "10", f"--results-dir={tmp_path / 'results'}",
             f"--figures-dir={tmp_path / 'figures'}"]
    assert run_all.main(flags) == 1  # a cell failed; the other still ran
    out = capsys.readouterr().out
    root = tmp_path / "results"
    rows = json.loads((root / "grid_summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "failed (exit 2)"]
    assert "missing.jsonl: file not found" in rows[1]["error"]
    assert "1 cell(s) failed" in out
    ok = rows[0]
    assert ok["precision"] == "fp32" and ok["cell"].endswith("-fp32__mini")
    assert set(ok["accuracy"]) == {"4", "8", "16"} and ok["n"] == 6
    assert ok["best_fit"] in fits.MODELS and ok["flat"] == (ok["best_fit"] == "constant")
    assert ok["generated_tokens"] > 0 and ok["peak_rss_mb"] > 100 and ok["tokens_per_s"] > 0
    table = list(csv.reader((root / "grid_summary.csv").open()))
    assert table[0][:6] == ["cell", "status", "n", "acc@4", "acc@8", "acc@16"]
    assert len(table) == 3 and (root / "grid_summary.md").read_text().startswith("# Grid")
    best_fit = table[1][table[0].index("best fit")]
    assert best_fit == ("flat" if ok["flat"] else ok["best_fit"])
    comparison = store.read_json(store.comparison_path(root))  # compare.py ran on the grid
    assert [r["results_dir"] for r in comparison["runs"]] == [str(root / "grid" / ok["cell"])]
    assert (tmp_path / "figures" / "compare_runs.png").stat().st_size > 5_000
    # Rerun: the finished cell is reused without a child process; only the failed one reruns.
    ran = []

    def runner(cell_cfg, steps):
        ran.append(cell_cfg.data.dataset)
        return {"returncode": 2, "wall_s": 0.0, "peak_rss_mb": 0.0}

    cfg = run_all.config_from_args(run_all.build_parser().parse_args(flags))
    assert grid.run_grid(cfg, ["phase1"], runner) == 1
    assert ran == [str(missing)]
    rows = json.loads((root / "grid_summary.json").read_text())["rows"]
    assert rows[0]["status"] == "reused" and rows[0]["generated_tokens"] == ok["generated_tokens"]


def _phase1_run(folder, model: str, first_right: list[int]) -> None:
    """Phase-1 records and summary of a model whose problem i is right from budget index
    first_right[i] on (no model needed)."""
    import phase1_main

    budgets = [16, 32, 64, 128]
    by_budget = {b: [{"problem_id": f"p{i}", "question": "q", "ground_truth": "1",
                      "generated": "", "predicted": None, "predicted_strict": None,
                      "correct": j >= f, "correct_strict": False, "tokens_used": b,
                      "budget": b, "hit_budget": True, "sample": 0}
                     for i, f in enumerate(first_right)] for j, b in enumerate(budgets)}
    for b, recs in by_budget.items():
        store.write_json(store.phase1_record_path(folder, model, b), recs)
    summary = {"phase": "phase1", "model": model, "dataset": "arith",
               **phase1_main.summarize(by_budget, 0.95),
               "provenance": {"config": {"model": {"precision": "auto"}}}}
    store.write_json(store.phase1_combined_path(folder, model), summary)


def test_compare_two_runs_spearman_and_shared_problems(tmp_path, capsys):
    # Problems jump at the same budgets in both runs, except p4/p5 swap: same scores anyway.
    _phase1_run(tmp_path / "a", "smollm2-135m", [1, 2, 0, 9, 1, 2, 3, 9])
    _phase1_run(tmp_path / "b", "qwen-1.5b", [1, 2, 0, 9, 2, 1, 3, 1])
    out = compare.run(StudyConfig().replace({
        "paths.results_dir": tmp_path, "paths.figures_dir": tmp_path / "figs",
        "statistics.fit_bootstrap_resamples": 5, "statistics.top_emergent": 3}),
        [tmp_path / "a", tmp_path / "b"])
    (pair,) = out["pairs"]
    block_a = store.read_json(store.scaling_path(tmp_path / "a", "smollm2-135m"))
    block_b = store.read_json(store.scaling_path(tmp_path / "b", "qwen-1.5b"))
    scores = [{p["problem_id"]: p["breakthroughness"]
               for p in s["emergence"]["correct"]["problems"]} for s in (block_a, block_b)]
    ids = sorted(scores[0])
    want = spearmanr([scores[0][i] for i in ids], [scores[1][i] for i in ids]).statistic
    assert pair["spearman"] == pytest.approx(want) and pair["n_common"] == 8
    tops = [s["emergence"]["correct"]["top"] for s in (block_a, block_b)]
    assert pair["shared_top"] == [p for p in tops[0] if p in tops[1]]
    assert "Spearman" in capsys.readouterr().out
    assert (tmp_path / "figs" / "compare_runs.png").exists()


def test_compare_and_the_grid_table_say_flat_where_the_constant_fits_best(tmp_path, capsys):
    _phase1_run(tmp_path / "rises", "smollm2-135m", [1, 2, 0, 9, 1, 2, 3, 9])
    _phase1_run(tmp_path / "flat", "qwen-1.5b", [9] * 8)  # never right: 0 % at every budget
    out = compare.run(StudyConfig().replace({
        "paths.results_dir": tmp_path, "paths.figures_dir": tmp_path / "figs",
        "statistics.fit_bootstrap_resamples": 5}), [tmp_path / "rises", tmp_path / "flat"])
    rises, flat = out["runs"]
    assert (rises["flat"], flat["flat"]) == (False, True)
    assert flat["best_fit"] == "constant" and flat["breakpoint"] is None
    assert flat["saturation_level"] is None
    lines = capsys.readouterr().out.splitlines()
    flat_line = next(line for line in lines if line.startswith("qwen-1.5b"))
    assert flat_line.split()[1:] == ["arith", "flat", "flat", "flat"]
    assert next(line for line in lines if line.startswith("smollm2-135m")).split()[2] != "flat"
    # The grid table, from the same kind of rows: "flat" in every fit column.
    rows = [{"cell": "flat", "status": "ok", "accuracy": {"32": 0.0, "64": 0.0},
             "saturation_budget": 32, "best_fit": "constant", "flat": True},
            {"cell": "fixed", "status": "ok", "accuracy": {"32": 0.0, "64": 1.0},
             "saturation_budget": 64, "best_fit": "piecewise", "flat": False, "breakpoint": 45.0,
             "breakpoint_ci": None, "breakpoint_ci_note": "no interval: no spread, all 10 "
             "resamples give 45 tokens", "saturation_level": 1.0, "cliff_window": [32, 64]}]
    header, cells = grid.table_rows(rows)
    columns = ["saturation budget", "best fit", "breakpoint", "breakpoint 95% CI",
               "fitted level", "cliff window"]
    picked = [[row[header.index(c)] for c in columns] for row in cells]
    assert picked == [["flat from 32", "flat", "flat", "flat", "flat", "flat"],
                      [64, "piecewise", "45", "none (no spread)", "100.0%", "32-64"]]


def test_compare_without_runs_is_a_user_error(tmp_path, capsys):
    assert compare.main(["--runs", str(tmp_path), f"--results-dir={tmp_path}"]) == 2
    assert "no phase-1 results" in capsys.readouterr().err


@pytest.mark.slow
def test_grid_on_smollm2_arith_and_gsm8k(tmp_path, capsys):
    flags = ["--models", "smollm2-135m", "--datasets", "arith", "gsm8k", "--num-samples", "2",
             "--budgets", "16", "32", "64", "--quiet", "--fit-bootstrap-resamples", "10",
             f"--results-dir={tmp_path / 'results'}", f"--figures-dir={tmp_path / 'figures'}"]
    assert run_all.main(flags) == 0
    rows = json.loads((tmp_path / "results" / "grid_summary.json").read_text())["rows"]
    assert [(r["dataset"], r["status"], r["n"]) for r in rows] == [("arith", "ok", 2),
                                                                   ("gsm8k", "ok", 2)]
    assert all(r["generated_tokens"] > 0 and r["best_fit"] for r in rows)
    assert "smollm2-135m__gsm8k" in capsys.readouterr().out


def test_grid_budget_modes_share_a_folder(tiny_model_dir, arith_file, tmp_path, capsys):
    """--budget-modes truncate force-end: two rows per model x dataset, one folder; force-end
    reads truncation's rollouts there instead of generating them again."""
    made = grid.cells(["m"], ["arith"], ["truncate", "force-end"])
    assert [c.name for c in made] == ["m__arith__truncate", "m__arith__force-end"]
    assert {c.folder for c in made} == {"m__arith"}
    root = tmp_path / "results"
    flags = ["--models", str(tiny_model_dir), "--datasets", str(arith_file), "--budget-modes",
             "truncate", "force-end", "--budgets", "4", "8", "16", "--batch-size", "4",
             "--answer-tokens", "4", "--quiet", "--fit-bootstrap-resamples", "10",
             "--bootstrap-resamples", "50", f"--results-dir={root}",
             f"--figures-dir={tmp_path / 'figures'}"]
    assert run_all.main(flags) == 0
    capsys.readouterr()
    rows = json.loads((root / "grid_summary.json").read_text())["rows"]
    assert [(r["budget_mode"], r["status"]) for r in rows] == [("truncate", "ok"),
                                                                ("force-end", "ok")]
    folder = root / "grid" / rows[0]["cell"].removesuffix("__truncate")
    assert rows[1]["cell"] == f"{folder.name}__force-end"
    assert {p.name for p in folder.glob("cell*.json")} == {"cell.json", "cell-force-end.json"}
    forced = store.read_json(next(folder.glob("phase1_combined_*-force-end.json")))
    assert forced["provenance"]["rollouts_generated"] == 0  # truncation's, read from the folder
