"""Sensitivity figures (HEPHAESTUS Figure 3, LightST Figure 4): the test MAE against each
searched hyperparameter, one row of panels per dataset.

Discrete hyperparameters (categorical, or integers with few values) show the mean with a
std error bar over the trials (and seeds) at each value; continuous ones show every trial plus
a kernel-smoothed trend. Each figure holds one group: the discrete or the continuous ones, at
most four per figure. Other hyperparameters vary too, so each panel is a marginal view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import METRIC_DESCRIPTIONS, column_label
from harness.report.space import Hyperparameter, canonical, searched_space
from harness.report.stats import kernel_trend
from harness.report.style import MAX_PANELS_PER_ROW, bottom_legend, panel_grid, save_figure, shorten

MAX_DISCRETE_INTEGERS = 12  # an integer hyperparameter with more values is drawn as continuous
TREND_POINTS = 120
POINT_STYLE = {"s": 10, "color": "0.6", "alpha": 0.7, "linewidths": 0, "zorder": 1}
MEAN_STYLE = {"color": "#1f77b4", "marker": "o", "markersize": 4, "capsize": 3, "zorder": 3}
TREND_STYLE = {"color": "#d62728", "zorder": 3}


def sensitivity_figures(ctx: ReportContext) -> list[Entry]:
    """One figure per group of searched hyperparameters: rows are datasets, columns hyperparameters."""
    campaign = ctx.campaign
    params, inferred = searched_space(campaign)
    if inferred:
        ctx.note("the manifest has no search space: sensitivity and importance use the config columns that vary")
    absent = [p.name for p in params if p.column not in campaign.trials]
    if absent:
        ctx.note(f"sensitivity: trials.csv has no column for {', '.join(absent)}")
    params = [p for p in params if p.column in campaign.trials]
    if not params:
        raise Skipped("no searched hyperparameter appears in trials.csv")
    y_column = ctx.columns["MAE"]
    ok = campaign.ok[np.isfinite(campaign.ok[y_column])]
    if ok.empty:
        raise Skipped(f"no finished trial has {y_column}")
    datasets = [d for d in campaign.datasets() if (ok["dataset"] == d).any()]
    entries = []
    for number, group in enumerate(_groups(params, ok), start=1):
        figure, axes = panel_grid(len(datasets), len(group), sharey="row")
        for row, dataset in enumerate(datasets):
            trials = ok[ok["dataset"] == dataset]
            for col, param in enumerate(group):
                ax = axes[row, col]
                _plot_parameter(ax, trials, param, y_column)
                ax.set_xlabel(param.name + (" (log scale)" if param.log and param.kind != "categorical" else ""))
            axes[row, 0].set_ylabel(f"{dataset}\n{column_label(y_column, ctx.campaign.unit(dataset))}")
        bottom_legend(figure, _legend_handles(group, ok))
        names = save_figure(figure, ctx.out, f"sensitivity_{number}")
        entries.append(Entry(
            "figures", f"Sensitivity to {', '.join(p.name for p in group)}", names,
            f"test MAE ({METRIC_DESCRIPTIONS[ctx.metric]}) of {len(ok)} finished trials against "
            f"{', '.join(p.name for p in group)}, per dataset (marginal over the other hyperparameters)",
        ))
    return entries


def _is_discrete(param: Hyperparameter, trials: pd.DataFrame) -> bool:
    if param.kind == "categorical":
        return True
    return param.kind == "int" and trials[param.column].nunique() <= MAX_DISCRETE_INTEGERS


def _groups(params: list[Hyperparameter], trials: pd.DataFrame) -> list[list[Hyperparameter]]:
    """The discrete hyperparameters, then the continuous ones, in chunks of at most four."""
    groups = []
    for members in ([p for p in params if _is_discrete(p, trials)], [p for p in params if not _is_discrete(p, trials)]):
        groups += [members[i:i + MAX_PANELS_PER_ROW] for i in range(0, len(members), MAX_PANELS_PER_ROW)]
    return groups


def _plot_parameter(ax: Axes, trials: pd.DataFrame, param: Hyperparameter, y_column: str) -> None:
    """One panel: the metric of each trial against the hyperparameter's value."""
    if trials[param.column].isna().all():
        ax.text(0.5, 0.5, "no finished trial\nrecorded this setting", transform=ax.transAxes, ha="center", va="center")
        return
    if param.kind == "categorical":
        _plot_categorical(ax, trials, param, y_column)
        return
    x = pd.to_numeric(trials[param.column], errors="coerce")
    keep = x.notna()
    x, y = x[keep].to_numpy(dtype=float), trials.loc[keep, y_column].to_numpy(dtype=float)
    if param.log:
        ax.set_xscale("log")
    if _is_discrete(param, trials):
        values = np.unique(x)
        spacing = np.diff(values).min() if len(values) > 1 and not param.log else 0.0
        ax.scatter(x + _jitter(len(x)) * spacing, y, **POINT_STYLE)
        ax.errorbar(values, *_means_and_stds(x, y, values), **MEAN_STYLE)
        ax.set_xticks(values, [f"{v:g}" for v in values])
        return
    ax.scatter(x, y, **POINT_STYLE)
    scale = np.log10 if param.log else (lambda v: v)
    grid = np.linspace(scale(x.min()), scale(x.max()), TREND_POINTS)
    trend = kernel_trend(scale(x), y, grid)
    if trend is not None:
        ax.plot(10 ** grid if param.log else grid, trend, **TREND_STYLE)


