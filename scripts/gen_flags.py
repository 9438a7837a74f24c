"""Write docs/flags.md from the entry scripts' argparse parsers and the StudyConfig tree.

    python scripts/gen_flags.py           # (re)write docs/flags.md
    python scripts/gen_flags.py --check   # exit 1 when docs/flags.md differs from a fresh one

One table per entry script (every flag: name, config key, value, default, help), then one table
of every config key (dotted YAML key, type, default, flags, help and the comment beside the
field in config.py). The output depends only on the code: no paths of this machine, no dates.
Nothing here imports torch (the entry scripts are torch-free at import).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import io
import json
import sys
import textwrap
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "flags.md"
COMMAND = "python scripts/gen_flags.py"
# Every entry script, in the order a study runs them.
SCRIPTS = ("run_all", "phase1_main", "phase1b_stochastic", "phase2_prepare", "phase2_annotate",
           "phase2_analyze", "phase3_cliff", "phase3_structure", "phase4_compute", "phase_depth",
           "phase_lens", "visualize", "compare")

if str(REPO) not in sys.path:  # run as a script from anywhere: the entry modules live at the top
    sys.path.insert(0, str(REPO))


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__("parser captured")
        self.parser = parser


def parser_of(module: Any) -> argparse.ArgumentParser:
    """A script's parser: its module-level ``PARSER``, its ``build_parser()``, or else the one
    its ``main()`` builds (stopped at its first ``parse_args``, before anything runs)."""
    parser = getattr(module, "PARSER", None)
    if isinstance(parser, argparse.ArgumentParser):
        return parser
    if callable(getattr(module, "build_parser", None)):
        return module.build_parser()

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        module.main([])
    except _Captured as captured:
        return captured.parser
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    raise RuntimeError(f"{module.__name__}: no PARSER, build_parser() or parse_args in main()")


# ---------------------------------------------------------------- the config tree

def config_leaves() -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted key, owning dataclass, field) of every leaf of StudyConfig, in source order."""
    from config import StudyConfig
    from study.config_mapping import field_type

    out: list[tuple[str, type, dataclasses.Field]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            hint = field_type(cls, f.name)
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{f.name}.")
            else:
                out.append((f"{prefix}{f.name}", cls, f))

    walk(StudyConfig, "")
    return out


def config_defaults() -> dict[str, Any]:
    from config import StudyConfig

    values: dict[str, Any] = {}
    defaults = StudyConfig()
    for key, _, _ in config_leaves():
        value: Any = defaults
        for part in key.split("."):
            value = getattr(value, part)
        values[key] = value
    return values


def field_comments(cls: type) -> dict[str, str]:
    """The ``#`` comments of each field of ``cls`` in its source: the comment lines right above
    the field and those on its own lines."""
    source = textwrap.dedent(inspect.getsource(cls))
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    out: dict[str, str] = {}
    previous_end = body.lineno
    for node in body.body:
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(previous_end + 1, end + 1)
            text = " ".join(comments[n] for n in lines if n in comments)
            if text:
                out[node.target.id] = text
        previous_end = end
    return out


# ---------------------------------------------------------------- formatting

def _relative(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(REPO).as_posix() + "/"
    except ValueError:
        return Path(path).as_posix()


def value_text(value: Any) -> str:
    """A default as it would be typed: paths relative to the repository, lists space-separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Path):
        return f"`{_relative(value)}`"
    if isinstance(value, (tuple, list)):
        return "`" + " ".join(str(v) for v in value) + "`"
    if isinstance(value, dict):
        return "`" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "`" if value else "—"
    if isinstance(value, str) and (not value or any(not c.isprintable() or c in " `"
                                                    for c in value)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def help_text(text: str | None) -> str:
    """One line of prose: argparse's ``%%`` unescaped, ``<`` kept from reading as HTML."""
    return " ".join((text or "").replace("%%", "%").replace("<", "&lt;").split())


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def type_text(action: argparse.Action) -> str:
    """What a flag takes: a switch, a kind of value (one or more), or a list of choices."""
    from study import cli

    if action.nargs == 0:
        return "switch"
    names = {cli.positive_int: "integer > 0", cli.batch_size: "integer > 0 or `auto`",
             cli.probability: "number in [0, 1]", cli.non_negative_float: "number ≥ 0",
             cli.key_value: "`KEY=VALUE`",
             int: "integer", float: "number", str: "text", Path: "path", None: "text"}
    kind = names.get(action.type, getattr(action.type, "__name__", str(action.type)))
    if action.choices:
        kind = ", ".join(f"`{c}`" for c in action.choices)
    if action.nargs == "+":
        return f"one or more: {kind}" if action.choices else f"{kind}, one or more"
    if action.nargs == "*":
        return f"zero or more: {kind}" if action.choices else f"{kind}, zero or more"
    return f"one of {kind}" if action.choices else kind


def default_text(action: argparse.Action, defaults: dict[str, Any]) -> str:
    if action.dest in defaults:
        return value_text(defaults[action.dest])
    if action.default in (None, argparse.SUPPRESS):
        return "—"
    if action.nargs == 0 and action.default is False:
        return "off"
    return value_text(action.default)


def action_help(action: argparse.Action, fields: dict[str, dataclasses.Field]) -> str:
    """A config flag's help is its field's (the parser appends the default, shown apart here)."""
    if action.dest in fields:
        return help_text(fields[action.dest].metadata["help"])
    return help_text(action.help)


# ---------------------------------------------------------------- sections

def script_section(name: str, parser: argparse.ArgumentParser, defaults: dict[str, Any],
                   fields: dict[str, dataclasses.Field]) -> list[str]:
    lines = [f"## `{name}.py`", "", help_text(parser.description), ""]
    header = ("flag", "config key", "takes", "default", "help")

    def rows(actions: list[argparse.Action]) -> list[Sequence[str]]:
        out = []
        for action in actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            key = f"`{action.dest}`" if action.dest in fields else "—"
            out.append((", ".join(f"`{o}`" for o in action.option_strings), key,
                        type_text(action), default_text(action, defaults),
                        action_help(action, fields)))
        return out

    groups = [g for g in parser._action_groups if g not in (parser._positionals,
                                                            parser._optionals)]
    lines += table(header, rows(parser._optionals._group_actions))
    for group in groups:
        lines += ["", f"{(group.title or '').capitalize()}:", ""]
        lines += table(header, rows(group._group_actions))
    return lines + [""]


def config_section(parsers: dict[str, argparse.ArgumentParser],
                   defaults: dict[str, Any]) -> list[str]:
    """Every config key, with the names each script gives its flag."""
    local: dict[str, dict[str, list[str]]] = {}  # key -> {"--budgets": ["phase3_cliff.py"]}
    leaves = config_leaves()
    metas = {key: f.metadata for key, _, f in leaves}
    for name, parser in parsers.items():
        for action in parser._actions:
            if action.dest not in metas:
                continue
            for option in action.option_strings:
                if option != metas[action.dest].get("flag"):
                    scripts = local.setdefault(action.dest, {}).setdefault(option, [])
                    scripts.append(f"`{name}.py`")
    comments: dict[type, dict[str, str]] = {}
    rows = []
    for key, cls, f in leaves:
        if cls not in comments:
            comments[cls] = field_comments(cls)
        flags = [f"`{f.metadata['flag']}`"] if f.metadata.get("flag") else []
        flags += [f"`{option}` in {', '.join(scripts)}"
                  for option, scripts in local.get(key, {}).items()]
        choices = f.metadata.get("choices")
        kind = f"`{f.type}`" + (": " + ", ".join(f"`{c}`" for c in choices) if choices else "")
        rows.append((f"`{key}`", kind, value_text(defaults[key]),
                     "; ".join(flags) or "YAML only", help_text(f.metadata["help"]),
                     help_text(comments[cls].get(f.name, ""))))
    lines = ["## Config keys (`config.StudyConfig`)", "",
             "Every key of the config tree, as a dotted YAML key (`phase1.budgets` is "
             "`phase1: {budgets: [...]}` in a `--config` file). *Flags* lists the flag that sets "
             "it in `run_all.py` and every script that shows its section, then the short names "
             "a script uses for its own section. *Note* is the comment beside the field in "
             "`config.py`.", ""]
    lines += table(("key", "type", "default", "flags", "help", "note"), rows)
    return lines + [""]


def generate() -> str:
    """The text of docs/flags.md, fresh from the code."""
    parsers = {name: parser_of(importlib.import_module(name)) for name in SCRIPTS}
    defaults = config_defaults()
    fields = {key: f for key, _, f in config_leaves()}
    lines = [
        "<!-- Generated by scripts/gen_flags.py from the argparse parsers and config.py: "
        f"do not edit by hand; run `{COMMAND}`. -->",
        "",
        "# Flags and config keys",
        "",
        "Every flag of every entry script, then every key of the config tree. Config flags are "
        "derived from `config.StudyConfig` (`study.cli.config_parser`), so a flag has the same "
        "name and meaning in every script that takes it; the *config key* column names the "
        "field it sets. Precedence: defaults < `--demo` preset < `--config FILE.yaml` < flags. "
        "Every script also takes `-h`/`--help`. How the config, YAML files, models, datasets "
        "and grading work: [config.md](config.md).",
        "",
        "Scripts: " + ", ".join(f"[`{n}.py`](#{n}py)" for n in SCRIPTS)
        + ", [config keys](#config-keys-configstudyconfig).",
        "",
    ]
    for name, parser in parsers.items():
        lines += script_section(name, parser, defaults, fields)
    lines += config_section(parsers, defaults)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the file differs from a fresh generation")
    parser.add_argument("--output", type=Path, default=OUTPUT,
                        help="file to write or check (default: docs/flags.md)")
    args = parser.parse_args(argv)
    text = generate()
    shown = _relative(args.output).rstrip("/")
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            state = "is missing" if current is None else "is out of date"
            print(f"{shown} {state}: run `{COMMAND}` and commit the result", file=sys.stderr)
            return 1
        print(f"{shown} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
