"""Routing case study (HEPHAESTUS Figure 4): over one day of test windows, the target series
above a heatmap of the router's expert probabilities by time of day.

It reads artifacts/<trial_id>/routing.npz of the best finished trial of each dataset that saved
one (for an ablation, the reference variant's trials come first): gate_probs (S, M), tod (S,),
target (S,), patch_sizes (M,). No data and no model are needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import rank, value_unit
from harness.report.style import COLORS, PANEL_SIZE, save_figure

STEPS_PER_DAY = 288  # 5-minute readings, when tod is a step index rather than a fraction of the day
HOURS_PER_DAY = 24


ROUTING_ARRAYS = ("gate_probs", "tod", "target", "patch_sizes")


class RoutingArtifactError(Exception):
    """A routing.npz that lacks an array or whose arrays do not fit together."""


def load_routing(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a routing.npz, checked: gate_probs (S, M), tod (S,), target (S,), patch_sizes (M,)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ROUTING_ARRAYS if name not in archive.files]
            if missing:
                raise RoutingArtifactError(f"{path.name} lacks array(s) {', '.join(missing)}")
            arrays = {name: np.asarray(archive[name]) for name in ROUTING_ARRAYS}
    except (OSError, ValueError) as error:
        raise RoutingArtifactError(f"{path.name} could not be read ({error})") from None
    probs = arrays["gate_probs"]
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise RoutingArtifactError(f"gate_probs has shape {probs.shape}, expected (S, M) with S > 0")
    samples, experts = probs.shape
    for name, expected in (("tod", samples), ("target", samples), ("patch_sizes", experts)):
        if arrays[name].shape != (expected,):
            raise RoutingArtifactError(f"{name} has shape {arrays[name].shape}, expected ({expected},)")
    return arrays


def hours_of_day(tod: np.ndarray) -> np.ndarray:
    """Time of day in hours from fractions of a day (<= 1) or 5-minute step indices."""
    tod = tod.astype(float)
    return tod * HOURS_PER_DAY if tod.max() <= 1.0 else tod * HOURS_PER_DAY / STEPS_PER_DAY


def routing_figures(ctx: ReportContext) -> list[Entry]:
    """One case-study figure per dataset whose best finished trial saved a routing.npz."""
    campaign = ctx.campaign
    if not (campaign.path / "artifacts").is_dir():
        raise Skipped(f"no artifacts/ folder (only HEPHAESTUS trials save routing.npz; model: {campaign.model})")
    entries = []
    for dataset in campaign.datasets():
        chosen = _best_with_artifact(ctx, dataset)
        if chosen is None:
            ctx.note(f"routing case study on {dataset}: no finished trial saved artifacts/<trial_id>/routing.npz")
            continue
        trial, path = chosen
        try:
            arrays = load_routing(path)
        except RoutingArtifactError as error:
            ctx.note(f"routing case study on {dataset}: {error}")
            continue
        stem = f"routing_{_file_safe(dataset)}"
        names = save_figure(_case_study(arrays, dataset, trial), ctx.out, stem)
        entries.append(Entry("figures", f"Routing case study: {dataset}", names,
                             f"target series and router expert probabilities over one day of test windows, "
                             f"trial {trial['trial_id']} ({trial['variant_display']})"))
    if not entries:
        raise Skipped("no finished trial saved a readable routing.npz")
    return entries


def _best_with_artifact(ctx: ReportContext, dataset: str) -> tuple[pd.Series, Path] | None:
    """The best finished trial of `dataset` with a routing.npz (reference variant first)."""
    ok = ctx.campaign.ok[ctx.campaign.ok["dataset"] == dataset]
    ranked = rank(ok, ctx.selection)
    ranked = pd.concat([ranked[ranked["variant_display"] == ctx.reference], ranked[ranked["variant_display"] != ctx.reference]])
    for _, trial in ranked.iterrows():
        path = ctx.campaign.routing_path(trial["trial_id"])
        if path is not None:
            return trial, path
    return None


def _case_study(arrays: dict[str, np.ndarray], dataset: str, trial: pd.Series) -> Figure:
    """The target above the router's probabilities, both against the time of day."""
    order = np.argsort(hours_of_day(arrays["tod"]), kind="stable")
    hours = hours_of_day(arrays["tod"])[order]
    probs = arrays["gate_probs"][order].T  # experts x samples
    figure = Figure(figsize=(PANEL_SIZE[0] * 2.2, PANEL_SIZE[1] * 1.6), layout="constrained")
    line_ax, heat_ax = figure.subplots(2, 1, sharex=True, height_ratios=(1.0, 1.2))
    line_ax.plot(hours, arrays["target"][order], color=COLORS[0])
    line_ax.set_ylabel(f"target ({value_unit(dataset)})")
    line_ax.set_title(f"{dataset}: trial {trial['trial_id']} ({trial['variant_display']})")
    mesh = heat_ax.pcolormesh(hours, np.arange(probs.shape[0]), probs, shading="nearest", cmap="viridis",
                                vmin=0.0, vmax=1.0, rasterized=True)
    heat_ax.set_yticks(np.arange(probs.shape[0]), [f"P = {p:g}" for p in arrays["patch_sizes"]])
    heat_ax.invert_yaxis()
    heat_ax.grid(False)
    heat_ax.set_ylabel("expert (patch size)")
    heat_ax.set_xlabel("time of day (h)")
    heat_ax.set_xlim(0, HOURS_PER_DAY)
    heat_ax.set_xticks(np.arange(0, HOURS_PER_DAY + 1, 3))
    figure.colorbar(mesh, ax=[line_ax, heat_ax], label="router probability", shrink=0.9)
    return figure


def _file_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).lower()
