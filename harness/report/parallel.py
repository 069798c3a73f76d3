"""Parallel coordinates of a sweep's trials: every searched hyperparameter (and the objective)
a vertical axis scaled to [0, 1] over its range, log-sampled ones on a log scale, categorical
ones as evenly spaced levels; a line per trial, coloured by the objective, the trials without a
finished value (pruned, failed, diverged) in grey beneath them. A panel per dataset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import STATUS_OK, Objective, column_label
from harness.report.space import Hyperparameter, categorical_levels, searched_space
from harness.report.style import PANEL_SIZE, bottom_legend, compact_number, save_figure, shorten, wrapped_labels

AXIS_SPACING = 1.0  # inches between two axes
LEVEL_LABEL_WIDTH = 14  # characters of a categorical level's label
MAX_INTEGER_LEVELS = 8  # an integer parameter with at most this many values labels each
GREY = {"color": "0.72", "linewidth": 0.7, "linestyle": "--", "zorder": 1}


def parallel_figure(ctx: ReportContext) -> list[Entry]:
    """One panel per dataset: a line per trial across the hyperparameter axes and the objective."""
    campaign = ctx.campaign
    params = [p for p in searched_space(campaign)[0] if p.column in campaign.trials]
    if not params:
        raise Skipped("no searched hyperparameter appears in trials.csv")
    objective = campaign.objectives()[0]
    if objective.metric not in campaign.trials:
        raise Skipped(f"trials.csv has no column {objective.metric}")
    datasets = campaign.datasets()
    width = max(2 * PANEL_SIZE[0], AXIS_SPACING * (len(params) + 1) + 1.6)
    figure = Figure(figsize=(width, PANEL_SIZE[1] * 1.1 * len(datasets) + 0.4), layout="constrained")
    axes = figure.subplots(len(datasets), 1, squeeze=False)[:, 0]
    greyed = 0
    for ax, dataset in zip(axes, datasets):
        trials = campaign.trials[campaign.trials["dataset"] == dataset]
        greyed += _panel(figure, ax, trials, params, objective, ctx.campaign.unit(dataset))
        ax.set_title(f"{dataset}: {len(trials)} trials")
    if greyed:
        bottom_legend(figure, [Line2D([], [], label="pruned, failed or diverged (no finished value)", **GREY)])
    names = save_figure(figure, ctx.out, "parallel")
    return [Entry("figures", "Parallel coordinates", names,
                  f"every trial across the searched hyperparameters (each axis scaled to its range; log-sampled ones on a "
                  f"log scale, categorical ones as evenly spaced levels) and {objective.metric}, coloured by "
                  f"{objective.metric} ({objective.mode}); grey: trials without a finished value")]


def _panel(figure: Figure, ax: Axes, trials: pd.DataFrame, params: list[Hyperparameter], objective: Objective, unit: str) -> int:
    """Draw one dataset's trials; return how many were greyed."""
    value = pd.to_numeric(trials[objective.metric], errors="coerce").to_numpy(dtype=float)
    finished = (trials["status"] == STATUS_OK).to_numpy() & np.isfinite(value)
    scaled, ticks = zip(*(_scale(trials[p.column], p) for p in params))
    objective_axis, objective_ticks = _scale_numbers(np.where(finished, value, np.nan), log=False)
    coords = np.column_stack([*scaled, objective_axis])
    positions = np.arange(coords.shape[1]) * AXIS_SPACING
    for row in coords[~finished]:
        ax.plot(positions, row, **GREY)
    low, high = (value[finished].min(), value[finished].max()) if finished.any() else (0.0, 1.0)
    mappable = ScalarMappable(norm=Normalize(low, high), cmap="viridis_r" if objective.maximise else "viridis")  # best dark
    order = np.argsort(value[finished]) if objective.maximise else np.argsort(value[finished])[::-1]
    for row, score in zip(coords[finished][order], value[finished][order]):  # the best drawn last, on top
        ax.plot(positions, row, color=mappable.to_rgba(score), linewidth=1.0, zorder=2)
    names = [p.name + (" (log)" if p.log and p.kind != "categorical" else "") for p in params] + [objective.metric]
    _draw_axes(ax, positions, [*ticks, objective_ticks], names)
    figure.colorbar(mappable, ax=ax, label=column_label(objective.metric, unit), pad=0.01, aspect=12)
    return int((~finished).sum())


def _draw_axes(ax: Axes, positions: np.ndarray, ticks: list[list[tuple[float, str]]], names: list[str]) -> None:
    """A vertical axis at each position, its ticks labelled on its right, its name below."""
    for x, axis_ticks in zip(positions, ticks):
        ax.axvline(x, color="0.2", linewidth=0.8, zorder=3)
        for y, label in axis_ticks:
            ax.text(x + 0.04, y, label, fontsize=7, ha="left", va="center", zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.8})
    ax.set_xticks(positions, wrapped_labels(names, AXIS_SPACING * len(names)))
    ax.set_yticks([])
    ax.set_xlim(positions[0] - 0.1, positions[-1] + 0.7 * AXIS_SPACING)
    ax.set_ylim(-0.06, 1.06)
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


def _scale(values: pd.Series, param: Hyperparameter) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """A parameter's values on [0, 1] and its labelled ticks ((position, label), ...)."""
    if param.kind == "categorical":
        labels, levels = categorical_levels(param, values)
        spacing = 1.0 / max(len(levels) - 1, 1)
        position = {level: (k * spacing if len(levels) > 1 else 0.5) for k, level in enumerate(levels)}
        return labels.map(position).to_numpy(dtype=float), [(position[v], shorten(v, LEVEL_LABEL_WIDTH)) for v in levels]
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bounds = [b for b in (param.low, param.high) if b is not None]
    return _scale_numbers(numbers, param.log, bounds, whole=param.kind == "int")


def _scale_numbers(numbers: np.ndarray, log: bool, bounds: list[float] = (), whole: bool = False,
                   ) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Numbers on [0, 1] over their range (widened to `bounds`) and the ticks to label: the
    range's two ends, or every whole number of a short integer range."""
    present = numbers[np.isfinite(numbers)]
    if not len(present):
        return np.full(len(numbers), np.nan), []
    low, high = min([present.min(), *bounds]), max([present.max(), *bounds])
    transform = np.log10 if log and low > 0 else (lambda v: v)
    span = transform(high) - transform(low)
    if span == 0:
        return np.where(np.isfinite(numbers), 0.5, np.nan), [(0.5, _label(low))]
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (transform(numbers) - transform(low)) / span
    ticks = np.arange(low, high + 1) if whole and high - low < MAX_INTEGER_LEVELS else np.array([low, high])
    return scaled, [((transform(t) - transform(low)) / span, _label(t)) for t in ticks]


def _label(value: float) -> str:
    """A tick label with up to four significant digits (3.368, 0.0001, 128)."""
    return compact_number(value) if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4g}"
