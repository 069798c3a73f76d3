"""Read a campaign folder (results/<name>/, layout in results/README.md) into one `Campaign`.

Only the folder is read, never the data sets or the models (this package imports neither torch
nor Ray), so a report can be rebuilt offline from a copy, and while the campaign still runs. The
trials come from the trial records (records/*.json, through `harness.records`); a folder of an
older version without records/ is read from its trials.csv and curves.csv. What the user got
wrong (no folder, no manifest.json, no trials) raises `UsageError`; what is merely sparse or odd
(an unreadable record, a missing column) is read as "nothing there" and noted in `Campaign.notes`.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import UsageError
from harness.locks import process_alive, read_owner
from harness.storage import LOCK_FILE
from harness.records import (
    COST_COLUMNS,
    IDENTITY_COLUMNS,
    INTEGER_COLUMNS,
    METRIC_COLUMNS,
    OUTCOME_COLUMNS,
    RECORDS_FOLDER,
    REPORTED_HORIZONS,
    STATUSES,
    curves_frame,
    read_records,
    trials_frame,
)

STATUS_OK = "ok"
STATUS_PRUNED = "pruned"
STATUS_ORDER = STATUSES

# A horizon (a --metric choice other than "paper") -> suffix of the test columns (test_mae<suffix>, ...).
METRIC_SUFFIXES = {"overall": "", **{f"h{h}": f"_h{h}" for h in REPORTED_HORIZONS}}
METRIC_DESCRIPTIONS = {"overall": "average over all forecast steps", **{f"h{h}": f"horizon {h} ({h} steps ahead)" for h in REPORTED_HORIZONS}}
# --metric paper: each dataset at the horizon its published numbers are quoted at (see ReportContext).
PAPER_METRIC = "paper"
METRIC_CHOICES = (PAPER_METRIC, *METRIC_SUFFIXES)
MEASURES = ("MAE", "RMSE", "MAPE")
# Campaign kinds and the spec entry that tells each apart when a manifest does not name its kind.
SPEC_KEYS = {"ablation": "variants", "sensitivity": "vary", "sweep": "space"}
KINDS = tuple(SPEC_KEYS)
NUMERIC_COLUMNS = (*INTEGER_COLUMNS, *METRIC_COLUMNS, *COST_COLUMNS, "epochs", "best_epoch")


def check_metric(metric: str) -> str:
    """`metric` when it is a --metric choice; UsageError otherwise."""
    if metric not in METRIC_CHOICES:
        raise UsageError(f"--metric {metric!r}: expected one of {', '.join(METRIC_CHOICES)}")
    return metric


def metric_columns(horizon: str) -> dict[str, str]:
    """The test columns of a horizon: {"MAE": "test_mae_h3", "RMSE": ..., "MAPE": ...} for 'h3'."""
    suffix = METRIC_SUFFIXES[horizon]
    return {measure: f"test_{measure.lower()}{suffix}" for measure in MEASURES}


def column_horizon(column: str) -> str:
    """The horizon of a test column: 'test_mae_h12' -> 'h12', 'test_mae' -> 'overall'."""
    suffix = column.rsplit("_", 1)[-1]
    return suffix if suffix in METRIC_SUFFIXES else "overall"


def dataset_key(name: object) -> str:
    """How dataset names compare: case, '-' and '_' aside, and PEMSD<n> is PEMS0<n>.

    'METR-LA', 'metr_la' and 'MetrLA' are one dataset; so are 'PEMS08', 'PeMSD8' and 'pems-08'.
    """
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    return re.sub(r"^pemsd?0?(\d)$", r"pems0\1", key)


def value_unit(facts: dict[str, Any] | None) -> str:
    """The unit of a dataset's readings (and of its MAE/RMSE), from the manifest's facts about
    it: 'mph' for speed, 'veh/5 min' for flow; 'raw units' when the manifest does not say."""
    if not facts or "signal" not in facts:
        return "raw units"
    return "mph" if facts["signal"] == "speed" else f"veh/{facts.get('interval_minutes', 5)} min"


def column_label(column: str, unit: str | None = None) -> str:
    """A label for a trials.csv column, with `unit` for MAE/RMSE: ('val_mae', 'mph') -> 'Validation MAE (mph)'."""
    fixed = {
        "infer_ms": "Inference time (ms/batch)",
        "train_s_per_iter": "Training time (s/iteration)",
        "parameters": "Parameters",
        "peak_mem_mb": "Peak memory (MB)",
        "wall_s": "Wall time (s)",
    }
    if column in fixed:
        return fixed[column]
    split, _, rest = column.partition("_")
    measure, _, horizon = rest.partition("_")
    if split not in ("val", "test") or measure.upper() not in MEASURES:
        return column
    name = f"{'Validation' if split == 'val' else 'Test'} {measure.upper()}" + (f" @{horizon}" if horizon else "")
    if measure == "mape":
        return f"{name} (%)"
    return f"{name} ({unit})" if unit else name


@dataclass(frozen=True)
class Objective:
    """A sweep's objective: a trials.csv column and whether lower ('min') or higher is better."""

    metric: str
    mode: str = "min"

    @property
    def maximise(self) -> bool:
        return self.mode == "max"


