"""What every report section is given (`ReportContext`) and gives back (`Entry`, or `Skipped`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.report.load import METRIC_DESCRIPTIONS, PAPER_METRIC, Campaign, Objective, metric_columns
from harness.report.references import quoted_horizon


class Skipped(Exception):
    """A section had nothing to show; the message (the reason) goes into index.md."""


@dataclass(frozen=True)
class Entry:
    """One table or figure of the report: its files (relative to the report folder) and caption."""

    section: str
    title: str
    files: tuple[str, ...]
    caption: str


@dataclass
class ReportContext:
    """The campaign, the user's choices, the published numbers, where files go, and what was
    left out and why."""

    campaign: Campaign
    metric: str
    reference: str | None
    out: Path
    references: pd.DataFrame  # load_references' rows for the campaign's model
    notes: list[str] = field(default_factory=list)

    def horizon(self, dataset: str) -> str:
        """The horizon shown for `dataset`: the --metric choice, or for 'paper' the one its
        published numbers are quoted at (the average over all steps where none are published)."""
        if self.metric != PAPER_METRIC:
            return self.metric
        return quoted_horizon(self.references, dataset) or "overall"

    def columns(self, dataset: str) -> dict[str, str]:
        """The test columns shown for `dataset`: {"MAE": ..., "RMSE": ..., "MAPE": ...}."""
        return metric_columns(self.horizon(dataset))

    def metric_description(self, datasets: Sequence[str] | None = None) -> str:
        """What the test metrics are, e.g. 'average over all forecast steps', or per dataset
        ('METR-LA: horizon 12 (12 steps ahead); PEMS08: average over all forecast steps')."""
        datasets = self.campaign.datasets() if datasets is None else datasets
        horizons = {d: self.horizon(d) for d in datasets}
        if len(set(horizons.values())) <= 1:
            return METRIC_DESCRIPTIONS[next(iter(horizons.values()), self.horizon(""))]
        return "; ".join(f"{d}: {METRIC_DESCRIPTIONS[h]}" for d, h in horizons.items())

    def mixed_horizons(self, datasets: Sequence[str]) -> bool:
        """Whether the datasets are shown at different horizons (--metric paper)."""
        return len({self.horizon(d) for d in datasets}) > 1

    def selection(self, dataset: str) -> Objective:
        """What 'best trial' means: a sweep's first objective, otherwise the shown test MAE."""
        if self.campaign.kind == "sweep":
            return self.campaign.objectives()[0]
        return Objective(self.columns(dataset)["MAE"])

    def note(self, text: str) -> None:
        """Record something the report left out (shown under 'Left out, and why' in index.md)."""
        self.notes.append(text)
