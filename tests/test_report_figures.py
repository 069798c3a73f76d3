"""Every figure the report writes, rendered from hand-made campaigns and checked for print: no
overlapping or clipped text (through figure_checks, itself tested on a deliberately bad figure),
integer ticks on counts, legends that name only what is drawn; and what the sweep figures show:
trials in start order, pruned trials at the value they reached, parallel coordinates."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from figure_checks import captured_figures, layout_problems
from harness.records import read_records
from harness.report import build_report
from harness.report.load import load_campaign
from report_fixtures import (
    categorical_study,
    hephaestus_study,
    lightst_study,
    realistic_ablation,
    realistic_sweep,
    smoke_sweep,
    table3_ablation,
    sweep_manifest,
    trial_row,
    write_v1_campaign,
)

CAMPAIGNS: dict[str, Callable[[Path], Path]] = {
    "sweep": realistic_sweep, "smoke sweep": smoke_sweep, "ablation": realistic_ablation,
    "three-finished-trial sweep": lambda folder: smoke_sweep(folder, trials=6),  # too few trials for a trend
    "table 3 ablation": table3_ablation,
    "one-dataset ablation": lambda folder: table3_ablation(folder, datasets=["PEMS08"]),  # one narrow panel, a long legend
    "HEPHAESTUS study": hephaestus_study, "LightST study": lightst_study,
    "categorical study": categorical_study,
}
FIGURE_TYPES = {"ablation", "curves", "routing", "marginal sensitivity", "parallel", "importance", "history", "pareto",
                "sensitivity study"}


def figure_type(stem: str) -> str:
    """The kind of figure a file stem names: 'routing_pems04' -> 'routing', 'sensitivity_2' -> 'marginal sensitivity'."""
    if re.fullmatch(r"sensitivity_\d+", stem):
        return "marginal sensitivity"
    if stem.startswith("sensitivity_"):
        return "sensitivity study"
    return stem.split("_")[0]


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Figure]]:
    """Every figure of every campaign's report, by campaign and file stem."""
    rendered = {}
    for name, make in CAMPAIGNS.items():
        with captured_figures() as captured:
            build_report(make(tmp_path_factory.mktemp("campaign") / name.replace(" ", "-")))
        rendered[name] = dict(captured)
    return rendered


def axis_labels(ax, which: str = "x") -> list[str]:
    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = sorted(axis.get_view_interval())
    return [t.get_text() for loc, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
            if low <= loc <= high and t.get_text()]


def legend_labels(figure: Figure) -> list[str]:
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def test_the_campaigns_render_every_figure_type(figures: dict[str, dict[str, Figure]]) -> None:
    assert {figure_type(stem) for rendered in figures.values() for stem in rendered} == FIGURE_TYPES


@pytest.mark.parametrize("campaign", list(CAMPAIGNS))
def test_every_figure_is_print_ready(figures: dict[str, dict[str, Figure]], campaign: str) -> None:
    problems = {stem: layout_problems(figure) for stem, figure in figures[campaign].items()}
    assert {stem: found for stem, found in problems.items() if found} == {}


def test_the_checker_finds_overlapping_tick_labels_and_text_beyond_the_canvas() -> None:
    clean = Figure(figsize=(4, 3), layout="constrained")
    clean.subplots().set_xlabel("epoch")
    assert layout_problems(clean) == []
    bad = Figure(figsize=(3, 2))
    ax = bad.subplots()
    ax.set_xticks(np.arange(6), [f"a long label {k}" for k in range(6)])
    bad.text(0.9, 0.5, "beyond the right edge")
    problems = layout_problems(bad)
    assert any(p.startswith("tick labels 'a long label 0' and 'a long label 1' overlap") for p in problems)
    assert "text 'beyond the right edge' reaches beyond the canvas" in problems
    crowded = Figure(figsize=(3, 2), layout="constrained")
    crowded.subplots().set_title("a title")
    crowded.text(0.5, 0.97, "on the title", ha="center", va="top")
    assert any("overlap" in p for p in layout_problems(crowded))


