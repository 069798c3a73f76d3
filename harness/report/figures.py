"""The report's other figures: the ablation chart (LightST Figure 3), the optimisation history
and the Pareto front of a sweep, and the validation curves of every campaign.

Each function is a report section: it writes PNG + PDF into ctx.out and returns their entries,
or raises Skipped with the reason it has nothing to show.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import MEASURES, STATUS_OK, Objective, column_label, rank
from harness.report.oat_points import BASE, setting_label
from harness.report.style import (
    COLORS,
    MAX_PANELS_PER_ROW,
    PANEL_SIZE,
    bottom_legend,
    hide_unused,
    integer_ticks,
    limit_outliers,
    panel_grid,
    save_figure,
)
from harness.report.tables import ablation_numbers, pareto_trials


def ablation_figure(ctx: ReportContext) -> list[Entry]:
    """Dot plot: a panel per (measure, dataset), a row per variant, mean ± std, the reference
    dashed, the published numbers hollow.

    Measures are rows of panels and datasets columns; with one dataset the measures sit side by side.
    """
    campaign = ctx.campaign
    cells = ablation_numbers(ctx)
    variants, datasets = campaign.variants(), campaign.datasets()
    side_by_side = len(datasets) == 1
    nrows, ncols = (1, len(MEASURES)) if side_by_side else (len(MEASURES), len(datasets))
    height = max(PANEL_SIZE[1], 0.4 * len(variants) + 0.9)
    figure, axes = panel_grid(nrows, ncols, extra_height=(height - PANEL_SIZE[1]) * nrows, sharey=True)
    positions = np.arange(len(variants))[::-1]  # the first variant on top
    for row, measure in enumerate(MEASURES):
        for col, dataset in enumerate(datasets):
            ax = axes[0, row] if side_by_side else axes[row, col]
            shown = cells[(cells["dataset"] == dataset) & (cells["measure"] == measure)].set_index("variant").reindex(variants)
            errors = shown["std"].fillna(0.0).to_numpy()
            colors = [COLORS[1] if v == ctx.reference else COLORS[0] for v in variants]
            ax.errorbar(shown["mean"], positions, xerr=errors, fmt="none", ecolor="0.4", capsize=3, zorder=2)
            ax.scatter(shown["mean"], positions, c=colors, s=22, zorder=3)
            comparable = (shown["published_horizon"] == shown["horizon"]).to_numpy()
            ax.scatter(shown["published"][comparable], positions[comparable], s=30, marker="D", facecolors="none",
                       edgecolors="0.15", linewidths=1.0, zorder=4)
            if ctx.reference in variants and pd.notna(shown.loc[ctx.reference, "mean"]):
                ax.axvline(shown.loc[ctx.reference, "mean"], color=COLORS[1], linestyle="--", linewidth=0.9, zorder=1)
            ax.set_xlabel(column_label(shown["column"].iloc[0], ctx.campaign.unit(dataset)))
            ax.grid(axis="y", visible=False)
            if row == 0 or side_by_side:
                ax.set_title(dataset)
    finished = cells.groupby("variant")["n"].sum()
    labels = [v if finished.get(v, 0) else f"{v}\n(none finished)" for v in variants]
    axes[0, 0].set_yticks(positions, labels)  # the panels share y
    axes[0, 0].set_ylim(-0.6, len(variants) - 0.4)
    handles = [Line2D([], [], linestyle="none", marker="o", color=COLORS[0], label="variant: mean ± std over seeds")]
    if ctx.reference:
        handles.append(Line2D([], [], linestyle="--", marker="o", color=COLORS[1], label=f"reference ({ctx.reference})"))
    drawn = cells[cells["published_horizon"] == cells["horizon"]]
    if len(drawn):
        handles.append(Line2D([], [], linestyle="none", marker="D", markerfacecolor="none", color="0.15",
                              label=f"published ({', '.join(dict.fromkeys(drawn['published_table']))})"))
    bottom_legend(figure, handles)
    names = save_figure(figure, ctx.out, "ablation")
    return [Entry("figures", "Ablation chart", names,
                  f"test {' / '.join(MEASURES)} ({ctx.metric_description()}) of every variant, mean ± std over seeds"
                  + ("; hollow diamonds: the published numbers" if len(drawn) else ""))]


def history_figure(ctx: ReportContext) -> list[Entry]:
    """Each objective against the trial's place in start order, with the best so far, per dataset.

    Pruned trials sit (hollow) at the value they reached before being stopped; trials without a
    value of the objective are crosses on the x axis. The legend names only what is drawn.
    """
    campaign = ctx.campaign
    objectives = [o for o in campaign.objectives() if o.metric in campaign.trials]
    if not objectives:
        raise Skipped("trials.csv has no objective column")
    if campaign.ok.empty:
        raise Skipped("no trial finished")
    datasets = campaign.datasets()
    figure, axes = panel_grid(len(objectives), len(datasets), extra_height=0.3)
    drawn: dict[str, set[str]] = {"finished": set(), "stopped": set(), "lost": set()}
    for row, objective in enumerate(objectives):
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            trials = campaign.trials[campaign.trials["dataset"] == dataset].reset_index(drop=True)  # in start order
            for kind, statuses in _plot_history(ax, trials, objective).items():
                drawn[kind] |= statuses
            ax.set_title(dataset + limit_outliers(ax, trials[objective.metric].to_numpy(dtype=float)))
            ax.set_xlabel("trial (in start order)")
            integer_ticks(ax.xaxis)
            ax.set_ylabel(column_label(objective.metric, ctx.campaign.unit(dataset)))
    modes = {o.mode for o in objectives}
    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=4, color=COLORS[0], label="finished trial"),
        Line2D([], [], color=COLORS[1], label="best so far" + (f" ({modes.pop()})" if len(modes) == 1 else "")),
    ]
    if drawn["stopped"]:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=4, markerfacecolor="none", color="0.5",
                              label=f"{' / '.join(sorted(drawn['stopped']))}: value reached before it stopped"))
    if drawn["lost"]:
        handles.append(Line2D([], [], linestyle="none", marker="x", color=COLORS[1],
                              label=f"no value ({', '.join(sorted(drawn['lost']))})"))
    bottom_legend(figure, handles)
    names = save_figure(figure, ctx.out, "history")
    return [Entry("figures", "Optimisation history", names,
                  f"{', '.join(o.metric for o in objectives)} of every trial in the order the trials started, and the "
                  f"best so far, per dataset")]


def _plot_history(ax: Axes, trials: pd.DataFrame, objective: Objective) -> dict[str, set[str]]:
    """One panel of the history; returns the statuses drawn as finished, stopped (hollow) and lost (crosses)."""
    number = np.arange(1, len(trials) + 1)
    values = trials[objective.metric].to_numpy(dtype=float)
    status = trials["status"].to_numpy()
    finished = (status == STATUS_OK) & np.isfinite(values)
    stopped = ~finished & np.isfinite(values)
    lost = ~finished & ~np.isfinite(values)
    ax.scatter(number[finished], values[finished], s=12, color=COLORS[0], zorder=3)
    ax.scatter(number[stopped], values[stopped], s=14, facecolors="none", edgecolors="0.5", zorder=2)
    if lost.any():  # on the x axis: they have no value to place them by
        ax.plot(number[lost], np.zeros(lost.sum()), linestyle="none", marker="x", color=COLORS[1],
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
    if finished.any():
        best = pd.Series(values[finished]).cummax() if objective.maximise else pd.Series(values[finished]).cummin()
        ax.step(np.append(number[finished], number[-1]), np.append(best, best.iloc[-1]), where="post", color=COLORS[1])
    ax.set_xlim(0.5, len(trials) + 0.5)
    return {"finished": set(status[finished]), "stopped": set(status[stopped]), "lost": set(status[lost])}


def pareto_figure(ctx: ReportContext) -> list[Entry]:
    """The first two objectives of every finished trial, the non-dominated ones marked and joined."""
    trials = pareto_trials(ctx)
    objectives = ctx.campaign.objectives()
    x_objective, y_objective = objectives[0], objectives[1]
    datasets = list(dict.fromkeys(trials["dataset"]))
    ncols = min(len(datasets), MAX_PANELS_PER_ROW)
    figure, axes = panel_grid(math.ceil(len(datasets) / ncols), ncols, extra_height=0.3)
    for ax, dataset in zip(axes.flat, datasets):
        group = trials[trials["dataset"] == dataset]
        front = group[group["pareto"]].sort_values(x_objective.metric)
        ax.scatter(group[x_objective.metric], group[y_objective.metric], s=12, color="0.6", zorder=2)
        ax.step(front[x_objective.metric], front[y_objective.metric], where="post", color=COLORS[1], zorder=3)
        ax.scatter(front[x_objective.metric], front[y_objective.metric], s=26, color=COLORS[1], zorder=4)
        ax.set_xlabel(column_label(x_objective.metric, ctx.campaign.unit(dataset)))
        ax.set_ylabel(column_label(y_objective.metric, ctx.campaign.unit(dataset)))
        ax.set_title(f"{dataset}: {len(front)} of {len(group)} trials non-dominated")
    hide_unused(axes, len(datasets))
    handles = [
        Line2D([], [], linestyle="none", marker="o", markersize=4, color="0.6", label="finished trial"),
        Line2D([], [], marker="o", color=COLORS[1], label="non-dominated (Pareto front)"),
    ]
    bottom_legend(figure, handles)
    names = save_figure(figure, ctx.out, "pareto")
    beyond = f"; non-dominance over all {len(objectives)} objectives" if len(objectives) > 2 else ""
    return [Entry("figures", "Pareto front", names,
                  f"{y_objective.metric} ({y_objective.mode}) against {x_objective.metric} ({x_objective.mode}) of the "
                  f"finished trials{beyond}")]


def curves_figure(ctx: ReportContext) -> list[Entry]:
    """Validation MAE per epoch: the mean per variant (ablations), every trial with the best
    marked (sweeps), or every trial with the base point's mean marked (sensitivity studies)."""
    campaign = ctx.campaign
    if campaign.curves is None:
        raise Skipped("no trial recorded a per-epoch curve")
    finished = campaign.ok[["trial_id", "dataset", "variant_display", "cell"]]
    curves = campaign.curves.merge(finished, on="trial_id").dropna(subset=["epoch", "val_mae"])
    if curves.empty:
        raise Skipped("no finished trial recorded a per-epoch curve")
    datasets = [d for d in campaign.datasets() if (curves["dataset"] == d).any()]
    ncols = min(len(datasets), MAX_PANELS_PER_ROW)
    figure, axes = panel_grid(math.ceil(len(datasets) / ncols), ncols, extra_height=0.4)
    for ax, dataset in zip(axes.flat, datasets):
        in_dataset = curves[curves["dataset"] == dataset]
        if campaign.kind == "sweep":
            _plot_sweep_curves(ax, in_dataset, rank(campaign.ok[campaign.ok["dataset"] == dataset], ctx.selection(dataset)))
        elif campaign.kind == "sensitivity":
            _plot_study_curves(ax, in_dataset)
        else:
            _plot_variant_curves(ax, in_dataset, campaign.variants(), ctx.reference)
        ax.set_title(dataset + limit_outliers(ax, in_dataset["val_mae"].to_numpy(dtype=float)))
        ax.set_xlabel("epoch")
        integer_ticks(ax.xaxis)
        ax.set_ylabel(column_label("val_mae", ctx.campaign.unit(dataset)))
    hide_unused(axes, len(datasets))
    legend = {label: handle for ax in axes.flat[: len(datasets)] for handle, label in zip(*ax.get_legend_handles_labels())}
    bottom_legend(figure, list(legend.values()), list(legend))
    names = save_figure(figure, ctx.out, "curves")
    what = {"sweep": "every finished trial, the best marked",
            "sensitivity": "every finished trial, the base point's mean over seeds marked"}.get(
        campaign.kind, "mean over the finished seeds of each variant")
    return [Entry("figures", "Validation curves", names, f"validation MAE per epoch ({what}), per dataset")]


