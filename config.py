"""The one study configuration: a tree of frozen dataclasses, each default written once here.

Three ways in, one result. Defaults below < a YAML file (``--config FILE.yaml``) < command-line
flags. Flags are not declared anywhere else: ``study.cli`` derives them from the ``flag`` and
``local`` metadata of these fields (``local`` is the short name a phase script uses for its own
section, e.g. ``--budgets`` in ``phase3_cliff.py`` for ``phase3.budgets``). The resolved config
(``StudyConfig.to_dict``) is written into the provenance block of every output.

Nothing here is mutated at run time: ``StudyConfig.replace`` and ``from_mapping`` return copies.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config_analysis import AnnotationConfig, FigureConfig, StatisticsConfig  # noqa: F401
from engine.hf import HFSettings
from engine.openai import OpenAISettings
from engine.vllm import VllmSettings
from study.config_mapping import apply_mapping, nest, opt, plain, read_yaml
from study.data.datasets import ANSWER_KINDS, DATA_SOURCES, REGISTRY
from utils import ENGINES, PRECISIONS, model_tag  # the engine owns what it accepts

# Root of the repository: default folders are resolved against it so phases work from any cwd.
REPO_ROOT = Path(__file__).resolve().parent
# The offline demo preset; ``run_all.py --demo`` is ``--all --config`` this file.
DEMO_CONFIG = REPO_ROOT / "examples" / "demo.yaml"

# The sections a script shows with "model": the model's and each engine's own.
MODEL_SECTIONS = ("model", *ENGINES)
DATASETS = tuple(REGISTRY)  # study.data.datasets; plus any local .jsonl/.json/.csv/.parquet file
DECODINGS = ("sample", "power")  # generation.decoding


@dataclass(frozen=True)
class ModelConfig:
    name: str = opt("qwen-1.5b", flag="--model",  # the spec's primary model
                    help="alias (qwen-1.5b, qwen-7b, qwen-math-1.5b, smollm2-135m, "
                    "deepseek-r1-distill-qwen-{1.5b,7b,14b,32b}, qwq-32b, qwen3-{1.7b,4b,8b}), "
                    "hub id or local folder")
    # Empty: the template's own defaults. A reasoning alias adds its switches (qwen3-*:
    # enable_thinking=true) and these win over them; they join the rollout fingerprint.
    chat_template_kwargs: dict[str, Any] = opt(
        flag="--chat-template-kwargs", factory=dict,
        help="switches passed to the chat template, KEY=VALUE ... (values read as JSON: true, 3, "
        "\"x\"; else text); YAML: a mapping (default: none; a reasoning alias adds its own)")
    precision: str = opt("auto", flag="--precision", choices=PRECISIONS,  # see engine rule
                         help="auto = fp32 on CPU; bf16 on CUDA if the weights fit in 40%% of GPU "
                         "memory, else nf4")
    device: str | None = opt(None, flag="--device",  # None: CUDA when available
                             help="cpu, cuda, cuda:1 (default: cuda if available)")
    # 32 rows keep a 16 GB GPU busy at 2k-token budgets; 0 = auto (fits free GPU memory).
    batch_size: int = opt(32, flag="--batch-size",
                          help="rows decoded together, or 'auto' (fits free GPU memory; 16 on "
                          "CPU); halved on CUDA OOM")
    # None: the whole model. Results of a cut model carry "-L{n}" in their file names.
    num_layers: int | None = opt(None, flag="--num-layers",
                                 help="keep only the first L decoder layers (then the final "
                                 "norm and LM head); default: all")
    # hf: the project's decode loop, the reference, runs everything. vllm (in this process) and
    # openai (a served model): same greedy tokens; engine.base lists what each cannot run. Each
    # engine's own knobs are the config section named after it (hf, vllm, openai).
    engine: str = opt("hf", flag="--engine", choices=tuple(ENGINES),
                      help="generation engine: " + "; ".join(
                          f"{e.name}: {e.summary}" for e in ENGINES.values()))


@dataclass(frozen=True)
class DataConfig:
    dataset: str = opt("gsm8k", flag="--dataset",  # the spec's benchmark (1,319 test problems)
                       help=f"{', '.join(REGISTRY)}, or a local .jsonl/.json/.csv/.parquet "
                       "file with question/answer columns")
    # Registered datasets declare their own kind; a local file is GSM-style unless told.
    answer_kind: str = opt("numeric", flag="--answer-kind", choices=ANSWER_KINDS,
                           help="answer kind of a local --dataset file: numeric (GSM-style "
                           "numbers), latex (boxed expressions) or choice (a letter)")
    # The shipped copy needs no network; the hub is the alternative, only when asked.
    source: str = opt("shipped", flag="--data-source", choices=DATA_SOURCES,
                      help="gsm8k/math500: the copy shipped in data/ (sha256-checked) or the "
                      "Hugging Face hub")
    num_samples: int | None = opt(None, flag="--num-samples",  # None: every problem
                                  help="use the first N problems (default: all; 500 for "
                                  "generated sets), or N drawn with --subset-seed")
    # Selections of seed 001 (sample_idxs_range); each joins the fingerprint only when set, and
    # --num-samples then counts within the selection (study.data.subsets).
    problem_range: str | None = opt(None, flag="--problem-range",  # None: from the first problem
                                    help="START:END: only the problems at 0-based positions "
                                    "START..END-1 of the set, e.g. 1000:1200 (default: the "
                                    "whole set)")
    # None: --num-samples takes a prefix, so smaller runs are prefixes of larger ones.
    subset_seed: int | None = opt(None, flag="--subset-seed",
                                  help="draw the --num-samples problems at random with this seed "
                                  "(a smaller N draws a subset of a larger N's problems; "
                                  "default: the first N)")
    problem_ids: Path | None = opt(None, flag="--problem-ids",  # None: no list
                                   help="FILE: only the problems whose ids it lists, one a line "
                                   "('#' starts a comment; default: no list)")


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding of phases 1 and 3 (phase 3 reuses phase 1's rollouts, so they must agree)."""

    temperature: float = opt(0.0, flag="--temperature",  # greedy: a deterministic curve
                             help="0 = greedy")
    top_p: float = opt(1.0, flag="--top-p",  # 1.0 = no nucleus truncation
                       help="nucleus mass when sampling")
    # Plain sampling is the study's baseline; power sampling (MCMC over p^alpha) is opt-in.
    decoding: str = opt("sample", flag="--decoding", choices=DECODINGS,
                        help="sample = the phase's own decoding; power = power sampling (MCMC "
                        "over p^alpha, see the power section) in every generating phase")