def rank(trials: pd.DataFrame, objective: Objective) -> pd.DataFrame:
    """The trials with a finite value of the objective, best first."""
    if objective.metric not in trials:
        return trials.iloc[0:0]
    finite = trials[np.isfinite(pd.to_numeric(trials[objective.metric], errors="coerce"))]
    return finite.sort_values(objective.metric, ascending=not objective.maximise, kind="stable")


@dataclass
class Campaign:
    """One campaign folder, read: its manifest, its trials and its per-epoch curves."""

    path: Path
    manifest: dict[str, Any]
    trials: pd.DataFrame
    curves: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # trial_id -> kind -> relative path

    @property
    def name(self) -> str:
        return str(self.manifest.get("campaign") or self.path.name)

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.manifest.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def kind(self) -> str:
        """'sweep', 'ablation', 'sensitivity' (one parameter at a time), or 'unknown' when the
        manifest says none of them and the spec does not tell."""
        kind = self.manifest.get("kind")
        if kind in KINDS:
            return kind
        found = [k for k, key in SPEC_KEYS.items() if key in self.spec]
        return found[0] if found else "unknown"

    @property
    def model(self) -> str:
        model = self.spec.get("model")
        if isinstance(model, str) and model:
            return model
        models = self.trials["model"].dropna().unique()
        return str(models[0]) if len(models) else "unknown"

    def objectives(self) -> list[Objective]:
        """The spec's objective(s); validation MAE, minimised, when the spec names none."""
        raw = self.spec.get("objective")
        entries = raw if isinstance(raw, list) else [raw]
        objectives = [
            Objective(str(e["metric"]), "max" if str(e.get("mode", "")).startswith("max") else "min")
            for e in entries
            if isinstance(e, dict) and e.get("metric")
        ]
        return objectives or [Objective("val_mae")]

    @property
    def ok(self) -> pd.DataFrame:
        """The trials that finished (status ok); the only ones any mean is taken over."""
        return self.trials[self.trials["status"] == STATUS_OK]

    @property
    def unfinished(self) -> pd.DataFrame:
        """The failed, diverged, pruned (and unknown-status) trials."""
        return self.trials[self.trials["status"] != STATUS_OK]

    def datasets(self) -> list[str]:
        """Datasets in the spec's order, then any others the trials name, in record order."""
        spec_names = [d.get("name") if isinstance(d, dict) else d for d in self.spec.get("datasets") or []]
        seen = list(dict.fromkeys(self.trials["dataset"].dropna()))
        by_key = {dataset_key(name): name for name in seen}
        ordered = [by_key[dataset_key(n)] for n in spec_names if n is not None and dataset_key(n) in by_key]
        return list(dict.fromkeys(ordered + seen))

    def variants(self) -> list[str]:
        """Variant display names in the spec's order, then any others the trials name."""
        spec_variants = self.spec.get("variants")
        named = [str(name) for name in spec_variants] if isinstance(spec_variants, dict) else []
        seen = list(dict.fromkeys(self.trials["variant_display"].dropna()))
        return list(dict.fromkeys([*named, *seen]))

    def artifact_path(self, trial_id: str, kind: str) -> Path | None:
        """The file of a trial's artifact of one kind (e.g. "routing"), when it saved one."""
        relative = self.artifacts.get(str(trial_id), {}).get(kind) or f"artifacts/{trial_id}/{kind}.npz"
        path = self.path / relative
        return path if path.is_file() else None

    def unit(self, dataset: str) -> str:
        """The unit of a dataset's errors, as the manifest describes the dataset."""
        return value_unit((self.manifest.get("datasets") or {}).get(dataset))

    @property
    def speed_reference(self) -> str | None:
        """The variant (registry name) whose inference time efficiency tables divide by, if any."""
        return (self.manifest.get("model") or {}).get("speed_reference")

    @property
    def state(self) -> str:
        """'finished', 'running', 'interrupted', 'incomplete', 'stopped' (its driver died) or 'unknown'."""
        status = str(self.manifest.get("status", "unknown"))
        if status == "running" and not driver_alive(self.path):
            return "stopped"
        return status


