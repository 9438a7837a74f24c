"""How mappings (YAML files, flags, dotted overrides) land on the config's dataclasses.

Generic over frozen dataclass trees: values are coerced to each field's annotated type, unknown
keys and wrong types are ``ConfigError``s naming the source and the dotted key, ``choices`` in a
field's metadata are enforced. ``config.py`` holds the tree itself and its two entry points
(``from_mapping``, ``load_yaml``); ``opt`` declares a field of it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from study.errors import ConfigError


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


def plain(value: Any) -> Any:
    """JSON-ready: paths as strings, tuples as lists (recursively)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"model.name": x}`` -> ``{"model": {"name": x}}`` (dotted keys as a nested mapping)."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def fields_of(section: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(section)}


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of a dataclass field (``from __future__`` makes them strings)."""
    return typing.get_type_hints(cls)[name]


def coerce(value: Any, hint: Any, where: str) -> Any:
    """A YAML or flag value as the field's type; ConfigError naming ``where`` otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(v, args[0], where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {coerce(k, args[0], where): coerce(v, args[1], where) for k, v in value.items()}
    if hint is Path:
        return Path(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint in (int, float, str):
        try:
            if hint is int and (isinstance(value, bool) or float(value) != int(value)):
                raise ValueError
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from None
    return value


def apply_mapping(data: dict[str, Any], base: Any, source: str = "config",
                  prefix: str = "") -> Any:
    """The dataclass ``base`` with the nested ``data`` applied; unknown keys and wrongly typed
    values raise ConfigError naming ``source`` and the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'} must be a mapping")
    cls = type(base)
    known = fields_of(cls)
    changes: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{source}: {prefix}{key}"
        if key not in known:
            hint = ", ".join(sorted(known))
            raise ConfigError(f"{where}: unknown key (known here: {hint})")
        hint = field_type(cls, key)
        if dataclasses.is_dataclass(hint):
            changes[key] = apply_mapping(value, getattr(base, key), source, f"{prefix}{key}.")
        else:
            changes[key] = coerce(value, hint, where)
            if key == "budgets" and changes[key] is not None:  # a grid: sorted, no repeats
                changes[key] = tuple(sorted(set(changes[key])))
            choices = known[key].metadata.get("choices")
            values = changes[key] if isinstance(changes[key], tuple) else (changes[key],)
            if choices and changes[key] is not None and any(v not in choices for v in values):
                raise ConfigError(f"{where}: {changes[key]!r} is not one of {', '.join(choices)}")
    return dataclasses.replace(base, **changes)


def read_yaml(path: Path) -> dict:
    """The mapping in a YAML file; ConfigError naming the file (and line) otherwise."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from None
