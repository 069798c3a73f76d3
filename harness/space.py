"""A sweep's `space` as an Optuna define-by-run function, and the samplers by name.

Bounds may name earlier parameters (K <= M): the define-by-run form resolves them per trial,
so every sampled configuration respects them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna

from harness.spec import Campaign, ParamSpec, grid_values


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
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            continue
        low = values[p.low] if isinstance(p.low, str) else p.low
        high = values[p.high] if isinstance(p.high, str) else p.high
        if p.type == "int":
            values[p.name] = trial.suggest_int(p.name, int(low), int(high), step=int(p.step or 1), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, float(low), float(high), step=p.step, log=p.log)
    return values


def trial_distributions(params: tuple[ParamSpec, ...], values: dict[str, Any]) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distribution each parameter was drawn from in one trial (bounds resolved by its values)."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in params:
        if p.type == "categorical":
            out[p.name] = optuna.distributions.CategoricalDistribution(list(p.choices))
            continue
        low = values[p.low] if isinstance(p.low, str) else p.low
        high = values[p.high] if isinstance(p.high, str) else p.high
        if p.type == "int":
            out[p.name] = optuna.distributions.IntDistribution(int(low), int(high), log=p.log, step=int(p.step or 1))
        else:
            out[p.name] = optuna.distributions.FloatDistribution(float(low), float(high), log=p.log, step=p.step)
    return out


def study_from_records(
    params: tuple[ParamSpec, ...],
    objectives: list[tuple[str, str]],
    trials: list[dict[str, Any]],
    storage: optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
) -> optuna.Study:
    """An Optuna study rebuilt from trial records (finished trials COMPLETE, pruned PRUNED,
    others FAIL), for importance analysis and for the journal that optuna-dashboard opens.

    `trials` items hold each parameter's value under its name plus the objective metrics;
    `objectives` is [(metric, "min"|"max"), ...].
    """
    directions = ["minimize" if mode == "min" else "maximize" for _, mode in objectives]
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=False)
    for record in trials:
        values = {p.name: record[p.name] for p in params}
        scores = [record.get(metric) for metric, _ in objectives]
        finished = record.get("status") == "ok" and all(v is not None and np.isfinite(v) for v in scores)
        state = optuna.trial.TrialState.COMPLETE if finished else (
            optuna.trial.TrialState.PRUNED if record.get("status") == "pruned" else optuna.trial.TrialState.FAIL
        )
        study.add_trial(
            optuna.trial.create_trial(
                params=values,
                distributions=trial_distributions(params, values),
                values=[float(v) for v in scores] if finished else None,
                state=state,
                user_attrs={"trial_id": record.get("trial_id", ""), "status": record.get("status", "")},
            )
        )
    return study


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