def test_counts_have_integer_ticks(figures: dict[str, dict[str, Figure]]) -> None:
    two_epochs = figures["smoke sweep"]["curves"].axes[0]
    assert axis_labels(two_epochs) == ["1", "2"]
    for ax in figures["sweep"]["history"].axes:
        assert all(re.fullmatch(r"\d+", label) for label in axis_labels(ax)), axis_labels(ax)


def test_history_is_in_start_order(figures: dict[str, dict[str, Figure]], tmp_path: Path) -> None:
    trials = load_campaign(realistic_sweep(tmp_path / "sweep")).trials
    metr_la = trials[trials["dataset"] == "METR-LA"].sort_values("started").reset_index(drop=True)
    finished = metr_la.index[metr_la["status"] == "ok"]
    ax = figures["sweep"]["history"].axes[0]
    assert ax.get_xlabel() == "trial (in start order)" and ax.get_title().startswith("METR-LA")
    points = ax.collections[0].get_offsets()
    assert points[:, 0].tolist() == (finished + 1).tolist()
    assert np.allclose(points[:, 1], metr_la.loc[finished, "val_mae"])
    assert metr_la["trial_id"].tolist() != sorted(metr_la["trial_id"])  # start order is not id order


def test_a_folder_without_records_is_read_in_start_order(tmp_path: Path) -> None:
    rows = [trial_row(f"t{k}", "PEMS08", 13.0 + k, started=f"2026-01-01T00:0{9 - k}:00+00:00") for k in range(3)]
    manifest = sweep_manifest(objective={"metric": "val_mae", "mode": "min"}, space=None, datasets=["PEMS08"])
    assert load_campaign(write_v1_campaign(tmp_path / "c", manifest, rows)).trials["trial_id"].tolist() == ["t2", "t1", "t0"]


def test_legends_name_only_what_is_drawn(figures: dict[str, dict[str, Figure]]) -> None:
    smoke = legend_labels(figures["smoke sweep"]["history"])  # pruned trials, none failed
    assert "pruned: value reached before it stopped" in smoke and not any("no value" in label for label in smoke)
    sweep = legend_labels(figures["sweep"]["history"])
    assert "no value (diverged, failed, pruned)" in sweep
    ablation = figures["ablation"]["curves"]
    assert legend_labels(ablation) == ["Full", "w/o AMS-MoE", "w/o PTA"]
    assert not any("published" in label for label in legend_labels(figures["LightST study"]["sensitivity_mae"]))


def test_levels_without_an_order_are_evenly_spaced_and_not_joined(figures: dict[str, dict[str, Figure]]) -> None:
    patch_sizes, attention, dropout = figures["categorical study"]["sensitivity_mae"].axes[:3]
    labels = [t.get_text() for t in patch_sizes.get_xticklabels()]
    assert [" ".join(label.split()) for label in labels] == ["[1, 3]", "[1, 3, 6]", "[1, 2, 3, 6]", "[1, 2, 3, 6, 12]"]
    assert max(len(line) for label in labels for line in label.splitlines()) <= 10  # wrapped, upright
    assert patch_sizes.get_xticks().tolist() == [0, 1, 2, 3] and attention.get_xlim() == (-0.5, 1.5)
    assert [line.get_linestyle() for line in attention.get_lines() if line.get_marker() == "o"] == ["None"]
    assert [line.get_linestyle() for line in dropout.get_lines() if line.get_marker() == "o"] == ["-"]
    assert [t.get_text() for t in dropout.get_xticklabels()] == ["0", "0.1", "0.2", "0.3"] and dropout.get_xscale() == "linear"


