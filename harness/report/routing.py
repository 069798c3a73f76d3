"""Routing case study (HEPHAESTUS Figure 4): over one day of test windows, the target series
above a heatmap of the router's expert probabilities by time of day.

It reads the "routing" artifact (artifacts/<trial_id>/routing.npz, left by the model's artifact
hook) of the best finished trial of each dataset that saved one (for an ablation, the reference
variant's trials come first): gate_probs (S, M), hour (S,) the time of day in hours, target (S,),
patch_sizes (M,). No data and no model are needed, and no model is named: any model whose hook
leaves a "routing" artifact gets this figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import rank
from harness.report.style import COLORS, PANEL_SIZE, save_figure

ARTIFACT = "routing"
HOURS_PER_DAY = 24
REQUIRED_ARRAYS = ("gate_probs", "hour", "target")


class RoutingArtifactError(Exception):
    """A routing.npz that lacks an array or whose arrays do not fit together."""


@dataclass(frozen=True)
class RoutingDay:
    """One day of test windows in time-of-day order: hours (S,), target (S,), probs (M, S)."""

    hours: np.ndarray
    target: np.ndarray
    probs: np.ndarray
    expert_labels: tuple[str, ...]
    problem: str  # what was odd but not fatal (e.g. unusable patch_sizes); empty when nothing


def load_routing(path: Path) -> RoutingDay:
    """Read and check a routing.npz: gate_probs (S, M), hour (S,), target (S,), patch_sizes (M,).

    patch_sizes only labels the experts: when it is missing or does not match M, the experts
    are labelled by number and `problem` says why.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in REQUIRED_ARRAYS if name not in archive.files]
            if missing:
                raise RoutingArtifactError(f"{path.name} lacks array(s) {', '.join(missing)}")
            arrays = {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError) as error:
        raise RoutingArtifactError(f"{path.name} could not be read ({error})") from None
    probs = arrays["gate_probs"]
    if probs.ndim != 2 or 0 in probs.shape:
        raise RoutingArtifactError(f"gate_probs has shape {probs.shape}, expected (S, M) with S, M > 0")
    samples, experts = probs.shape
    for name in ("hour", "target"):
        if arrays[name].shape != (samples,):
            raise RoutingArtifactError(f"{name} has shape {arrays[name].shape}, expected ({samples},)")
    patch_sizes = arrays.get("patch_sizes")
    if patch_sizes is not None and patch_sizes.shape == (experts,):
        labels, problem = tuple(f"P = {p:g}" for p in patch_sizes), ""
    else:
        shape = "missing" if patch_sizes is None else f"of shape {patch_sizes.shape}"
        labels = tuple(f"expert {k + 1}" for k in range(experts))
        problem = f"patch_sizes is {shape}, expected ({experts},): experts are labelled by number"
    hours = arrays["hour"].astype(float)
    order = np.argsort(hours, kind="stable")
    return RoutingDay(hours[order], arrays["target"][order].astype(float), probs[order].T, labels, problem)


def routing_figures(ctx: ReportContext) -> list[Entry]:
    """One case-study figure per dataset whose best finished trial saved a routing.npz."""
    campaign = ctx.campaign
    entries = []
    for dataset in campaign.datasets():
        chosen = _best_with_artifact(ctx, dataset)
        if chosen is None:
            ctx.note(f"routing case study on {dataset}: no finished trial saved artifacts/<trial_id>/routing.npz")
            continue
        trial, path = chosen
        try:
            day = load_routing(path)
        except RoutingArtifactError as error:
            ctx.note(f"routing case study on {dataset}: {error}")
            continue
        if day.problem:
            ctx.note(f"routing case study on {dataset}: {day.problem}")
        stem = f"routing_{_file_safe(dataset)}"
        names = save_figure(_case_study(day, dataset, trial, campaign.unit(dataset)), ctx.out, stem)
        entries.append(Entry("figures", f"Routing case study: {dataset}", names,
                             f"target series and router expert probabilities over one day of test windows, "
                             f"trial {trial['trial_id']} ({trial['variant_display']})"))
    if not entries:
        raise Skipped("no finished trial saved a readable routing.npz")
    return entries


def _best_with_artifact(ctx: ReportContext, dataset: str) -> tuple[pd.Series, Path] | None:
    """The best finished trial of `dataset` with a routing.npz (reference variant first)."""
    ok = ctx.campaign.ok[ctx.campaign.ok["dataset"] == dataset]
    ranked = rank(ok, ctx.selection(dataset))
    ranked = pd.concat([ranked[ranked["variant_display"] == ctx.reference], ranked[ranked["variant_display"] != ctx.reference]])
    for _, trial in ranked.iterrows():
        path = ctx.campaign.artifact_path(trial["trial_id"], ARTIFACT)
        if path is not None:
            return trial, path
    return None


def _case_study(day: RoutingDay, dataset: str, trial: pd.Series, unit: str) -> Figure:
    """The target above the router's probabilities, both against the time of day."""
    figure = Figure(figsize=(PANEL_SIZE[0] * 2.2, PANEL_SIZE[1] * 1.6), layout="constrained")
    line_ax, heat_ax = figure.subplots(2, 1, sharex=True, height_ratios=(1.0, 1.2))
    line_ax.plot(day.hours, day.target, color=COLORS[0])
    line_ax.set_ylabel(f"target ({unit})")
    line_ax.set_title(f"{dataset}: trial {trial['trial_id']} ({trial['variant_display']})")
    experts = np.arange(len(day.expert_labels))
    # The colour scale spans the probabilities found (the colour bar says which), so that a router
    # still close to uniform shows its preferences too.
    mesh = heat_ax.pcolormesh(day.hours, experts, day.probs, shading="nearest", cmap="viridis", rasterized=True)
    heat_ax.set_yticks(experts, day.expert_labels)
    heat_ax.invert_yaxis()
    heat_ax.grid(False)
    heat_ax.set_ylabel("expert" if day.problem else "expert (patch size)")
    heat_ax.set_xlabel("time of day (h)")
    heat_ax.set_xlim(0, HOURS_PER_DAY)
    heat_ax.set_xticks(np.arange(0, HOURS_PER_DAY + 1, 3))
    figure.colorbar(mesh, ax=[line_ax, heat_ax], label="router probability", shrink=0.9)
    return figure


def _file_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).lower()
