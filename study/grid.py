"""The grid runner: every model x dataset, each cell in its own results folder, one summary table.

``run_all.py --models M1 M2 --datasets D1 D2 [--phase1 ...]`` calls ``run_grid``. A cell is
``results/grid/{model}__{dataset}/``: the requested steps (phase 1 by default) run there on the
shared config with the cell's model and dataset, in a child process (so one cell's crash or
out-of-memory cannot take the grid down, and its peak memory is its own: the child's maximum
resident set size). A model may carry a precision, ``NAME@bf16``. A finished cell (its marker
file matches the cell's config and steps) is reused without starting a process; a failing cell
is reported and the others go on. Afterwards ``results/grid_summary.{md,csv,json}`` holds one
row per cell, read from the cells' phase-1 and scaling summaries (no model).

With ``--budget-modes truncate force-end ...`` every model x dataset also runs under each budget
mode. The modes of one model and dataset share its folder (their result files differ by the
``-{mode}`` suffix of the model tag), so force-end reads truncation's rollouts instead of
generating them again; each mode has its own marker, config file and log there.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from config import REPO_ROOT, StudyConfig
from study import store
from study.data.datasets import REGISTRY
from study.tables import flat_from, markdown_table, num, pct

MARKER = "cell.json"  # written when a cell finished; holds its fingerprint and cost


@dataclass(frozen=True)
class Cell:
    model: str  # as given, without the precision
    precision: str | None  # from NAME@PRECISION; None: the config's
    dataset: str
    mode: str | None = None  # budget mode; None: the config's

    @property
    def folder(self) -> str:
        """The results folder of the cell (shared by the budget modes of a model and dataset)."""
        model = StudyConfig().replace({"model.name": self.model}).model_tag
        data = self.dataset if self.dataset in REGISTRY else Path(self.dataset).stem
        return f"{model}{'-' + self.precision if self.precision else ''}__{data}"

    @property
    def name(self) -> str:
        return self.folder + (f"__{self.mode}" if self.mode else "")


def cells(models: Sequence[str], datasets: Sequence[str],
          modes: Sequence[str] | None = None) -> list[Cell]:
    """Every model x dataset (x budget mode), models outermost, modes innermost."""
    out = []
    for spec in models:
        name, _, precision = spec.partition("@")
        out += [Cell(name, precision or None, d, m) for d in datasets for m in (modes or (None,))]
    return out


def cell_file(cfg: StudyConfig, filename: str) -> Path:
    """A cell's own file in its folder: ``cell.json`` for truncation, ``cell-force-end.json``
    for another budget mode (the modes share the folder)."""
    mode = cfg.forcing.budget_mode
    path = Path(cfg.paths.results_dir) / filename
    return path if mode == "truncate" else path.with_name(f"{path.stem}-{mode}{path.suffix}")


def grid_root(cfg: StudyConfig) -> Path:
    return Path(cfg.paths.results_dir) / "grid"


def cell_config(cfg: StudyConfig, cell: Cell) -> StudyConfig:
    """The study config of one cell (no grid inside it, its own results folder)."""
    changes = {"model.name": cell.model, "data.dataset": cell.dataset,
               "paths.results_dir": grid_root(cfg) / cell.folder, "grid.datasets": None,
               "grid.budget_modes": None, "figures.models": None}
    if cell.precision:
        changes["model.precision"] = cell.precision
    if cell.mode:
        changes["forcing.budget_mode"] = cell.mode
    return cfg.replace(changes)


def _fingerprint(cfg: StudyConfig, steps: Sequence[str]) -> str:
    return store.fingerprint({"config": cfg.to_dict(), "steps": list(steps)})


def finished(cfg: StudyConfig, steps: Sequence[str]) -> dict | None:
    """The cell's marker when it finished under this very config and steps."""
    path = cell_file(cfg, MARKER)
    if cfg.run.overwrite or not path.exists():
        return None
    marker = store.read_json(path)
    return marker if marker.get("fingerprint") == _fingerprint(cfg, steps) else None


