"""The searched hyperparameters of a sweep: read from the spec's `space`, or inferred from the
config columns that vary when the manifest has no space.

A bound may name another parameter (top_k high: num_experts); the report resolves it to the
widest range that parameter allows, since each trial saw its own bound.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.records import CONFIG_PREFIX
from harness.report.load import Campaign

# Config columns that vary across trials without being searched.
NOT_HYPERPARAMETERS = ("seed", "device", "variant")
# An inferred positive float range at least this wide (max / min) is shown on a log axis.
LOG_RANGE_RATIO = 100.0


@dataclass(frozen=True)
class Hyperparameter:
    """One searched setting: its kind ('float', 'int' or 'categorical'), range and choices."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()  # canonical labels (see `canonical`) of a categorical's choices

    @property
    def column(self) -> str:
        return CONFIG_PREFIX + self.name

    @property
    def ordered_choices(self) -> bool:
        """Whether a categorical's choices are all numbers (so a line may join them)."""
        return bool(self.choices) and all(_is_json(c) and _is_number(json.loads(c)) for c in self.choices)


def canonical(value: Any) -> str:
    """One spelling per value, shared by the spec's choices and the CSV's cells.

    Lists (stored as JSON text in trials.csv), numpy scalars and whole floats all compare equal
    to the spec's value once canonical: "[1, 3]" == canonical([1, 3]), canonical(32.0) == "32".
    """
    if isinstance(value, str):
        if not _is_json(value):
            return value
        value = json.loads(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value) if not isinstance(value, str) else value


def categorical_levels(param: Hyperparameter, values: pd.Series) -> tuple[pd.Series, list[str]]:
    """A categorical's values as canonical labels (None where missing) and the levels that occur:
    the spec's choices in its order, then any others in the order met."""
    labels = values.map(lambda v: None if pd.isna(v) else canonical(v))
    seen = list(dict.fromkeys(labels.dropna()))
    return labels, [c for c in param.choices if c in seen] + [c for c in seen if c not in param.choices]


def space_from_spec(space: Mapping[str, Any]) -> list[Hyperparameter]:
    """The spec's space as Hyperparameters, parameter-named bounds resolved to the widest range."""
    params = []
    for name, entry in space.items():
        if not isinstance(entry, Mapping):
            continue
        kind = str(entry.get("type", "float"))
        if kind == "categorical":
            choices = tuple(dict.fromkeys(canonical(c) for c in entry.get("choices") or ()))
            params.append(Hyperparameter(name, kind, choices=choices))
            continue
        low = _resolve_bound(space, name, "low", set())
        high = _resolve_bound(space, name, "high", set())
        log = bool(entry.get("log", False)) and low is not None and low > 0
        params.append(Hyperparameter(name, "int" if kind == "int" else "float", low, high, log))
    return params


def _resolve_bound(space: Mapping[str, Any], name: str, which: str, visiting: set[str]) -> float | None:
    """The numeric `which` ('low'/'high') bound of `name`, following bounds that name parameters."""
    entry = space.get(name)
    if not isinstance(entry, Mapping) or name in visiting:
        return None
    bound = entry.get(which)
    if isinstance(bound, str):
        return _resolve_bound(space, bound, which, visiting | {name})
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        return float(bound)
    choices = [c for c in entry.get("choices") or () if _is_number(c)]
    if choices:
        return float(min(choices) if which == "low" else max(choices))
    return None


def infer_space(trials: pd.DataFrame) -> list[Hyperparameter]:
    """The config columns that take more than one value over `trials`, as Hyperparameters."""
    params = []
    for column in trials.columns:
        name = column.removeprefix(CONFIG_PREFIX)
        if not column.startswith(CONFIG_PREFIX) or name in NOT_HYPERPARAMETERS:
            continue
        values = trials[column].dropna()
        if values.nunique() < 2:
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all() and not pd.api.types.is_bool_dtype(values):
            low, high = float(numbers.min()), float(numbers.max())
            whole = bool(np.all(np.mod(numbers, 1) == 0))
            log = not whole and low > 0 and high / low >= LOG_RANGE_RATIO
            params.append(Hyperparameter(name, "int" if whole else "float", low, high, log))
        else:
            params.append(Hyperparameter(name, "categorical", choices=tuple(dict.fromkeys(values.map(canonical)))))
    return params


def searched_space(campaign: Campaign) -> tuple[list[Hyperparameter], bool]:
    """A sweep's hyperparameters and whether they were inferred (the manifest has no space)."""
    space = campaign.spec.get("space")
    if isinstance(space, Mapping) and space:
        return space_from_spec(space), False
    return infer_space(campaign.ok), True


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
