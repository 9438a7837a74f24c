"""Where a run's time went: one row per script that ``run_all.py`` ran, printed at the end and
saved as ``results/timings.json`` (with the machine in its provenance block).

A row's model time and tokens come from the summary its script returned: the generation stats
the strategy put in the provenance block (``generation_s``, ``forcing_s``, ``model_load_s``,
``generated_tokens``). A summary written before the script started was reused, not made, and
counts no model time. The rest of the wall time (grading, fits, bootstrap, figures, file I/O) is
``analysis_s``.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from study import store
from study.tables import num, text_table


@dataclass(frozen=True)
class StepTiming:
    """One script of a run and where its wall time went, in seconds."""

    script: str  # the phase script's module name
    wall_s: float
    model_load_s: float  # loading weights and tokenizer (0 when the process already had them)
    model_s: float  # in the model: rollouts, forced answers, candidate scores, power chains
    generated_tokens: int  # new tokens (rollouts, forced answers, power proposals)
    analysis_s: float  # the rest: grading, fits, bootstrap, figures, reading and writing files
    reused: bool  # the script found its results finished and made nothing new

    @property
    def tokens_per_s(self) -> float | None:
        return self.generated_tokens / self.model_s if self.model_s > 0 else None


def _written_at(provenance: dict) -> float | None:
    """A provenance block's ``written_at`` as epoch seconds (None when absent)."""
    stamp = provenance.get("written_at")
    try:
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) if stamp else None
    except ValueError:
        return None


def step_timing(script: str, wall_s: float, started_at: float, result: Any) -> StepTiming:
    """The timing row of one script from its wall time and what its ``run(cfg)`` returned."""
    prov = result.get("provenance", {}) if isinstance(result, dict) else {}
    written = _written_at(prov)
    # written_at has whole seconds: a file stamped over a second before the start was reused
    reused = written is not None and written < int(started_at) - 1
    made = prov if prov and not reused else {}
    load = float(made.get("model_load_s") or 0.0)
    model = float(made.get("generation_s") or 0.0) + float(made.get("forcing_s") or 0.0)
    tokens = int(made.get("generated_tokens") or 0) + int(made.get("forced_answer_tokens") or 0)
    rest = max(wall_s - load - model, 0.0)
    return StepTiming(script, round(wall_s, 3), round(load, 3), round(model, 3), tokens,
                      round(rest, 3), reused)


def timings_table(rows: list[StepTiming]) -> str:
    """The console table: one row per script and a total."""
    columns = [("script", "<22"), ("wall s", ">9"), ("load s", ">8"), ("model s", ">9"),
               ("tokens", ">9"), ("tok/s", ">7"), ("analysis s", ">12"), ("", "<8")]
    lines = [[r.script, num(r.wall_s), num(r.model_load_s), num(r.model_s), r.generated_tokens,
              num(r.tokens_per_s, 0), num(r.analysis_s), "reused" if r.reused else ""]
             for r in rows]
    total = StepTiming("total", sum(r.wall_s for r in rows), sum(r.model_load_s for r in rows),
                       sum(r.model_s for r in rows), sum(r.generated_tokens for r in rows),
                       sum(r.analysis_s for r in rows), False)
    lines.append([total.script, num(total.wall_s), num(total.model_load_s), num(total.model_s),
                  total.generated_tokens, num(total.tokens_per_s, 0), num(total.analysis_s), ""])
    return text_table(columns, lines)


def machine() -> dict:
    """The machine the timings were taken on: processor, cores, memory, OS."""
    cpu = platform.processor() or None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory,
            "platform": platform.platform()}


def write_timings(path: Path, rows: list[StepTiming], config: dict, seed: int,
                  wall_time_s: float, device: str | None) -> None:
    """``timings.json``: the rows (and their total) with a provenance block naming the machine."""
    store.write_json(path, {
        "kind": "timings",
        "steps": [{**asdict(r), "tokens_per_s": r.tokens_per_s} for r in rows],
        "provenance": store.provenance(config, seed=seed, wall_time_s=wall_time_s,
                                       device=device, extra={"machine": machine()}),
    })
