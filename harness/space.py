"""A sweep's `space` as an Optuna define-by-run function, and the samplers by name.

Bounds may name earlier parameters (K <= M): the define-by-run form resolves them per trial,
so every sampled configuration respects them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna

from harness.spec import Campaign, ParamSpec


class DefineByRun:
    """Callable Optuna space: suggests each parameter in file order, resolving named bounds.

    A class rather than a closure so that Ray Tune can pickle the searcher for --resume.
    `constants` are returned to Tune and merged into every trial's config.
    """

    def __init__(self, params: tuple[ParamSpec, ...], constants: dict[str, Any] | None = None):
        self.params = params
        self.constants = dict(constants or {})

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        return {**suggest(trial, self.params), **self.constants}


def suggest(trial: optuna.Trial, params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Sample every parameter of `params` from an Optuna trial."""
    values: dict[str, Any] = {}
    for p in params:
        if p.type == "categorical":
            choice = trial.suggest_categorical(p.name, [list(c) if isinstance(c, tuple) else c for c in p.choices])
            values[p.name] = choice
            continue
        low = values[p.low] if isinstance(p.low, str) else p.low
        high = values[p.high] if isinstance(p.high, str) else p.high
        if p.type == "int":
            values[p.name] = trial.suggest_int(p.name, int(low), int(high), step=int(p.step or 1), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, float(low), float(high), step=p.step, log=p.log)
    return values


def grid_values(params: tuple[ParamSpec, ...]) -> dict[str, list[Any]]:
    """Every value of every parameter, for the grid sampler (validated to be finite)."""
    grid: dict[str, list[Any]] = {}
    for p in params:
        if p.type == "categorical":
            grid[p.name] = list(p.choices)
        elif p.type == "int":
            grid[p.name] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
        else:
            grid[p.name] = [float(v) for v in np.arange(p.low, p.high + p.step / 2, p.step)]
    return grid


def grid_size(params: tuple[ParamSpec, ...]) -> int:
    """Number of points of the full grid."""
    return int(np.prod([len(v) for v in grid_values(params).values()]))


def make_sampler(campaign: Campaign) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a sweep names, seeded with search.seed."""
    seed = campaign.search_seed
    if campaign.sampler == "tpe":
        # multivariate + group: TPE that models the conditional space's dependencies jointly
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    if campaign.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if campaign.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if campaign.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.GridSampler(grid_values(campaign.space), seed=seed)
