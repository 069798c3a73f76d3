"""The one-at-a-time sensitivity study in the papers' layout (HEPHAESTUS Figure 3, LightST
Figure 4): each parameter varied around the shared base point, the others held at the base.

One figure per measure (MAE, then RMSE): the MAE figure is the papers' figure, the RMSE one its
companion, and each stays one page wide. In a figure, a row of panels per dataset, since their
errors differ in scale (METR-LA ~3 mph, PEMS08 ~13 vehicles); the panels of a row share their y
axis, so that the parameters that matter stand out. Each panel: the test metric against the
parameter's value, mean ± std over seeds, the base value dashed, the published points hollow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness.records import atomic_write_text
from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import column_label
from harness.report.oat_points import StudiedParameter, studied_parameters, study_points
from harness.report.references import PUBLISHED_COLUMNS, attach_published, name_key
from harness.report.style import (
    COLORS,
    MAX_PANELS_PER_ROW,
    bottom_legend,
    panel_grid,
    save_figure,
    shorten,
    value_ticks,
    wrapped_labels,
)

FIGURE_MEASURES = ("MAE", "RMSE")
LOG_MARGIN = 0.08  # of the log range, each side
BASE_LINE = {"color": "0.45", "linestyle": "--", "linewidth": 0.9, "zorder": 1}
PUBLISHED_MARKER = {"marker": "s", "markersize": 6, "markerfacecolor": "none", "markeredgewidth": 1.2, "linestyle": "none",
                    "zorder": 4}


def study_figures(ctx: ReportContext) -> list[Entry]:
    """sensitivity.csv (every point, with the published numbers and gaps) and a figure per measure."""
    campaign = ctx.campaign
    params = studied_parameters(campaign)
    if not params:
        raise Skipped("the spec varies no parameter and no trial's cell names one")
    points = published_points(ctx, study_points(campaign, params, ctx.columns))
    _note_gaps(ctx, params, points)
    atomic_write_text(ctx.out / "sensitivity.csv", points.to_csv(index=False))
    entries = [Entry("tables", "Sensitivity study", ("sensitivity.csv",),
                     "every (parameter, value, dataset, measure): n seeds, mean, std, is_base, and the published "
                     "number with the gap to it")]
    drawn = points[points["n"] > 0]
    if drawn.empty:
        raise Skipped("no trial finished")  # the CSV is still written, with n = 0 everywhere
    datasets = [d for d in campaign.datasets() if (drawn["dataset"] == d).any()]
    chunks = [params[i:i + MAX_PANELS_PER_ROW] for i in range(0, len(params), MAX_PANELS_PER_ROW)]
    for measure in FIGURE_MEASURES:
        for number, chunk in enumerate(chunks, start=1):
            stem = f"sensitivity_{measure.lower()}" + (f"_{number}" if len(chunks) > 1 else "")
            names = save_figure(_figure(ctx, points, chunk, datasets, measure), ctx.out, stem)
            entries.append(Entry("figures", f"Sensitivity study: test {measure}" + (f" ({number})" if len(chunks) > 1 else ""),
                                 names, _caption(ctx, points, chunk, datasets, measure)))
    return entries


def published_points(ctx: ReportContext, points: pd.DataFrame) -> pd.DataFrame:
    """The points with the published number of each (parameter, value, dataset, measure) attached."""
    references = ctx.references[ctx.references["parameter"] != ""]
    keyed = points.assign(parameter_key=points["parameter"].map(name_key), value_key=points["value"])
    attached = attach_published(keyed, references, {"parameter_key": "parameter_key", "value_key": "value_key"})
    return attached[[*points.columns, *PUBLISHED_COLUMNS]]


def _note_gaps(ctx: ReportContext, params: list[StudiedParameter], points: pd.DataFrame) -> None:
    """Notes for index.md: parameters without a known base value, and points short of seeds."""
    for param in params:
        if param.base is None:
            ctx.note(f"sensitivity study: no base record and no spec base value for {param.name}: its base is not marked")
    planned = len(ctx.campaign.spec.get("seeds") or [])
    short = points[(points["measure"] == FIGURE_MEASURES[0]) & (points["n"] < planned)]
    labels = ["base" if base else f"{p}={v}" for p, v, base in zip(short["parameter"], short["value"], short["is_base"])]
    for label, dataset, n in dict.fromkeys(zip(labels, short["dataset"], short["n"])):
        ctx.note(f"sensitivity study: {label} on {dataset}: {n} of {planned} seeds finished")


def _figure(ctx: ReportContext, points: pd.DataFrame, params: list[StudiedParameter], datasets: list[str], measure: str):
    """Rows: datasets; columns: parameters; each panel the measure against the parameter's value."""
    figure, axes = panel_grid(len(datasets), len(params), sharey="row")
    published_drawn = []
    for row, dataset in enumerate(datasets):
        color = COLORS[row % len(COLORS)]
        for col, param in enumerate(params):
            ax = axes[row, col]
            shown = points[(points["parameter"] == param.name) & (points["dataset"] == dataset) & (points["measure"] == measure)]
            published_drawn += _panel(ax, shown, param, color)
            ax.set_xlabel(f"{param.name}" + (f" (base {param.base})" if param.base is not None else ""))
        column = points.loc[(points["dataset"] == dataset) & (points["measure"] == measure), "column"].iloc[0]
        axes[row, 0].set_ylabel(f"{dataset}\n{column_label(column, ctx.campaign.unit(dataset))}")
    bottom_legend(figure, _legend(datasets, published_drawn, any(p.base is not None for p in params)))
    return figure


