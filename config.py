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

from study.config_mapping import apply_mapping, nest, plain, read_yaml
from study.data.datasets import ANSWER_KINDS, DATA_SOURCES, REGISTRY
from utils import ENGINES, KV_LAYOUTS, PRECISIONS, model_tag  # the engine owns what it accepts

# Root of the repository: default folders are resolved against it so phases work from any cwd.
REPO_ROOT = Path(__file__).resolve().parent
# The offline demo preset; ``run_all.py --demo`` is ``--all --config`` this file.
DEMO_CONFIG = REPO_ROOT / "examples" / "demo.yaml"

DATASETS = tuple(REGISTRY)  # study.data.datasets; plus any local .jsonl/.json/.csv/.parquet file
DECODINGS = ("sample", "power")  # generation.decoding


def opt(default: Any = None, *, help: str, flag: str | None = None, local: str | None = None,
        choices: tuple | None = None, factory: Any = None) -> Any:
    """A config field: its default, its help text, and the flags that set it.

    ``flag`` is the name in ``run_all.py`` and every script that shows this section (None:
    YAML only); ``local`` is an extra name in the script that owns the section.
    """
    meta = {"help": help, "flag": flag, "local": local, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    name: str = opt("qwen-1.5b", flag="--model",  # the spec's primary model
                    help="alias (qwen-1.5b, qwen-7b, qwen-math-1.5b, smollm2-135m), hub id or "
                    "local folder")
    precision: str = opt("auto", flag="--precision", choices=PRECISIONS,  # see engine rule
                         help="auto = fp32 on CPU; bf16 on CUDA if the weights fit in 40%% of GPU "
                         "memory, else nf4")
    device: str | None = opt(None, flag="--device",  # None: CUDA when available
                             help="cpu, cuda, cuda:1 (default: cuda if available)")
    # 32 rows keep a 16 GB GPU busy at 2k-token budgets; 0 = auto (fits free GPU memory).
    batch_size: int = opt(32, flag="--batch-size",
                          help="rows decoded together, or 'auto' (fits free GPU memory; 16 on "
                          "CPU); halved on CUDA OOM")
    # auto: CUDA graphs over a static cache on CUDA bf16/fp32, a growing cache elsewhere; a
    # failed compile or capture warns once and continues eagerly.
    kv_layout: str = opt("auto", flag="--kv-layout", choices=KV_LAYOUTS,
                         help="KV cache: auto (static cache + CUDA graphs on CUDA bf16/fp32, "
                         "growing elsewhere), static (static cache everywhere, compiled where "
                         "CUDA graphs work) or growing (never compiled); a failed compile warns "
                         "once and continues eagerly")
    # None: the whole model. Results of a cut model carry "-L{n}" in their file names.
    num_layers: int | None = opt(None, flag="--num-layers",
                                 help="keep only the first L decoder layers (then the final "
                                 "norm and LM head); default: all")
    # hf: the project's decode loop, the reference. vllm: same greedy tokens, faster at scale;
    # it needs `bash scripts/setup_vllm.sh` and cannot run force-continue, power sampling or
    # anything that reads hidden states (those stay on hf).
    engine: str = opt("hf", flag="--engine", choices=ENGINES,
                      help="generation engine: hf (built in) or vllm (install with "
                      "scripts/setup_vllm.sh; greedy tokens match hf, sampled ones do not)")
    # The vLLM engine's memory and parallelism (the HF engine ignores them). 0.9 is vLLM's own
    # default: weights + KV cache may take 90 % of the GPU.
    gpu_memory_utilization: float = opt(0.9, flag="--gpu-memory-utilization",
                                        help="vllm: share of GPU memory for weights and KV "
                                        "cache")
    # None: the run's largest budget + the answer tokens + a 2048-token prompt margin, capped
    # by the model's limit (a model's own 32k default would reserve far more KV cache).
    max_model_len: int | None = opt(None, flag="--max-model-len",
                                    help="vllm: longest prompt + generation (default: largest "
                                    "budget + answer tokens + 2048, capped by the model)")
    # vLLM's CPU backend allocates its KV cache up front (VLLM_CPU_KVCACHE_SPACE, used only when
    # that variable is unset); 4 GiB holds ~90k SmolLM2 tokens in fp32.
    cpu_kv_space_gib: float = opt(4.0, flag="--cpu-kv-space-gib",
                                  help="vllm on CPU: KV cache size in GiB (when "
                                  "VLLM_CPU_KVCACHE_SPACE is unset)")
    # GPUs one vLLM engine spreads a model over; 1 = one GPU per engine (shards scale out).
    tensor_parallel_size: int = opt(1, flag="--tensor-parallel-size",
                                    help="vllm: GPUs one engine splits the model over")


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
                                  "generated sets)")


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
class AnnotationConfig:
    # None: prepare takes the keys of `samples` that have phase-1 results; analyze every TSV.
    budgets: tuple[int, ...] | None = opt(None, flag="--annotate-budgets", local="--budgets",
                                          help="phase 2 budgets (default: prepare: the budgets "
                                          "of `samples` with phase-1 results; analyze: every TSV)")
    # Errors sampled per budget (spec: ~160 rows, 2-3 hours of labelling).
    samples: dict[int, int] = opt(help="errors sampled per budget (YAML only)",
                                  factory=lambda: {128: 30, 256: 30, 512: 50, 1024: 50})
    per_budget: int | None = opt(None, flag="--per-budget",  # None: `samples`
                                 help="errors sampled per budget (default: the config's counts)")
    auto_annotate: bool = opt(False, flag="--auto-annotate",  # labels are a person's job
                              help="fill missing labels from the suggestions (annotator=auto)")
    force: bool = opt(False, local="--force",  # never overwrite human labels unasked
                      help="regenerate TSVs that hold labels (a timestamped backup is kept)")


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
class StatisticsConfig:
    bootstrap_resamples: int = opt(2000, flag="--bootstrap-resamples",  # CI error < 1 pp
                                   help="bootstrap resamples for every CI")
    # Plateau criterion: a step counts as flat when its CI lies within +-min_effect.
    min_effect: float = opt(0.02, flag="--min-effect",
                            help="plateau criterion: largest accuracy change that still counts "
                            "as flat, as a fraction (0.02 = 2 pp)")
    alpha: float = opt(0.05, help="significance level of the paired tests")  # the usual 5 %
    confidence: float = opt(0.95, help="confidence level of every interval")  # the usual 95 %
    top_steepest: int = opt(3, help="steepest cliff windows listed")  # the spec shows three
    # Each resample refits the breakpoint profile; 200 keeps the fits of a run to seconds on CPU.
    fit_bootstrap_resamples: int = opt(200, flag="--fit-bootstrap-resamples",
                                       help="bootstrap resamples (over problems) of the curve "
                                       "fits' breakpoint CI")
    top_emergent: int = opt(10, help="most emergent problems listed per run")  # a readable list


@dataclass(frozen=True)
class FigureConfig:
    models: tuple[str, ...] | None = opt(None, flag="--models",  # None: every model with results
                                         help="models overlaid in figure 1 (default: every "
                                         "model with phase-1 results); with --datasets, the "
                                         "grid's models (NAME or NAME@PRECISION)")
    formats: tuple[str, ...] = opt(("png", "pdf"), flag="--format",  # raster + vector for papers
                                   choices=("png", "pdf"), help="figure file formats")


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
    data: DataConfig = field(default_factory=DataConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    forcing: ForcingConfig = field(default_factory=ForcingConfig)
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