@dataclass(frozen=True)
class PowerConfig:
    """Power sampling (``--decoding power``): target p^alpha, proposal temperature 1/alpha."""

    alpha: float = opt(4.0, flag="--power-alpha",  # FACTS.md "Power sampling": alpha = 4
                       help="exponent of the target p^alpha (proposal temperature 1/alpha)")
    blocks: int = opt(16, flag="--power-blocks",  # FACTS.md: e.g. 16 blocks
                      help="blocks the length budget is grown in (MH steps after each)")
    mcmc_steps: int = opt(10, flag="--power-mcmc-steps",  # FACTS.md: N = 10
                          help="Metropolis-Hastings steps after each block")


BUDGET_MODES = ("truncate", "force-end", "force-continue")


@dataclass(frozen=True)
class ForcingConfig:
    """How an answer is read at a budget (phases 1, 1b and 3): study.strategies.forcing."""

    # truncate: the spec's reading of the first B tokens (seed 000); the others are s1's.
    budget_mode: str = opt("truncate", flag="--budget-mode", choices=BUDGET_MODES,
                           help="truncate (read the answer off the first B tokens), force-end "
                           "(append the cue at B and generate a short answer) or force-continue "
                           "(replace an early EOS by --continue-string, then force-end)")
    # The end-of-thinking marker (e.g. </think>) goes first when the chat template has one.
    cue: str = opt("\n\nFinal answer:", flag="--cue",
                   help="text appended at the budget before the forced answer")
    answer_tokens: int = opt(16, flag="--answer-tokens",  # a number or short expression fits
                             help="greedy tokens generated after the cue")
    continue_string: str = opt("Wait", flag="--continue-string",  # s1's string
                               help="force-continue: what replaces an EOS before the budget")
    max_continues: int = opt(4, flag="--max-continues",  # s1: gains level off after ~6
                             help="force-continue: most EOS replacements per generation")


@dataclass(frozen=True)
class ThinkingConfig:
    """Reasoning models' thinking (study.strategies.reasoning): where it ends, how answers are
    read. A model without thinking markers is unaffected."""

    # None: read from the tokenizer (an added token) or the chat template, else the alias's.
    markers: tuple[str, ...] | None = opt(None, flag="--thinking-markers",
                                          help="START END: the thinking markers, e.g. <think> "
                                          "</think>, or none (the model has none); default: "
                                          "read from the tokenizer or chat template")
    # A number inside a thought is not an answer: truncation grades what follows the end marker.
    grade_whole_text: bool = opt(False, flag="--grade-whole-text",
                                 help="truncation: grade a thinking model's whole text, thoughts "
                                 "included, not only what follows the end-of-thinking marker")