def test_pruned_trials_appear_hollow_at_the_value_they_reached(figures: dict[str, dict[str, Figure]],
                                                               tmp_path: Path) -> None:
    folder = realistic_sweep(tmp_path / "sweep")
    trials = load_campaign(folder).trials.set_index("trial_id")
    unrecorded = [r for r in read_records(folder)[0] if r.status == "pruned" and r.val.get("mae") is None]
    assert len(unrecorded) == 2  # their records lack val metrics: their curves' best epochs stand for them
    for record in unrecorded:
        assert trials.loc[record.trial_id, "val_mae"] == min(point["val_mae"] for point in record.curve)
    pruned = trials[(trials["status"] == "pruned") & (trials["dataset"] == "PEMS08")]
    figure = figures["sweep"]["sensitivity_1"]
    title = " ".join(figure.get_suptitle().split())
    assert title.startswith("Marginal view over the 60 trials the search sampled (56 with a value)")
    pems08 = [ax for ax in figure.axes if ax.get_ylabel().startswith("PEMS08")][0]
    hollow = [c for c in pems08.collections if isinstance(c, PathCollection) and len(c.get_facecolors()) == 0]
    assert sorted(hollow[0].get_offsets()[:, 1]) == pytest.approx(sorted(pruned["val_mae"]))
    assert pems08.get_ylabel().endswith("Validation MAE (veh/5 min)")
    assert "a pruned trial: best value before it was stopped" in legend_labels(figure)


def test_parallel_coordinates_scale_each_axis_and_grey_the_unfinished(figures: dict[str, dict[str, Figure]],
                                                                       tmp_path: Path) -> None:
    trials = load_campaign(smoke_sweep(tmp_path / "smoke")).trials
    ax = figures["smoke sweep"]["parallel"].axes[0]
    assert [" ".join(t.get_text().split()) for t in ax.get_xticklabels()] == [
        "num_experts", "top_k", "aux_weight (log)", "lr (log)", "batch_size", "val_mae"]
    lines = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == 6]
    greyed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(lines) == len(trials) and len(greyed) == (trials["status"] != "ok").sum()
    values = np.concatenate(lines)
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    coloured = [line for line in ax.get_lines() if len(line.get_xdata()) == 6 and line.get_linestyle() == "-"]
    assert coloured[-1].get_ydata()[-1] == 0.0  # the best (lowest) objective drawn last, on top
    batch = {round(float(line[4]), 6) for line in lines}
    assert batch == {0.0, 0.5, 1.0}  # three categorical levels, evenly spaced
    lr = trials["config.lr"].to_numpy()
    scaled = (np.log10(lr) - np.log10(3e-4)) / (np.log10(3e-3) - np.log10(3e-4))  # on the space's log range
    assert sorted(round(float(line[3]), 6) for line in lines) == sorted(np.round(scaled, 6).tolist())


def marginal_sensitivity_figures(figures: dict[str, dict[str, Figure]]):
    """(stem, figure) of every marginal sensitivity figure the campaigns rendered."""
    for campaign in figures.values():
        yield from ((stem, figure) for stem, figure in campaign.items() if figure_type(stem) == "marginal sensitivity")


def test_a_trend_is_in_the_legend_exactly_when_a_panel_draws_one(figures: dict[str, dict[str, Figure]]) -> None:
    from harness.report.sensitivity import TREND_STYLE

    checked = 0
    for stem, figure in marginal_sensitivity_figures(figures):
        drawn = any(line.get_color() == TREND_STYLE["color"] and len(line.get_xdata()) > 2
                    for ax in figure.axes for line in ax.get_lines())
        assert ("kernel-smoothed trend (finished trials)" in legend_labels(figure)) == drawn, stem
        checked += 1
    assert checked


def test_points_of_a_discrete_setting_stay_beside_their_own_value(figures: dict[str, dict[str, Figure]]) -> None:
    """Equal points are spread a little so that none hides another, never towards a neighbouring value."""
    checked = 0
    for stem, figure in marginal_sensitivity_figures(figures):
        for ax in figure.axes:
            if not ax.containers or ax.get_xscale() != "linear":  # a discrete panel draws means with error bars
                continue
            low, high = sorted(ax.get_xlim())
            ticks = np.array([t for t in ax.get_xticks() if low <= t <= high])
            gap = np.diff(ticks).min() if len(ticks) > 1 else 1.0
            for points in (c for c in ax.collections if isinstance(c, PathCollection)):
                for x in points.get_offsets()[:, 0]:
                    assert np.abs(ticks - x).min() <= 0.1 * gap, (stem, ax.get_xlabel(), x, ticks)
                    checked += 1
    assert checked
