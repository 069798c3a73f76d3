"""Typed hyperparameter dataclasses: build one from defaults plus overrides, with checks.

A config class is a plain `@dataclass` whose field annotations say the accepted types
(bool, int, float, str, Literal[...], tuple[int, ...], `X | None`, unions of these). It may
define `validate(self)`, which derives dependent fields and raises `ConfigError` naming the
setting at fault. Values arrive already parsed (from YAML or `--set k=v`); this module only
checks and converts them, it never evaluates strings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from models.base import ConfigError

C = TypeVar("C")


def field_names(config_cls: type) -> list[str]:
    """The names of a config dataclass's fields, in declaration order."""
    return [f.name for f in dataclasses.fields(config_cls)]


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in get_args(hint))
    if origin in (tuple, list):
        return f"list of {_describe(get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Check `value` against the annotation `hint`, converting where that is lossless.

    ints are accepted for floats, integral floats for ints, lists for tuples. Anything else
    that does not match raises ConfigError(name, ...).
    """
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in get_args(hint):
            try:
                return coerce(value, option, name)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in get_args(hint) and type(value) in {type(a) for a in get_args(hint)}:
            return value
    elif origin in (tuple, list):
        if isinstance(value, (list, tuple)):
            item = get_args(hint)[0]
            items = [coerce(v, item, name) for v in value]
            return tuple(items) if origin is tuple else items
    elif hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    raise ConfigError(name, f"expected {_describe(hint)}, got {value!r}")


def apply_overrides(config: C, overrides: Mapping[str, Any], owner: str) -> C:
    """Return a copy of `config` with `overrides` checked and applied.

    `owner` names what the fields belong to ("model stid") in the unknown-name error.
    """
    hints = get_type_hints(type(config))
    names = field_names(type(config))
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(key, f"unknown setting of {owner}; valid: {', '.join(names)}")
        changes[key] = coerce(value, hints[key], key)
    return dataclasses.replace(config, **changes)


def validated(config: C) -> C:
    """Run the config's own `validate()` (if it has one) and return it."""
    check = getattr(config, "validate", None)
    if check is not None:
        check()
    return config


def as_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a config, tuples turned into lists (for YAML/JSON records)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