@dataclass(frozen=True)
class Phase1Config:
    # Four orders of magnitude on a log2 grid, as the spec does.
    budgets: tuple[int, ...] = opt((32, 64, 128, 256, 512, 1024, 2048), flag="--budgets",
                                   help="phase 1 token budgets")


@dataclass(frozen=True)
class StochasticConfig:
    """Phase 1b: k samples per problem around the plateau."""

    budgets: tuple[int, ...] = opt((512, 1024), flag="--stochastic-budgets",  # the spec's plateau
                                   local="--budgets", help="phase 1b token budgets")
    samples: int = opt(5, flag="--samples", local="--samples",  # the spec's k
                       help="samples per problem, k (k >= 2 for a std)")
    num_samples: int | None = opt(None, flag="--stochastic-num-samples",  # None: --num-samples
                                  help="phase 1b problems (default: --num-samples)")
    # The spec's GENERATION_CONFIG: temperature 0.7, top-p 0.9, do_sample=True.
    temperature: float = opt(0.7, flag="--stochastic-temperature", local="--temperature",
                             help="phase 1b sampling temperature")
    top_p: float = opt(0.9, flag="--stochastic-top-p", local="--top-p",
                       help="phase 1b nucleus mass")


@dataclass(frozen=True)
class CliffConfig:
    # The spec zooms into 96..256 tokens with a 16-token step.
    budgets: tuple[int, ...] = opt(tuple(range(96, 257, 16)), flag="--cliff-budgets",
                                   local="--budgets", help="phase 3 token budgets")
    include_phase1: bool = opt(False, flag="--include-phase1",  # structure table: cliff grid only
                               help="add phase-1 budgets outside the cliff grid to the "
                               "structure table")


@dataclass(frozen=True)
class DepthConfig:
    """phase_depth.py: accuracy against the number of decoder layers kept."""

    # None: 40, 60, 80, 90 and 100 % of the model's depth (SmolLM2's 30: 12 18 24 27 30).
    layers: tuple[int, ...] | None = opt(None, local="--layers", flag="--depth-layers",
                                         help="depths to run (default: 40/60/80/90/100%% of "
                                         "the model's layers)")
    # Where phase 1b looks for the plateau: depth is measured where more tokens no longer help.
    budgets: tuple[int, ...] = opt((512,), local="--budgets", flag="--depth-budgets",
                                   help="token budget(s) of the depth sweep (all read off one "
                                   "rollout per problem and depth)")


@dataclass(frozen=True)
class LensConfig:
    """phase_lens.py: the logit lens over a seeded sample of phase-1 rollouts."""

    # SmolLM2, 2 CPU cores: ~2.5 min (measured)
    samples: int = opt(16, local="--samples", flag="--lens-samples",
                       help="phase-1 rollouts sampled (seeded) for the logit lens")
    budgets: tuple[int, ...] | None = opt(None, flag="--lens-budgets",
                                          help="budgets at which KL is averaged (default: the "
                                          "phase-1 budgets, --budgets)")
    # Four rows of 2k tokens keep every layer's hidden states of a 7B well under 16 GB.
    batch_size: int = opt(4, flag="--lens-batch-size", help="rollouts per lens forward pass")


@dataclass(frozen=True)
class PathsConfig:
    results_dir: Path = opt(REPO_ROOT / "results", flag="--results-dir", help="results store")
    annotations_dir: Path = opt(REPO_ROOT / "annotations", flag="--annotations-dir",
                                help="annotation TSVs (one folder per study inside: "
                                "{model}__{dataset}-s{seed})")
    figures_dir: Path = opt(REPO_ROOT / "figures", flag="--figures-dir", help="figures")
    data_dir: Path = opt(REPO_ROOT / "data", flag="--data-dir",
                         help="models and datasets cache")


@dataclass(frozen=True)
class RunOptions:
    overwrite: bool = opt(False, flag="--overwrite",  # finished phases are reused by default
                          help="discard finished or partial results and start over")
    quiet: bool = opt(False, flag="--quiet", help="no progress bars")  # bars help long runs
    # None: this process takes every problem (an accelerate launch still splits them by rank).
    shard: str | None = opt(None, flag="--shard",
                            help="run shard i of n only (i/n, 0-based, e.g. 0/4: the problems "
                            "whose index is i mod n); the last shard to finish merges (default: "
                            "every problem, or this accelerate rank's share)")
    merge: bool = opt(False, flag="--merge",  # shards merge themselves when all are present
                      help="generating phases only merge their shard files (every shard must "
                      "be present); nothing is generated")


