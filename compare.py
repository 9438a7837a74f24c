"""Compare runs: curves, fits and emergent problems of several results folders (no model).

Run:  python compare.py --runs results/grid                 # every cell of a grid
      python compare.py --runs results_a results_b --figures-dir figures/cmp

A run is one model's phase-1 results in a folder (a folder without any is searched one level
down, so a grid folder lists its cells). For each run the scaling summary (fits and emergence,
``study.analysis.scaling``) is read, or computed from the stored records when missing. Draws
``compare_runs.{png,pdf}`` (one panel per dataset: every run's accuracy with its CI band and its
best fit), prints the runs' fits ("flat" where the constant fit is best), and for every two
runs on the same dataset the Spearman correlation of their problems' breakthroughness and the
problems both list among their most emergent. Writes ``comparison.json`` in the results folder.
Exit 2 when no run is found.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from config import StudyConfig
from study import store
from study.analysis import emergence, scaling
from study.cli import config_parser, run_command
from study.errors import ResultsError
from study.figures.scaling import fig_compare_runs
from study.figures.style import display_name, save_figure
from study.results import tags_with
from study.schema_analyses import ComparedRun, ComparisonSummary, ScalingSummary
from study.tables import is_flat, num, pct, text_table


def find_runs(folders: list[Path]) -> list[tuple[Path, str]]:
    """(results folder, model tag) of every phase-1 result in the folders or one level down."""
    runs = []
    for folder in folders:
        found = [(folder, tag) for tag in tags_with("phase1", folder)]
        if not found and folder.is_dir():
            found = [(sub, tag) for sub in sorted(p for p in folder.iterdir() if p.is_dir())
                     for tag in tags_with("phase1", sub)]
        runs += found
    return runs


def load_scaling(cfg: StudyConfig, folder: Path, tag: str) -> ScalingSummary:
    """The run's scaling summary, computed from its records when it is missing or stale."""
    return scaling.analyse(cfg.replace({"paths.results_dir": folder, "model.name": tag}))


def compare(runs: list[tuple[str, ScalingSummary]], top_k: int) -> list[dict]:
    """Every two runs on the same dataset: Spearman of breakthroughness, shared top problems."""
    pairs = []
    for i, (label_a, a) in enumerate(runs):
        for label_b, b in runs[i + 1:]:
            if a.get("dataset") != b.get("dataset"):
                continue
            block_a, block_b = (next(iter(s["emergence"].values())) for s in (a, b))
            score_a, score_b = ({p["problem_id"]: p["breakthroughness"] for p in blk["problems"]}
                                for blk in (block_a, block_b))
            rho, n = emergence.rank_agreement(score_a, score_b)
            shared = [pid for pid in block_a["top"][:top_k] if pid in block_b["top"][:top_k]]
            pairs.append({"a": label_a, "b": label_b, "dataset": a.get("dataset"),
                          "spearman": rho, "n_common": n, "shared_top": shared, "top_k": top_k})
    return pairs


def _fit_cells(run: ComparedRun) -> list[str]:
    """Best fit, breakpoint and level; "flat" in each when the constant fit is best."""
    if run.get("flat"):
        return ["flat"] * 3
    return [run["best_fit"] or "—", num(run["breakpoint"], 0), pct(run["saturation_level"])]


def format_comparison(summary: ComparisonSummary) -> str:
    runs = [[r["label"], Path(r["dataset"] or "?").stem, *_fit_cells(r)]
            for r in summary["runs"]]
    out = [text_table([("Run", "<32"), ("Dataset", "<12"), ("Best fit", "<12"),
                       ("Break", ">7"), ("Level", ">8")], runs)]
    for p in summary["pairs"]:
        shared = ", ".join(p["shared_top"]) or "none"
        out.append(f"{p['a']} vs {p['b']}: Spearman {num(p['spearman'], 2)} over "
                   f"{p['n_common']} problems; top-{p['top_k']} shared "
                   f"{len(p['shared_top'])}: {shared}")
    return "\n".join(out)


def run(cfg: StudyConfig, folders: list[Path] | None = None) -> ComparisonSummary:
    """Compare the runs under ``folders`` (default: results/grid, else the results folder)."""
    started = time.perf_counter()
    grid_dir = Path(cfg.paths.results_dir) / "grid"
    folders = folders or [grid_dir if grid_dir.is_dir() else Path(cfg.paths.results_dir)]
    found = find_runs([Path(f) for f in folders])
    if not found:
        raise ResultsError(f"no phase-1 results in {', '.join(map(str, folders))}; run "
                           "python run_all.py --phase1 (or a grid) first")
    labelled = []
    for folder, tag in found:
        summary = load_scaling(cfg, folder, tag)
        prov = store.read_json(store.phase1_combined_path(folder, tag))["provenance"]
        precision = prov.get("config", {}).get("model", {}).get("precision", "auto")
        name = display_name(summary)  # a hub id or folder: its last part
        labelled.append((name + ("" if precision == "auto" else f" ({precision})"), summary,
                         folder))
    top_k = cfg.statistics.top_emergent
    figure = fig_compare_runs([s for _, s, _ in labelled], [lab for lab, _, _ in labelled])
    paths = save_figure(figure, "compare_runs", cfg.paths.figures_dir, cfg.figures.formats)
    result = {
        "runs": [{"label": lab, "model": s["model"], "dataset": s.get("dataset"),
                  "results_dir": str(folder), "best_fit": (s["fits"] or {}).get("best"),
                  "flat": is_flat(s),
                  "breakpoint": (s["fits"] or {}).get("breakpoint"),
                  "saturation_level": (s["fits"] or {}).get("saturation_level"),
                  "top": next(iter(s["emergence"].values()))["top"][:top_k]}
                 for lab, s, folder in labelled],
        "pairs": compare([(f"{lab} · {Path(s.get('dataset') or '?').stem}", s)
                          for lab, s, _ in labelled], top_k),
        "figure": [str(p) for p in paths]}
    result["provenance"] = store.provenance(cfg.to_dict(), seed=cfg.seed,
                                            wall_time_s=time.perf_counter() - started)
    out = store.comparison_path(cfg.paths.results_dir)
    store.write_json(out, result)
    print(format_comparison(result))
    print(f"wrote {', '.join(map(str, paths))}, {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = config_parser("compare.py", __doc__, own="figures",
                           show=["paths.results_dir", "paths.figures_dir", "figures.formats",
                                 "statistics.fit_bootstrap_resamples", "seed"])
    parser.add_argument("--runs", nargs="+", type=Path, metavar="DIR",
                        help="results folders (or folders of them, such as results/grid); "
                        "default: results/grid, else --results-dir")
    folders = getattr(parser.parse_args(argv), "runs", None)
    return run_command(parser, argv, lambda cfg: run(cfg, folders))


if __name__ == "__main__":
    sys.exit(main())
