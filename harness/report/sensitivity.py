"""A sweep's marginal sensitivity plots: the validation objective against each searched
hyperparameter, one row of panels per dataset, over the trials the search sampled.

Other hyperparameters vary too, so each panel is a marginal view, not the one-at-a-time study
of the papers' figures (harness.report.oat). The y axis is the search's validation objective
(val_mae unless the first objective is another validation metric), so pruned trials can be
drawn too: hollow, at the best value they reached before they were stopped; they enter no mean
and no trend. Failed and diverged trials have no value and are counted in the caption.
Discrete hyperparameters (categorical, or integers with few values) show the mean with a std
error bar over the finished trials at each value; continuous ones show every trial plus a
kernel-smoothed trend. Each figure holds one group: the discrete or the continuous ones, at
most four per figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import STATUS_OK, STATUS_PRUNED, Campaign, column_label
from harness.report.space import Hyperparameter, categorical_levels, searched_space
from harness.report.stats import kernel_trend
from harness.report.style import (
    MAX_PANELS_PER_ROW,
    bottom_legend,
    compact_number,
    figure_title,
    limit_outliers,
    log_ticks,
    panel_grid,
    save_figure,
    shorten,
    value_ticks,
    wrapped_labels,
)

MAX_DISCRETE_INTEGERS = 12  # an integer hyperparameter with more values is drawn as continuous
TREND_POINTS = 120
POINT_STYLE = {"s": 10, "color": "0.6", "alpha": 0.7, "linewidths": 0, "zorder": 1}
PRUNED_STYLE = {"s": 14, "facecolors": "none", "edgecolors": "0.35", "linewidths": 0.7, "zorder": 2}
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
    y_column = marginal_column(campaign)
    values = pd.to_numeric(campaign.trials[y_column], errors="coerce")
    drawn = campaign.trials[np.isfinite(values) & campaign.trials["status"].isin([STATUS_OK, STATUS_PRUNED])]
    finished = drawn[drawn["status"] == STATUS_OK]
    if finished.empty:
        raise Skipped(f"no finished trial has {y_column}")
    datasets = [d for d in campaign.datasets() if (finished["dataset"] == d).any()]
    counts = campaign.trials["status"].value_counts()
    entries = []
    for number, group in enumerate(_groups(params, finished), start=1):
        figure, axes = panel_grid(len(datasets), len(group), extra_height=0.25, sharey="row")
        figure_title(figure, f"Marginal view over the {len(campaign.trials)} trials the search sampled ({len(drawn)} "
                             f"with a value): the other hyperparameters vary too")
        trends = False
        for row, dataset in enumerate(datasets):
            trials = drawn[drawn["dataset"] == dataset]
            for col, param in enumerate(group):
                ax = axes[row, col]
                trends |= _plot_parameter(ax, trials, param, y_column)
                ax.set_xlabel(param.name + (" (log scale)" if param.log and param.kind != "categorical" else ""))
            suffix = limit_outliers(axes[row, 0], trials[y_column].to_numpy(dtype=float))
            axes[row, 0].set_ylabel(f"{dataset}{suffix}\n{column_label(y_column, ctx.campaign.unit(dataset))}")
        bottom_legend(figure, _legend_handles(group, finished, pruned=(drawn["status"] == STATUS_PRUNED).any(), trend=trends))
        names = save_figure(figure, ctx.out, f"sensitivity_{number}")
        lost = {s: int(n) for s, n in counts.items() if s not in (STATUS_OK, STATUS_PRUNED)}
        entries.append(Entry(
            "figures", f"Marginal sensitivity to {', '.join(p.name for p in group)}", names,
            f"{column_label(y_column)} (the search's validation objective) of the {len(finished)} finished trials"
            + (f" and, hollow, the {int(counts.get(STATUS_PRUNED, 0))} pruned ones at the best value they reached"
               if counts.get(STATUS_PRUNED, 0) else "")
            + f" against {', '.join(p.name for p in group)}, per dataset: marginals over the search's samples, the other "
            "hyperparameters vary too"
            + (f"; not drawn (no value): {', '.join(f'{n} {s}' for s, n in lost.items())}" if lost else ""),
        ))
    return entries


def marginal_column(campaign: Campaign) -> str:
    """The y axis of the marginal plots: the first objective when it is a validation metric, else val_mae."""
    first = campaign.objectives()[0].metric
    return first if first.startswith("val_") else "val_mae"


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


def _plot_parameter(ax: Axes, trials: pd.DataFrame, param: Hyperparameter, y_column: str) -> bool:
    """One panel: the metric of each trial against the hyperparameter's value; means and trends
    over the finished trials only. Returns whether it drew a trend (too few trials draw none)."""
    if trials[param.column].isna().all():
        ax.text(0.5, 0.5, "no trial\nrecorded this setting", transform=ax.transAxes, ha="center", va="center")
        return False
    x, labels = _positions(trials[param.column], param)
    keep = ~np.isnan(x)
    x, y = x[keep], trials[y_column].to_numpy(dtype=float)[keep]
    finished = (trials["status"] == STATUS_OK).to_numpy()[keep]
    discrete = _is_discrete(param, trials)
    if param.log and param.kind != "categorical":
        ax.set_xscale("log")
    levels = np.unique(x[finished]) if discrete else np.array([])
    values = np.unique(x)  # the gap to the nearest other value bounds the spread, not that between finished ones
    spacing = 1.0 if param.kind == "categorical" else np.diff(values).min() if len(values) > 1 and not param.log else 0.0
    shifted = x + _jitter(len(x)) * spacing if discrete else x
    ax.scatter(shifted[finished], y[finished], **POINT_STYLE)
    ax.scatter(shifted[~finished], y[~finished], **PRUNED_STYLE)
    if discrete:
        joined = param.kind != "categorical" or param.ordered_choices
        ax.errorbar(levels, *_means_and_stds(x[finished], y[finished], levels), linestyle="-" if joined else "none", **MEAN_STYLE)
        ticks = np.unique(x)
        value_ticks(ax.xaxis, ticks, [labels[t] for t in ticks] if labels else [compact_number(t) for t in ticks])
        if labels:
            ax.set_xlim(-0.5, len(labels) - 0.5)
        return False
    if param.log:
        log_ticks(ax.xaxis, x.min(), x.max())
    scale = np.log10 if param.log else (lambda v: v)
    grid = np.linspace(scale(x.min()), scale(x.max()), TREND_POINTS)
    trend = kernel_trend(scale(x[finished]), y[finished], grid)
    if trend is not None:
        ax.plot(10 ** grid if param.log else grid, trend, **TREND_STYLE)
    return trend is not None


def _positions(values: pd.Series, param: Hyperparameter) -> tuple[np.ndarray, dict[float, str]]:
    """x of each trial (NaN where it has no value) and, for a categorical, the label of each level:
    equally spaced choices in the spec's order, then any others the trials hold."""
    if param.kind != "categorical":
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), {}
    labels, levels = categorical_levels(param, values)
    position = {label: float(i) for i, label in enumerate(levels)}
    return labels.map(position).to_numpy(dtype=float), dict(zip(position.values(), wrapped_labels([shorten(v) for v in levels])))


def _means_and_stds(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of y at each of `values` of x (std 0 where only one trial has the value)."""
    means = np.array([y[x == v].mean() for v in values])
    stds = np.array([y[x == v].std(ddof=1) if (x == v).sum() > 1 else 0.0 for v in values])
    return means, stds


def _jitter(count: int) -> np.ndarray:
    """Small fixed offsets (in units of the spacing between values) so equal points do not hide each other."""
    return np.random.default_rng(0).uniform(-0.08, 0.08, count)


def _legend_handles(group: list[Hyperparameter], trials: pd.DataFrame, pruned: bool, trend: bool) -> list[Line2D]:
    """Legend entries for what this figure's panels draw."""
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=4, color=POINT_STYLE["color"], label="a finished trial")]
    if pruned:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=4, markerfacecolor="none",
                              color=PRUNED_STYLE["edgecolors"], label="a pruned trial: best value before it was stopped"))
    if any(_is_discrete(p, trials) for p in group):
        handles.append(Line2D([], [], color=MEAN_STYLE["color"], marker="o", markersize=4,
                              label="mean ± std over finished trials"))
    if trend:
        handles.append(Line2D([], [], color=TREND_STYLE["color"], label="kernel-smoothed trend (finished trials)"))
    return handles
