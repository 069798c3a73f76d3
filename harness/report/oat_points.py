"""The numbers of a one-at-a-time sensitivity study (campaign kind "sensitivity"): each varied
parameter's values around the shared base point, per dataset, mean ± std over seeds.

The runner's records say which point a trial is: its cell is "<param>=<value> | <dataset> |
seed <s>" or "base | <dataset> | seed <s>", and its settings hold every resolved setting, so a
trial's value is config.<param> and each parameter's base value that of a base record. The base
point is trained once per dataset and seed and stands at the base value of every parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.records import CONFIG_PREFIX
from harness.report.load import Campaign, column_horizon
from harness.report.space import canonical
from harness.report.stats import per_seed

BASE = "base"
LOG_RATIO = 8.0  # positive values spanning at least about tenfold (max / min; 4..32 too) go on a log axis


def setting_label(cell: object) -> str:
    """The point a trial's cell names: 'base' or '<param>=<value>' ('' when it names none)."""
    return str(cell).split(" | ")[0].strip() if isinstance(cell, str) else ""


def varied_parameter(cell: object) -> str | None:
    """The parameter a trial varies; None for the base point (or a cell of another kind)."""
    label = setting_label(cell)
    return label.split("=", 1)[0].strip() if "=" in label else None


@dataclass(frozen=True)
class StudiedParameter:
    """One varied parameter: its values (canonical spelling, in axis order) and its base value."""

    name: str
    values: tuple[str, ...]
    base: str | None  # canonical spelling; None when no record or spec says it

    @property
    def column(self) -> str:
        return CONFIG_PREFIX + self.name

    @property
    def numbers(self) -> np.ndarray | None:
        """The values as numbers, or None when one of them is not a number (a categorical)."""
        numbers = pd.to_numeric(pd.Series(self.values, dtype=object), errors="coerce")
        return None if numbers.isna().any() else numbers.to_numpy(dtype=float)

    @property
    def log(self) -> bool:
        """Positive numbers spanning a ratio of at least LOG_RATIO: drawn on a log axis."""
        numbers = self.numbers
        if numbers is None or len(numbers) < 2 or numbers.min() <= 0:
            return False
        return numbers.max() / numbers.min() >= LOG_RATIO

    def positions(self) -> np.ndarray:
        """Where each value sits on the x axis: the number itself, or evenly spaced levels."""
        numbers = self.numbers
        return numbers if numbers is not None else np.arange(len(self.values), dtype=float)


def studied_parameters(campaign: Campaign) -> list[StudiedParameter]:
    """The spec's varied parameters (then any other the cells name), values in axis order,
    without the values the runner skipped (manifest 'skipped')."""
    vary = campaign.spec.get("vary")
    vary = vary if isinstance(vary, Mapping) else {}
    varied = campaign.trials["cell"].map(varied_parameter)
    skipped = skipped_values(campaign)
    params = []
    for name in dict.fromkeys([*map(str, vary), *varied.dropna()]):
        spec_values = vary.get(name) if isinstance(vary.get(name), list) else []
        column = CONFIG_PREFIX + name
        seen = campaign.trials.loc[varied == name, column] if column in campaign.trials else pd.Series(dtype=object)
        base = _base_value(campaign, name)
        values = [v for v in dict.fromkeys([*map(canonical, spec_values), *map(canonical, seen.dropna())])
                  if (name, v) not in skipped]
        if base is not None and base not in values:
            values.append(base)
        params.append(StudiedParameter(name, _axis_order(values), base))
    return params


def skipped_values(campaign: Campaign) -> set[tuple[str, str]]:
    """(parameter, canonical value) of every value the runner skipped (manifest 'skipped')."""
    entries = campaign.manifest.get("skipped")
    return {(str(e.get("parameter")), canonical(e.get("value"))) for e in entries or [] if isinstance(e, Mapping)}


def _base_value(campaign: Campaign, name: str) -> str | None:
    """A parameter's base value: a base record's setting, else the spec's `base` entry."""
    column = CONFIG_PREFIX + name
    base_trials = campaign.trials[campaign.trials["cell"].map(setting_label) == BASE]
    if column in base_trials and base_trials[column].notna().any():
        return canonical(base_trials[column].dropna().iloc[0])
    spec_base = campaign.spec.get("base")
    if isinstance(spec_base, Mapping) and spec_base.get(name) is not None:
        return canonical(spec_base[name])
    return None


def _axis_order(values: list[str]) -> tuple[str, ...]:
    """Numbers in increasing order; anything else as listed."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    if numbers.notna().all():
        return tuple(v for _, v in sorted(zip(numbers, values)))
    return tuple(values)


def study_points(campaign: Campaign, params: list[StudiedParameter],
                 columns: Callable[[str], Mapping[str, str]]) -> pd.DataFrame:
    """One row per (parameter, value, dataset, measure) over the finished trials.

    `columns(dataset)` gives the test columns shown for a dataset ({"MAE": ..., ...}). Columns:
    parameter, value (canonical), x (axis position), is_base, dataset, measure, column, horizon,
    n (seeds that finished), mean, std (sample std over seeds; NaN below two).
    """
    ok = campaign.ok
    labels = ok["cell"].map(setting_label)
    rows = []
    for param in params:
        at_value = ok[param.column].map(lambda v: None if _missing(v) else canonical(v)) if param.column in ok \
            else pd.Series(None, index=ok.index, dtype=object)
        varied = ok["cell"].map(varied_parameter) == param.name
        for value, x in zip(param.values, param.positions()):
            chosen = (varied & (at_value == value)) | ((labels == BASE) & (value == param.base))
            for dataset in campaign.datasets():
                trials = ok[chosen & (ok["dataset"] == dataset)]
                for measure, column in columns(dataset).items():
                    seeds = per_seed(trials, column)
                    rows.append({
                        "parameter": param.name, "value": value, "x": x, "is_base": value == param.base,
                        "dataset": dataset, "measure": measure, "column": column, "horizon": column_horizon(column),
                        "n": len(seeds), "mean": float(seeds.mean()) if len(seeds) else math.nan,
                        "std": float(seeds.std(ddof=1)) if len(seeds) >= 2 else math.nan,
                    })
    return pd.DataFrame(rows, columns=["parameter", "value", "x", "is_base", "dataset", "measure", "column",
                                       "horizon", "n", "mean", "std"])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
