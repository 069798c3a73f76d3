"""The files derived from a campaign's records: trials.csv, curves.csv and, for sweeps, best.yaml.

They are regenerated as trials end (harness.tuner throttles it) and once more at the end, so
they are always current; deleting them loses nothing (`python -m harness.report DIR` and the
next run rebuild them from records/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.records import TrialRecord, atomic_write_text, write_tables
from harness.spec import Campaign, SweepSpec

BEST_FILE = "best.yaml"


def best_config(spec: SweepSpec, records: list[TrialRecord]) -> dict[str, Any] | None:
    """best.yaml: the best finished trial of every dataset on the first objective.

    Each dataset's `config` is the file's own `fixed` settings (without --smoke's training
    settings) plus the searched values of its best trial; `config` at the top is the first
    dataset's, for campaigns that take one base for every dataset. None when no trial finished.
    """
    objective = spec.objectives[0]
    pick = min if objective.mode == "min" else max
    per_dataset = {}
    for dataset in spec.datasets:
        done = [r for r in records if r.dataset == dataset and r.status == "ok" and _objective_value(r, objective.metric) is not None]
        if done:
            best = pick(done, key=lambda r: _objective_value(r, objective.metric))
            config = {**dict(spec.user_fixed), **{p.name: best.settings[p.name] for p in spec.space}}
            per_dataset[dataset] = {"trial_id": best.trial_id, "value": _objective_value(best, objective.metric), "config": config}
    if not per_dataset:
        return None
    return {
        "model": spec.model,
        "objective": {"metric": objective.metric, "mode": objective.mode},
        "smoke": spec.smoke,
        "config": next(iter(per_dataset.values()))["config"],
        "per_dataset": per_dataset,
    }


def _objective_value(record: TrialRecord, metric: str) -> float | None:
    """The value of an objective metric (val_mae, infer_ms, ...) in a record."""
    if metric.startswith("val_"):
        return record.val.get(metric.removeprefix("val_"))
    return getattr(record, metric, None)


def write_outputs(campaign_dir: Path, spec: Campaign, records: list[TrialRecord]) -> None:
    """Regenerate every derived file from the records."""
    write_tables(campaign_dir, records)
    if isinstance(spec, SweepSpec):
        best = best_config(spec, records)
        if best is not None:
            atomic_write_text(Path(campaign_dir) / BEST_FILE, yaml.safe_dump(best, sort_keys=False))