def _plot_sweep_curves(ax: Axes, curves: pd.DataFrame, ranked: pd.DataFrame) -> None:
    best = str(ranked["trial_id"].iloc[0]) if len(ranked) else None
    _plot_every_curve(ax, curves[curves["trial_id"] != best])
    if best is not None:
        trial = curves[curves["trial_id"] == best]
        ax.plot(trial["epoch"], trial["val_mae"], color=COLORS[1], zorder=3, label="best trial")


def _plot_study_curves(ax: Axes, curves: pd.DataFrame) -> None:
    base = curves["cell"].map(setting_label) == BASE
    _plot_every_curve(ax, curves[~base])
    if base.any():
        mean = curves[base].groupby("epoch")["val_mae"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=COLORS[1], zorder=3, label="base setting (mean over seeds)")


def _plot_every_curve(ax: Axes, curves: pd.DataFrame) -> None:
    """Each trial's curve, thin and grey."""
    for _, trial in curves.groupby("trial_id", sort=False):
        ax.plot(trial["epoch"], trial["val_mae"], color="0.75", linewidth=0.6, zorder=1)
    if len(curves):
        ax.plot([], [], color="0.75", linewidth=0.6, label="a finished trial")


def _plot_variant_curves(ax: Axes, curves: pd.DataFrame, variants: list[str], reference: str | None) -> None:
    for k, variant in enumerate(variants):
        trial = curves[curves["variant_display"] == variant]
        if trial.empty:
            continue
        mean = trial.groupby("epoch")["val_mae"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=COLORS[k % len(COLORS)],
                linestyle="--" if variant == reference else "-", label=variant)