@dataclass(frozen=True)
class GridConfig:
    """``run_all.py --models M1 M2 --datasets D1 D2``: every combination, a folder each."""

    datasets: tuple[str, ...] | None = opt(None, flag="--datasets",  # None: no grid
                                           help="run the grid: every --models entry on each "
                                           "of these datasets, in results/grid/{model}__"
                                           "{dataset}/, then results/grid_summary.{md,csv,json}")
    # None: each cell runs under forcing.budget_mode alone.
    budget_modes: tuple[str, ...] | None = opt(
        None, flag="--budget-modes", choices=BUDGET_MODES,
        help="with --datasets: run every cell under each of these budget modes; the modes of a "
        "model and dataset share its folder, so force-end reuses truncation's rollouts")


@dataclass(frozen=True)
class StudyConfig:
    seed: int = opt(1234, flag="--seed",  # problem sampling, generation noise, bootstrap
                    help="random seed")
    model: ModelConfig = field(default_factory=ModelConfig)
    # each engine's own knobs, in a section named after it (engine.base.ENGINES)
    hf: HFSettings = field(default_factory=HFSettings)
    vllm: VllmSettings = field(default_factory=VllmSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    data: DataConfig = field(default_factory=DataConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    forcing: ForcingConfig = field(default_factory=ForcingConfig)
    thinking: ThinkingConfig = field(default_factory=ThinkingConfig)
    power: PowerConfig = field(default_factory=PowerConfig)
    phase1: Phase1Config = field(default_factory=Phase1Config)
    phase1b: StochasticConfig = field(default_factory=StochasticConfig)
    phase3: CliffConfig = field(default_factory=CliffConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    lens: LensConfig = field(default_factory=LensConfig)
    annotation: AnnotationConfig = field(default_factory=AnnotationConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    figures: FigureConfig = field(default_factory=FigureConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    run: RunOptions = field(default_factory=RunOptions)
    grid: GridConfig = field(default_factory=GridConfig)

    def to_dict(self) -> dict:
        """JSON-ready nested dict (paths as strings, tuples as lists)."""
        return plain(dataclasses.asdict(self))

    def replace(self, changes: dict[str, Any]) -> StudyConfig:
        """A copy with dotted keys changed: ``{"model.name": "qwen-7b", "seed": 1}``."""
        return from_mapping(nest(changes), base=self, source="overrides")

    def _variant_parts(self) -> list[tuple[str, str, str]]:
        """(kind, file-tag suffix, flags) of each thing that sets this run's files apart from
        the plain run's, in tag order. One list, so tags, flags and kinds always agree."""
        n, mode = self.model.num_layers, self.forcing.budget_mode
        parts = []
        if n is not None:  # only the first n decoder layers kept
            parts.append(("num_layers", f"-L{n}", f"--num-layers {n}"))
        if mode != "truncate":  # forced runs sit beside truncation's
            parts.append(("budget_mode", f"-{mode}", f"--budget-mode {mode}"))
        if self.generation.decoding == "power":
            parts.append(("decoding", "-power", "--decoding power"))
        return parts

    @property
    def model_tag(self) -> str:
        """File-name-safe model name (the alias, or a sanitised hub id / folder name), with
        ``-L{n}`` when only the first n decoder layers are kept, then ``-{budget_mode}`` for
        forced runs, then ``-power`` under power sampling."""
        return model_tag(self.model.name) + "".join(s for _, s, _ in self._variant_parts())

    @property
    def run_variant(self) -> frozenset[str]:
        """What sets this run's files apart from the plain run's (the parts of ``model_tag``
        after the model's name): some of "num_layers", "budget_mode", "decoding"."""
        return frozenset(kind for kind, _, _ in self._variant_parts())

    @property
    def run_flags(self) -> str:
        """The flags that pick this run's files (everything in ``model_tag``), for the
        "run this next" hints: a hint with ``--model`` alone would read another run's results."""
        return " ".join([f"--model {shlex.quote(self.model.name)}",
                         *(f for _, _, f in self._variant_parts())])

def from_mapping(data: dict[str, Any], base: StudyConfig | None = None,
                 source: str = "config") -> StudyConfig:
    """``base`` (default: the defaults) with the nested ``data`` applied (see config_mapping)."""
    return apply_mapping(data, base if base is not None else StudyConfig(), source)


def load_yaml(path: Path, base: StudyConfig | None = None) -> StudyConfig:
    """A StudyConfig from a YAML file (missing keys keep ``base``'s values)."""
    return from_mapping(read_yaml(path), base, str(Path(path)))