def run_in_child(cfg: StudyConfig, steps: Sequence[str]) -> dict:
    """Run the steps of one cell in a child ``run_all.py``; its exit code, wall time and peak
    resident memory (the child's own, from wait4). Output goes to the cell's run.log."""
    folder = Path(cfg.paths.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config_file = cell_file(cfg, "cell_config.yaml")
    store.atomic_write_text(config_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    command = [sys.executable, str(REPO_ROOT / "run_all.py"), "--config", str(config_file),
               *(f"--{step.replace('_', '-')}" for step in steps)]
    started = time.perf_counter()
    with open(cell_file(cfg, "run.log"), "w", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
    return {"returncode": child.returncode, "wall_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}  # Linux reports KiB


CellRunner = Callable[[StudyConfig, Sequence[str]], dict]


def run_cell(cfg: StudyConfig, steps: Sequence[str], runner: CellRunner = run_in_child) -> dict:
    """Reuse or run one cell; returns its marker (status "reused", "ok" or "failed ...")."""
    marker = finished(cfg, steps)
    if marker is not None:
        return {**marker, "status": "reused"}
    outcome = runner(cfg, steps)
    if outcome["returncode"] != 0:
        log = cell_file(cfg, "run.log")
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:] if log.exists() else []
        return {**outcome, "status": f"failed (exit {outcome['returncode']})",
                "error": tail[0] if tail else ""}
    marker = {**outcome, "fingerprint": _fingerprint(cfg, steps), "steps": list(steps)}
    store.write_json(cell_file(cfg, MARKER), marker)
    return {**marker, "status": "ok"}


def cell_row(cell: Cell, cfg: StudyConfig, outcome: dict) -> dict:
    """One row of the grid table, read from the cell's summaries (empty cells when absent)."""
    results, tag = Path(cfg.paths.results_dir), cfg.model_tag
    row = {"cell": cell.name, "model": cell.model, "precision": cfg.model.precision,
           "dataset": cell.dataset, "budget_mode": cfg.forcing.budget_mode,
           "status": outcome["status"], "error": outcome.get("error")}
    p1_path, sc_path = store.phase1_combined_path(results, tag), store.scaling_path(results, tag)
    if not p1_path.exists():
        return row
    p1 = store.read_json(p1_path)
    prov = p1.get("provenance", {})
    budgets = sorted(p1["budgets"].values(), key=lambda r: r["budget"])
    row.update({"n": budgets[0]["n"] if budgets else None,
                "accuracy": {str(r["budget"]): r["accuracy"] for r in budgets},
                "saturation_budget": p1.get("saturation_budget"),
                "generated_tokens": prov.get("generated_tokens"),
                "wall_time_s": prov.get("wall_time_s"), "tokens_per_s": prov.get("tokens_per_s"),
                "peak_rss_mb": outcome.get("peak_rss_mb"), "device": prov.get("device")})
    if sc_path.exists():
        sc = store.read_json(sc_path)
        fits = sc.get("fits") or {}
        block = next(iter(sc.get("emergence", {}).values()), {})
        row.update({"best_fit": fits.get("best"), "flat": bool(fits.get("flat")),
                    "breakpoint": fits.get("breakpoint"),
                    "breakpoint_ci": fits.get("breakpoint_ci"),
                    "breakpoint_ci_note": fits.get("breakpoint_ci_note"),
                    "saturation_level": fits.get("saturation_level"),
                    "cliff_window": sc.get("cliff_window"),
                    "share_jumping": block.get("share_jumping")})
    return row


def _window(value: list[int] | None) -> str:
    return f"{value[0]}-{value[1]}" if value else ""


def _fit_cells(r: dict) -> list[str]:
    """Saturation budget, best fit, breakpoint, its CI, fitted level and cliff window: "flat"
    in each when the constant fit is best (none of them is in a flat curve's data)."""
    accuracy = r.get("accuracy") or {}
    if r.get("flat"):
        return [flat_from(accuracy) if accuracy else "flat", *["flat"] * 5]
    ci, note = r.get("breakpoint_ci"), r.get("breakpoint_ci_note")
    return [r.get("saturation_budget") or "", r.get("best_fit") or "",
            num(r.get("breakpoint"), 0, missing=""),
            f"{ci[0]:.0f}-{ci[1]:.0f}" if ci else "none (no spread)" if note else "",
            pct(r.get("saturation_level"), missing=""), _window(r.get("cliff_window"))]


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the grid table (markdown and CSV share them)."""
    budgets = sorted({int(b) for r in rows for b in r.get("accuracy", {})})
    header = ["cell", "status", "n", *[f"acc@{b}" for b in budgets], "saturation budget",
              "best fit", "breakpoint", "breakpoint 95% CI", "fitted level", "cliff window",
              "jumping", "tokens generated", "wall time (s)", "peak RSS (MB)", "tokens/s"]
    out = []
    for r in rows:
        acc = r.get("accuracy", {})
        out.append([r["cell"], r["status"], r.get("n") or "",
                    *[pct(acc.get(str(b)), missing="") for b in budgets], *_fit_cells(r),
                    pct(r.get("share_jumping"), 0, missing=""), r.get("generated_tokens") or "",
                    num(r.get("wall_time_s"), missing=""), num(r.get("peak_rss_mb"), 0,
                                                               missing=""),
                    num(r.get("tokens_per_s"), 0, missing="")])
    return header, out


def write_summary(root: Path, rows: list[dict], cfg: StudyConfig) -> list[Path]:
    """``grid_summary.{md,csv,json}`` next to the grid folder."""
    header, cells_text = table_rows(rows)
    paths = [root / "grid_summary.md", root / "grid_summary.csv", root / "grid_summary.json"]
    notes = ("Accuracy per budget from phase 1; best fit by BIC; breakpoint and its bootstrap CI "
             "in tokens (none (no spread): every resample gave the same breakpoint, or none "
             "identified one); fitted level = the saturating fit's asymptote; flat = the "
             "constant fit is best by BIC (no budget dependence, so no saturation budget, "
             "breakpoint, level or cliff window); cliff window = phase "
             "1's half-gain window; jumping = share of problems that jump; tokens, wall time "
             "and tokens/s from the phase-1 provenance (of the run that generated them); peak "
             "RSS = the cell process's maximum resident memory.")
    store.atomic_write_text(paths[0], f"# Grid summary\n\n{markdown_table(header, cells_text)}"
                            f"\n\n{notes}\n")
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *cells_text])
    store.atomic_write_text(paths[1], buffer.getvalue())
    store.write_json(paths[2], {"rows": rows, "notes": notes, "provenance": store.provenance(
        cfg.to_dict(), seed=cfg.seed, wall_time_s=sum(r.get("wall_s") or 0 for r in rows))})
    return paths


def run_grid(cfg: StudyConfig, steps: Sequence[str], runner: CellRunner = run_in_child) -> int:
    """Every cell in turn, then the summary table; 0 when every cell finished, else 1."""
    models = cfg.figures.models or (cfg.model.name,)
    grid = cells(models, cfg.grid.datasets or (), cfg.grid.budget_modes)
    rows = []
    for i, cell in enumerate(grid, 1):
        cell_cfg = cell_config(cfg, cell)
        print(f"\n=== grid cell {i}/{len(grid)}: {cell.name} ({', '.join(steps)})", flush=True)
        outcome = run_cell(cell_cfg, steps, runner)
        line = f"=== {cell.name}: {outcome['status']}"
        if outcome.get("wall_s") is not None:
            line += f" in {outcome['wall_s']:.1f} s, peak RSS {outcome['peak_rss_mb']:.0f} MB"
        print(line + (f": {outcome['error']}" if outcome.get("error") else ""), flush=True)
        rows.append({**cell_row(cell, cell_cfg, outcome), "wall_s": outcome.get("wall_s")})
    paths = write_summary(Path(cfg.paths.results_dir), rows, cfg)
    print(f"\n{(paths[0]).read_text(encoding='utf-8')}\nwrote {', '.join(map(str, paths))}")
    failed = [r["cell"] for r in rows if r["status"].startswith("failed")]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)} (see run*.log in each folder)")
    return 1 if failed else 0