def driver_alive(campaign_dir: Path) -> bool:
    """Whether a driver holds the campaign's lock and (on this host) its process still runs."""
    lock = campaign_dir / LOCK_FILE
    owner = read_owner(lock) if lock.is_file() else None
    if owner is None:
        return False
    return owner.host != socket.gethostname() or process_alive(owner.pid)


def load_campaign(path: Path) -> Campaign:
    """Read the campaign folder at `path`; raise UsageError when it is not a campaign folder."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path}: no such campaign folder")
    if not (path / "manifest.json").is_file():
        raise UsageError(f"{path}: no manifest.json (is this a campaign folder under results/?)")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path / 'manifest.json'}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{path / 'manifest.json'}: expected a JSON object")
    notes: list[str] = []
    artifacts: dict[str, dict[str, str]] = {}
    if (path / RECORDS_FOLDER).is_dir():
        records, problems = read_records(path)
        notes += problems
        trials = _normalise_trials(trials_frame(records))
        curves = _normalise_curves(curves_frame(records), notes)
        artifacts = {r.trial_id: dict(r.artifacts) for r in records if r.artifacts}
    elif (path / "trials.csv").is_file():
        trials = _normalise_trials(_read_csv(path / "trials.csv", notes))
        curves = _normalise_curves(_read_csv(path / "curves.csv", notes) if (path / "curves.csv").is_file() else None, notes)
    else:
        raise UsageError(f"{path}: no records/ folder and no trials.csv: no trial has started yet")
    trials = _fill_reached(trials, curves)
    campaign = Campaign(path=path, manifest=manifest, trials=trials, curves=curves, notes=notes, artifacts=artifacts)
    for objective in campaign.objectives():
        if objective.metric in trials:
            trials[objective.metric] = pd.to_numeric(trials[objective.metric], errors="coerce")
    return campaign


def _read_csv(path: Path, notes: list[str]) -> pd.DataFrame | None:
    """A CSV as a DataFrame; None (with a note) when it is empty or cannot be parsed."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        notes.append(f"{path.name} is empty")
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        notes.append(f"{path.name} could not be parsed ({str(error).splitlines()[0]})")
    return None


def _normalise_trials(trials: pd.DataFrame | None) -> pd.DataFrame:
    """The trials with every identity, outcome and metric column present and typed (missing ones empty)."""
    if trials is None:
        trials = pd.DataFrame()
    for column in IDENTITY_COLUMNS + OUTCOME_COLUMNS + NUMERIC_COLUMNS:
        if column not in trials:
            trials[column] = np.nan
    for column in NUMERIC_COLUMNS:
        trials[column] = pd.to_numeric(trials[column], errors="coerce").astype(float)
    for column in ("trial_id", "dataset", "variant", "variant_display", "model"):
        trials[column] = trials[column].map(lambda v: v if pd.isna(v) else str(v))
    trials["trial_id"] = trials["trial_id"].fillna(pd.Series([f"row{i + 1}" for i in range(len(trials))], index=trials.index))
    trials["variant_display"] = trials["variant_display"].fillna(trials["variant"])
    trials["status"] = trials["status"].map(lambda s: "unknown" if pd.isna(s) else str(s).strip().lower())
    trials["error"] = trials["error"].map(lambda e: "" if pd.isna(e) else str(e))
    trials["started"] = trials["started"].map(lambda t: str(t) if isinstance(t, str) and t else np.nan)
    # start order (the records are read in it; an older trials.csv may not be), unknown starts last
    return trials.sort_values("started", kind="stable", na_position="last").reset_index(drop=True)


def _fill_reached(trials: pd.DataFrame, curves: pd.DataFrame | None) -> pd.DataFrame:
    """A pruned trial's validation metrics where its record lacks them: the lowest value its
    per-epoch curve reached before it was stopped (what its record holds when it has them)."""
    if curves is None:
        return trials
    pruned = trials["status"] == STATUS_PRUNED
    for column in (f"val_{measure.lower()}" for measure in MEASURES):
        if column not in curves:
            continue
        best = pd.to_numeric(curves[column], errors="coerce").groupby(curves["trial_id"]).min()
        trials[column] = trials[column].fillna(trials["trial_id"].map(best).astype(float).where(pruned))
    return trials


def _normalise_curves(curves: pd.DataFrame | None, notes: list[str]) -> pd.DataFrame | None:
    """The per-epoch curves; None when there are none, or (with a note) they lack their key columns."""
    if curves is None or curves.empty:
        return None
    missing = [c for c in ("trial_id", "epoch", "val_mae") if c not in curves]
    if missing:
        notes.append(f"curves.csv lacks column(s) {', '.join(missing)}")
        return None
    curves["trial_id"] = curves["trial_id"].astype(str)
    for column in ("epoch", "val_mae"):
        curves[column] = pd.to_numeric(curves[column], errors="coerce")
    return curves