def _plot_categorical(ax: Axes, trials: pd.DataFrame, param: Hyperparameter, y_column: str) -> None:
    """Equally spaced choices (in the spec's order); mean ± std joined by a line when numeric."""
    labels = trials[param.column].map(lambda v: None if pd.isna(v) else canonical(v))
    order = [c for c in param.choices if (labels == c).any()] + [c for c in dict.fromkeys(labels.dropna()) if c not in param.choices]
    position = {label: i for i, label in enumerate(order)}
    keep = labels.notna()
    x = labels[keep].map(position).to_numpy(dtype=float)
    y = trials.loc[keep, y_column].to_numpy(dtype=float)
    ax.scatter(x + _jitter(len(x)), y, **POINT_STYLE)
    positions = np.arange(len(order), dtype=float)
    ax.errorbar(positions, *_means_and_stds(x, y, positions), linestyle="-" if param.ordered_choices else "none", **MEAN_STYLE)
    long_labels = sum(len(label) for label in order) > 24
    ax.set_xticks(np.arange(len(order)), [shorten(label) for label in order],
                  rotation=30 if long_labels else 0, ha="right" if long_labels else "center")
    ax.set_xlim(-0.5, len(order) - 0.5)


def _means_and_stds(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of y at each of `values` of x (std 0 where only one trial has the value)."""
    means = np.array([y[x == v].mean() for v in values])
    stds = np.array([y[x == v].std(ddof=1) if (x == v).sum() > 1 else 0.0 for v in values])
    return means, stds


def _jitter(count: int) -> np.ndarray:
    """Small fixed offsets (in units of the spacing between values) so equal points do not hide each other."""
    return np.random.default_rng(0).uniform(-0.08, 0.08, count)


def _legend_handles(group: list[Hyperparameter], trials: pd.DataFrame) -> list[Line2D]:
    """Legend entries for what this figure's panels draw."""
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=4, color=POINT_STYLE["color"], label="one trial")]
    if any(_is_discrete(p, trials) for p in group):
        handles.append(Line2D([], [], color=MEAN_STYLE["color"], marker="o", markersize=4, label="mean ± std over trials"))
    if not all(_is_discrete(p, trials) for p in group):
        handles.append(Line2D([], [], color=TREND_STYLE["color"], label="kernel-smoothed trend"))
    return handles
