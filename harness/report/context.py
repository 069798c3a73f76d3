"""What every report section is given (`ReportContext`) and gives back (`Entry`, or `Skipped`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.report.load import Campaign, Objective, metric_columns


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
    """The campaign, the user's choices, where files go, and what was left out and why."""

    campaign: Campaign
    metric: str
    reference: str | None
    out: Path
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> dict[str, str]:
        """The test columns of the chosen --metric: {"MAE": ..., "RMSE": ..., "MAPE": ...}."""
        return metric_columns(self.metric)

    @property
    def selection(self) -> Objective:
        """What 'best trial' means: a sweep's first objective, otherwise the chosen test MAE."""
        if self.campaign.kind == "sweep":
            return self.campaign.objectives()[0]
        return Objective(self.columns["MAE"])

    def note(self, text: str) -> None:
        """Record something the report left out (shown under 'Not produced' in index.md)."""
        self.notes.append(text)
