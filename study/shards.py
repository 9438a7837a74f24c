"""Which shard of a generating phase this process runs, and where a shard keeps its rollouts.

Below the strategies and the runner: the rollout logs ask it for their file names, the runner
for the share of problems, the CLI for the flag checks. Running and merging shards is
``study.run.sharding``; the shard boundary and the launchers are described there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import utils
from study import store
from study.errors import ConfigError

if TYPE_CHECKING:
    from config import StudyConfig

# Ranks wait at the barrier for the slowest shard; torch's 30-minute default is too short for a
# paper-scale phase, whose shards may finish hours apart on unequal GPUs.
BARRIER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Shard:
    """This process's share of a phase: shard ``index`` of ``count``."""

    index: int
    count: int
    world_size: int = 1  # processes of this accelerate launch (1: not launched by accelerate)
    rank: int = 0  # this process among them

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ConfigError naming --shard otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match and 0 <= int(match[1]) < int(match[2]):
        return int(match[1]), int(match[2])
    raise ConfigError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. --shard 0/4 "
                      "(shards are numbered from 0)")


def check(cfg: StudyConfig) -> None:
    """Checks of --shard and --merge that need no process state."""
    if cfg.run.shard is not None:
        parse_shard(cfg.run.shard)
        if cfg.run.merge:
            raise ConfigError("--merge reads every shard file; drop --shard "
                              f"{cfg.run.shard} from the merge command")


def select(items: list, shard: Shard | str | None) -> list:
    """The items of one shard (round robin over the positions); all of them for None."""
    if shard is None:
        return list(items)
    index, count = parse_shard(shard) if isinstance(shard, str) else (shard.index, shard.count)
    return list(items[index::count])


def process_state(cfg: StudyConfig) -> Any:
    """accelerate's view of this process: rank 0 of 1 unless started by ``accelerate launch``.

    CPU runs ask for gloo explicitly (``cpu=True``): otherwise accelerate, finding no GPU,
    would treat every rank as a lone process and each would run every problem.
    """
    from accelerate import PartialState  # imported here: only generating phases need it

    cpu = utils.pick_device(cfg.model.device).type != "cuda"
    return PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)


def _launched_together() -> bool:
    """Whether a launcher started several processes (``accelerate launch`` and torchrun set
    WORLD_SIZE). A plain ``python`` run then needs neither accelerate nor torch to know it is
    alone, so it gets as far as its first real error without importing them."""
    return int(os.environ.get("WORLD_SIZE") or 1) > 1


def current(cfg: StudyConfig) -> Shard | None:
    """This process's shard, or None when it runs the phase whole (or only merges)."""
    check(cfg)
    world, rank = 1, 0
    if _launched_together():
        state = process_state(cfg)
        world, rank = state.num_processes, state.process_index
    if cfg.run.merge:
        if world > 1:
            raise ConfigError("--merge runs in one process; start it with python, not "
                              "accelerate launch")
        return None
    index, count = parse_shard(cfg.run.shard) if cfg.run.shard is not None else (0, 1)
    if count * world == 1:
        return None
    return Shard(index * world + rank, count * world, world, rank)


def runs_whole_study(cfg: StudyConfig) -> bool:
    """Whether this process also runs the steps after the generating phases. An array shard
    does not (the other shards may still run: a merge job carries on), nor does a rank other
    than 0 of an accelerate launch (rank 0 merges and carries on)."""
    shard = current(cfg)
    return shard is None or (shard.count == shard.world_size and shard.rank == 0)


# ------------------------------------------------------------------ rollout logs of a shard

def log_path(cfg: StudyConfig, whole: Path) -> Path:
    """Where this process keeps the rollout log ``whole``: its own file when sharded."""
    shard = current(cfg)
    if shard is None:
        return Path(whole)
    return store.shard_path(cfg.paths.results_dir, whole, shard.index, shard.count)


def log_header(cfg: StudyConfig) -> dict:
    """Extra header keys of a shard's rollout log (which problems it may hold)."""
    shard = current(cfg)
    return {} if shard is None else {"shard": shard.label}


def source_log_path(cfg: StudyConfig, whole: Path) -> Path:
    """Another phase's rollout log to reuse: this shard's own when it exists, else the whole."""
    own = log_path(cfg, whole)
    return own if own.exists() else Path(whole)
