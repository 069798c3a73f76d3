"""What a campaign plans and what it still owes, counted from its records.

A grid campaign plans one trial per cell (an ablation's variant x dataset x seed, a sensitivity
study's base point and (parameter, value) points per dataset and seed); a sweep plans
`num_samples` trials per dataset. A trial whose record is final (ok, failed, diverged, pruned)
pays for its cell or one of its dataset's samples; an interrupted or still-"running" record
does not. `--resume` runs what is owed, and the campaign ends only when nothing is: this is how
a campaign never reports a truncated run as finished. Pure bookkeeping, no Ray.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records import RECORDS_FOLDER, TrialRecord, record_path
from harness.spec import AblationSpec, Campaign, GridSpec, SensitivitySpec, SweepSpec

SUPERSEDED_FOLDER = "superseded"
CELL_KEY = "cell"  # a grid trial's Tune config: {"cell": Cell.as_config()}
DATASET_KEY = "dataset"  # a sweep trial's Tune config: {**sampled values, "dataset": name}


@dataclass(frozen=True)
class Cell:
    """One planned trial of a grid campaign: its settings (before the model applies a variant's
    switches), the name tables show (`display`; empty: the variant's own) and what it varies."""

    key: str
    dataset: str
    display: str
    seed: int
    settings: dict[str, Any]
    varied: dict[str, Any] = field(default_factory=dict)

    def as_config(self) -> dict[str, Any]:
        """The Tune config of this cell's trial."""
        return {CELL_KEY: {"key": self.key, "dataset": self.dataset, "display": self.display, "seed": self.seed,
                           "settings": self.settings, "varied": self.varied}}


def cell_key(label: str, dataset: str, seed: int) -> str:
    """The name of a grid cell, as records and the plan show it."""
    return f"{label} | {dataset} | seed {seed}"


BASE_POINT = "base"


def grid_cells(spec: GridSpec) -> list[Cell]:
    """Every planned trial of a grid campaign, in table order: an ablation's variant x dataset x
    seed; a sensitivity study's base point and (parameter, value) points per dataset and seed."""
    if isinstance(spec, AblationSpec):
        return [
            Cell(cell_key(display, dataset, seed), dataset, display, seed, spec.settings_for(dataset, display, seed))
            for display in spec.variants
            for dataset in spec.datasets
            for seed in spec.seeds
        ]
    assert isinstance(spec, SensitivitySpec)
    cells = []
    for dataset in spec.datasets:
        for seed in spec.seeds:
            base = {**spec.base_for(dataset), "seed": seed}
            cells.append(Cell(cell_key(BASE_POINT, dataset, seed), dataset, "", seed, base))
            cells += [Cell(cell_key(f"{name}={value}", dataset, seed), dataset, "", seed, {**base, name: value}, {name: value})
                      for name, value in spec.points[dataset]]
    return cells


def planned_trials(spec: Campaign) -> int:
    """How many final records the finished campaign holds."""
    return spec.total_trials


@dataclass
class Owed:
    """What a campaign still has to run.

    cells: grid cells with no final record; samples: a sweep's missing trials per dataset;
    retry: per dataset, the sampled values of unfinished sweep trials (run those first);
    surplus: final records beyond the plan (a duplicate), as "<dataset or cell>: n extra".
    """

    cells: list[Cell] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    retry: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    surplus: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.cells) + sum(self.samples.values())

    def describe(self) -> str:
        """One line: what is missing."""
        if self.cells:
            shown = ", ".join(c.key for c in self.cells[:3]) + (f" and {len(self.cells) - 3} more" if len(self.cells) > 3 else "")
            return f"{len(self.cells)} planned trial(s) have no final record: {shown}"
        return "missing trials: " + ", ".join(f"{n} of {dataset}" for dataset, n in self.samples.items() if n)


def owed(spec: Campaign, records: list[TrialRecord]) -> Owed:
    """Compare the plan with the records on disk."""
    final = [r for r in records if r.final]
    if isinstance(spec, SweepSpec):
        return _owed_samples(spec, records, final)
    return _owed_cells(spec, final)


def _owed_cells(spec: GridSpec, final: list[TrialRecord]) -> Owed:
    done = Counter(r.cell for r in final)
    cells = grid_cells(spec)
    return Owed(
        cells=[c for c in cells if done[c.key] == 0],
        surplus=[f"{key}: {n - 1} extra" for key, n in done.items() if n > 1 and key in {c.key for c in cells}],
    )


def _owed_samples(spec: SweepSpec, records: list[TrialRecord], final: list[TrialRecord]) -> Owed:
    done = Counter(r.dataset for r in final)
    result = Owed()
    for dataset in spec.datasets:
        missing = spec.num_samples - done[dataset]
        if missing > 0:
            result.samples[dataset] = missing
            unfinished = [r.varied for r in records if r.dataset == dataset and not r.final and r.varied]
            result.retry[dataset] = unfinished[:missing]
        elif missing < 0:
            result.surplus.append(f"{dataset}: {-missing} extra")
    return result


def set_aside_unfinished(campaign_dir: Path, records: list[TrialRecord]) -> int:
    """Move the records of trials nothing will continue (interrupted, or "running" when their
    driver died) to records/superseded/, before what they owe runs again; returns how many.
    They are kept for the curious, but no longer count as trials of the campaign."""
    folder = Path(campaign_dir) / RECORDS_FOLDER / SUPERSEDED_FOLDER
    moved = 0
    for record in records:
        if not record.final:
            folder.mkdir(parents=True, exist_ok=True)
            record_path(campaign_dir, record.trial_id).replace(folder / f"{record.trial_id}.json")
            moved += 1
    return moved
