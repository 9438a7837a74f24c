"""Command-line plumbing: flags derived from the StudyConfig fields, YAML, and the error exit.

No script declares a config flag itself: it names the config sections (or single fields) it
shows, and ``config_parser`` builds the flags from the fields' metadata. A flag's default is the
field's default; only flags the user gave override the YAML file (``--config``), which overrides
the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import utils
from config import DATASETS, MODEL_SECTIONS, StudyConfig, from_mapping, load_yaml, nest
from study import shards
from study.config_mapping import field_type, fields_of
from study.data import subsets
from study.data.problems import is_local_dataset
from study.errors import USER_ERROR_EXIT, ConfigError, UserError
from study.strategies import reasoning

# Errors a user can cause and fix: one line on stderr and exit code 2. Anything else is a bug.
USER_ERRORS = (UserError, utils.ModelLoadError)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (exit 2), not usage + message."""

    def error(self, message: str) -> typing.NoReturn:  # type: ignore[override]
        self.exit(USER_ERROR_EXIT, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """0 or more (a count of retries)."""
    return 0 if text.strip() == "0" else positive_int(text)


def batch_size(text: str) -> int:
    """A positive integer, or 'auto' (0): sized from free GPU memory (16 on CPU)."""
    return 0 if text == "auto" else positive_int(text)


def _bounded_float(low: float, high: float | None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value
    return parse


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, VALUE); VALUE read as a JSON scalar (true, 3, 0.5, "x", null),
    else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value if value is None or isinstance(value, (bool, int, float, str)) \
        else raw


class KeyValues(argparse.Action):
    """``--flag K=V K2=V2`` -> {"K": V, "K2": V2} (a mapping field)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, dict(values))


probability = _bounded_float(0.0, 1.0)
non_negative_float = _bounded_float(0.0, None)
# Fields whose values need more than their type says (the rest: ints > 0, any float).
_SPECIAL_TYPES: dict[str, Callable[[str], Any]] = {
    "seed": int, "model.batch_size": batch_size, "generation.temperature": non_negative_float,
    "phase1b.temperature": non_negative_float, "generation.top_p": probability,
    "phase1b.top_p": probability, "statistics.min_effect": probability,
    "vllm.gpu_memory_utilization": probability, "vllm.cpu_kv_space_gib": non_negative_float,
    "openai.max_retries": non_negative_int, "openai.request_timeout": _bounded_float(0.001, None),
}
_SPECIAL_TYPES["data.subset_seed"] = int  # any integer is a seed (0 included)


def _field_paths(items: Iterable[str]) -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted path, owning class, field) of each named section's or single field's fields."""
    sections = fields_of(StudyConfig)
    out = []
    # "model" shows the model's section and each engine's own (hf, vllm, openai)
    items = [name for item in items for name in (MODEL_SECTIONS if item == "model" else [item])]
    for item in items:
        head, _, leaf = item.partition(".")
        hint = field_type(StudyConfig, head)
        if not dataclasses.is_dataclass(hint):
            out.append((head, StudyConfig, sections[head]))
            continue
        for name, f in fields_of(hint).items():
            if not leaf or leaf == name:
                out.append((f"{head}.{name}", hint, f))
    return out


def _default_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return str(value)


def config_parser(prog: str, doc: str, show: Sequence[str], own: str | None = None,
                  epilog: str | None = None) -> Parser:
    """A parser with ``--config`` and a flag for each field of the sections in ``show``.

    ``show`` names sections ("model") or fields ("model.name", "seed"); fields of the section
    ``own`` also answer to their ``local`` name (``--budgets``). The parsed namespace holds only
    the flags the user gave (as dotted field paths), so a YAML file is not overridden by defaults.
    """
    parser = Parser(prog=prog, description=doc.split("\n\n")[0], epilog=epilog,
                    argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, metavar="FILE.yaml",
                        help="load the study config from a YAML file (flags still win)")
    defaults = StudyConfig()
    for path, cls, f in _field_paths(show):
        meta = f.metadata
        names = [n for n in ((meta.get("local") if path.startswith(f"{own}.") else None),
                             meta.get("flag")) if n]
        if not names:
            continue
        default = _lookup(defaults, path)
        shown = "" if "default" in meta["help"] else f" (default: {_default_text(default)})"
        metavar = ("B" if f.name == "budgets" else
                   "{" + ",".join(meta["choices"]) + "}" if meta.get("choices") else
                   names[-1].lstrip("-").replace("-", "_").upper())
        kwargs: dict[str, Any] = {"dest": path, "help": meta["help"] + shown, "metavar": metavar}
        hint = field_type(cls, f.name)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if typing.get_origin(hint) is not tuple and args else hint
        if typing.get_origin(hint) is dict:  # a mapping: KEY=VALUE pairs
            kwargs.update(nargs="+", type=key_value, action=KeyValues, metavar="KEY=VALUE")
        elif base is bool:
            kwargs["action"] = "store_true"
            kwargs["help"] = meta["help"]
            del kwargs["metavar"]
        elif typing.get_origin(hint) is tuple or (args and typing.get_origin(args[0]) is tuple):
            inner = typing.get_args(hint if typing.get_origin(hint) is tuple else args[0])[0]
            kwargs.update(nargs="+", type=positive_int if inner is int else inner,
                          choices=meta.get("choices"))
        else:
            kwargs["type"] = _SPECIAL_TYPES.get(path) or {int: positive_int}.get(base, base)
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
        parser.add_argument(*dict.fromkeys(names), **kwargs)
    return parser


def _lookup(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def config_from_args(args: argparse.Namespace, base: StudyConfig | None = None) -> StudyConfig:
    """Defaults < ``base`` (a preset) < ``--config`` YAML < the flags given."""
    cfg = base if base is not None else StudyConfig()
    given = vars(args)
    if given.get("config") is not None:
        cfg = load_yaml(given["config"], base=cfg)
    flags = {k: v for k, v in given.items() if k in _ALL_PATHS}
    cfg = from_mapping(nest(flags), base=cfg, source="command line")
    validate(cfg)
    return cfg


_ALL_PATHS = {p for p, _, _ in _field_paths(f.name for f in dataclasses.fields(StudyConfig))}


def validate(cfg: StudyConfig) -> None:
    """Checks no single field can make: model and dataset names, budgets sorted and unique."""
    utils.resolve_model(cfg.model.name)  # ModelLoadError for an unknown alias or path
    utils.check_engine(cfg.model.engine)  # --engine vllm without vLLM: before anything runs
    dataset = cfg.data.dataset
    if dataset not in DATASETS and not is_local_dataset(dataset):
        raise ConfigError(f"--dataset {dataset!r}: unknown dataset; use one of "
                          f"{', '.join(DATASETS)} or a local "
                          ".jsonl/.json/.csv/.parquet file")
    if is_local_dataset(dataset) and not Path(dataset).exists():
        raise ConfigError(f"--dataset {dataset}: file not found")
    shards.check(cfg)  # --shard i/n well formed, not with --merge
    # --problem-range etc.; phase 1b's own problem count also sizes a seeded subset
    subsets.check(subsets.subset_of(cfg.data), cfg.data.num_samples or cfg.phase1b.num_samples)
    reasoning.check(cfg)  # --thinking-markers START END, or none
    if cfg.data.answer_kind != "numeric" and not is_local_dataset(dataset):
        raise ConfigError(f"--answer-kind {cfg.data.answer_kind}: only for a local --dataset "
                          f"file; {dataset} declares its own answer kind")


def run_command(parser: Parser, argv: Sequence[str] | None,
                body: Callable[[StudyConfig], Any], base: StudyConfig | None = None) -> int:
    """Parse flags into a config and run ``body``; a user error ends as one line, exit 2.

    ``body`` returns an exit code, or anything else (a summary) for success.
    """
    args = parser.parse_args(argv)
    try:
        result = body(config_from_args(args, base))
    except USER_ERRORS as exc:
        return fail(str(exc))
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def fail(message: str) -> int:
    """Print one clear error line and return the user-error exit code."""
    print(f"error: {message}", file=sys.stderr)
    return USER_ERROR_EXIT