def _panel(ax: Axes, shown: pd.DataFrame, param: StudiedParameter, color: str) -> list[str]:
    """Draw one panel; return the tables of the published points it drew."""
    finished = shown[shown["n"] > 0]
    joined = param.numbers is not None  # a line between levels that have no order would invent one
    ax.errorbar(finished["x"], finished["mean"], yerr=finished["std"].fillna(0.0), color=color, marker="o",
                markersize=4, capsize=3, linestyle="-" if joined else "none", zorder=3)
    comparable = shown[shown["published"].notna() & (shown["published_horizon"] == shown["horizon"])]
    ax.plot(comparable["x"], comparable["published"], color=color, markeredgecolor=color, **PUBLISHED_MARKER)
    if param.base is not None:
        ax.axvline(param.positions()[param.values.index(param.base)], **BASE_LINE)
    _value_axis(ax, param)
    if finished.empty:
        ax.text(0.5, 0.5, "no finished trial", transform=ax.transAxes, ha="center", va="center", color="0.4")
    return list(comparable["published_table"])


def _value_axis(ax: Axes, param: StudiedParameter) -> None:
    """Ticks at the values only: numbers on a linear or (wide positive range) log axis, anything
    else as evenly spaced levels."""
    positions = param.positions()
    numbers = param.numbers
    if numbers is not None:
        labels = [f"{v:g}" for v in numbers]  # the values as given, every digit
    else:
        labels = wrapped_labels([shorten(v) for v in param.values])
    if param.log:
        ax.set_xscale("log")
        span = np.log10(positions.max() / positions.min())
        ax.set_xlim(positions.min() / 10 ** (LOG_MARGIN * span), positions.max() * 10 ** (LOG_MARGIN * span))
    elif numbers is None:
        ax.set_xlim(-0.5, len(positions) - 0.5)
    elif len(positions) > 1:
        margin = 0.08 * (positions.max() - positions.min())
        ax.set_xlim(positions.min() - margin, positions.max() + margin)
    value_ticks(ax.xaxis, positions, labels)


def _legend(datasets: list[str], published: list[str], base: bool) -> list[Line2D]:
    """One entry per dataset line, the published points and the base line where drawn."""
    handles = [Line2D([], [], color=COLORS[k % len(COLORS)], marker="o", markersize=4, label=f"{d}: mean ± std over seeds")
               for k, d in enumerate(datasets)]
    if published:
        tables = ", ".join(dict.fromkeys(published))
        handles.append(Line2D([], [], color="0.2", markeredgecolor="0.2", label=f"published ({tables})", **PUBLISHED_MARKER))
    if base:
        handles.append(Line2D([], [], label="base setting (shared by every panel)", **BASE_LINE))
    return handles


def _caption(ctx: ReportContext, points: pd.DataFrame, params: list[StudiedParameter], datasets: list[str], measure: str) -> str:
    names = ", ".join(p.name for p in params)
    text = (f"test {measure} ({ctx.metric_description(datasets)}) against {names}, one at a time around the base "
            f"setting, mean ± std over seeds, a row per dataset")
    shown = points[points["measure"] == measure]
    elsewhere = shown[shown["published"].notna() & (shown["published_horizon"] != shown["horizon"])]
    if shown["gap_pct"].notna().any():
        text += "; hollow squares: the published points"
    if len(elsewhere):
        text += (f"; the published points of {', '.join(dict.fromkeys(elsewhere['dataset']))} are at another horizon "
                 f"and not drawn (--metric paper draws them)")
    return text
