"""Hyperparameter importance: Optuna's evaluators run over the campaign's records.

An in-memory Optuna study is rebuilt from the finished trials of each dataset, with the
distributions of the spec's space (parameter-named bounds resolved to the widest range, and
widened to the values the records hold), and scored with fANOVA (Optuna's default evaluator,
built on scikit-learn's random forests).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import BaseImportanceEvaluator, FanovaImportanceEvaluator

from harness.records import atomic_write_text
from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import Objective, column_label
from harness.report.space import Hyperparameter, canonical, searched_space
from harness.report.style import COLORS, MAX_PANELS_PER_ROW, PANEL_SIZE, bottom_legend, hide_unused, panel_grid, save_figure

MIN_TRIALS = 3


def importance_evaluator() -> tuple[BaseImportanceEvaluator, str, str]:
    """fANOVA (seeded, so a report is reproducible), its short name and where it comes from."""
    return FanovaImportanceEvaluator(seed=0), "fANOVA", "optuna.importance.FanovaImportanceEvaluator"


def distribution(param: Hyperparameter, values: pd.Series) -> BaseDistribution | None:
    """The Optuna distribution of `param`, widened to `values`; None when only one value occurs."""
    if param.kind == "categorical":
        seen = list(dict.fromkeys(values.map(canonical)))
        choices = list(dict.fromkeys([*param.choices, *seen]))
        return CategoricalDistribution(choices) if len(seen) > 1 else None
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.nunique() < 2:
        return None
    low = min(numbers.min(), param.low if param.low is not None else math.inf)
    high = max(numbers.max(), param.high if param.high is not None else -math.inf)
    log = param.log and low > 0
    if param.kind == "int":
        return IntDistribution(int(math.floor(low)), int(math.ceil(high)), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def rebuild_study(trials: pd.DataFrame, params: list[Hyperparameter], objective: Objective) -> optuna.Study:
    """An in-memory single-objective study holding `trials` (finished, with the objective)."""
    trials = trials[np.isfinite(trials[objective.metric])]
    distributions = {}
    for param in params:
        present = trials[param.column].dropna()
        found = distribution(param, present) if len(present) == len(trials) else None
        if found is not None:
            distributions[param.name] = (param, found)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per dataset
    try:
        study = optuna.create_study(direction="maximize" if objective.maximise else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials([
        optuna.trial.create_trial(
            params={name: _internal_value(dist, record[param.column]) for name, (param, dist) in distributions.items()},
            distributions={name: dist for name, (_, dist) in distributions.items()},
            value=float(record[objective.metric]),
        )
        for record in trials.to_dict("records")
    ])
    return study


def _internal_value(dist: BaseDistribution, value: object) -> object:
    """A record's value in the type its distribution expects (categorical choices are canonical text)."""
    if isinstance(dist, CategoricalDistribution):
        return canonical(value)
    return int(round(float(value))) if isinstance(dist, IntDistribution) else float(value)


def importance_figure(ctx: ReportContext) -> list[Entry]:
    """A bar chart of hyperparameter importance per dataset (one bar colour per objective) + its CSV."""
    campaign = ctx.campaign
    params = [p for p in searched_space(campaign)[0] if p.column in campaign.trials]
    if not params:
        raise Skipped("no searched hyperparameter appears in trials.csv")
    objectives = [o for o in campaign.objectives() if o.metric in campaign.ok]
    evaluator, evaluator_name, evaluator_source = importance_evaluator()
    rows = []
    for dataset in campaign.datasets():
        trials = campaign.ok[campaign.ok["dataset"] == dataset]
        for objective in objectives:
            rows += _importances(ctx, trials, params, objective, evaluator, dataset)
    if not rows:
        raise Skipped(f"no dataset has {MIN_TRIALS} finished trials with a hyperparameter that varies")
    table = pd.DataFrame(rows)
    atomic_write_text(ctx.out / "importance.csv", table.to_csv(index=False))
    names = save_figure(_bar_chart(table, evaluator_name), ctx.out, "importance")
    return [Entry("figures", "Hyperparameter importance", (*names, "importance.csv"),
                  f"relative importance of each hyperparameter for each objective (sums to 1), per dataset, over the "
                  f"finished trials; evaluator: {evaluator_name} ({evaluator_source})")]


def _importances(ctx: ReportContext, trials: pd.DataFrame, params: list[Hyperparameter], objective: Objective,
                 evaluator: BaseImportanceEvaluator, dataset: str) -> list[dict]:
    """Rows (dataset, objective, parameter, importance) for one dataset and objective, or [] with a note."""
    study = rebuild_study(trials, params, objective)
    if len(study.trials) < MIN_TRIALS or not study.trials[0].params:
        ctx.note(f"importance of {objective.metric} on {dataset}: {len(study.trials)} finished trial(s) "
                 f"with a hyperparameter that varies (needs {MIN_TRIALS})")
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            scores = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as error:
            ctx.note(f"importance of {objective.metric} on {dataset}: {error}")
            return []
    return [{"dataset": dataset, "objective": objective.metric, "parameter": name, "importance": float(score)}
            for name, score in scores.items()]


def _bar_chart(table: pd.DataFrame, evaluator_name: str) -> Figure:
    """Horizontal bars: a panel per dataset, parameters sorted by importance, a colour per objective."""
    datasets = list(dict.fromkeys(table["dataset"]))
    objectives = list(dict.fromkeys(table["objective"]))
    parameters = table.groupby("parameter")["importance"].mean().sort_values().index.tolist()
    ncols = min(len(datasets), MAX_PANELS_PER_ROW)
    nrows = math.ceil(len(datasets) / ncols)
    height = max(PANEL_SIZE[1], 0.3 * len(parameters) * len(objectives) + 0.8)
    figure, axes = panel_grid(nrows, ncols, extra_height=(height - PANEL_SIZE[1]) * nrows, sharex=True)
    bar_height = 0.8 / len(objectives)
    for ax, dataset in zip(axes.flat, datasets):
        scores = table[table["dataset"] == dataset].pivot(index="parameter", columns="objective", values="importance")
        scores = scores.reindex(index=parameters, columns=objectives).fillna(0.0)
        for k, objective in enumerate(objectives):
            offsets = np.arange(len(parameters)) + (k - (len(objectives) - 1) / 2) * bar_height
            ax.barh(offsets, scores[objective], height=bar_height, color=COLORS[k], label=column_label(objective))
        ax.set_yticks(np.arange(len(parameters)), parameters)
        ax.set_title(dataset)
        ax.set_xlabel(f"importance ({evaluator_name}, sums to 1)")
        ax.grid(axis="y", visible=False)
    hide_unused(axes, len(datasets))
    bottom_legend(figure, *axes.flat[0].get_legend_handles_labels())
    return figure
