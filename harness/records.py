"""The trial record: the one contract between the runner and everything after it.

Every trial of a campaign leaves `<campaign>/records/<trial_id>.json`, written atomically when
the trial starts (status "running") and again when it ends, whatever its fate. `trials.csv`,
`curves.csv`, `best.yaml`, the report and `--resume`'s bookkeeping are all derived from these
files, so they can be rebuilt at any moment: during a campaign, after a crash, years later.

This module owns the record's fields, the columns derived from them, the horizons the tables
quote, the one atomic writer and the reader. It imports neither torch nor Ray.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

RECORDS_FOLDER = "records"
REPORTED_HORIZONS = (3, 6, 12)  # 1-based forecast steps the papers' tables quote
MEASURES = ("mae", "rmse", "mape")

# A trial's fate. The first four are final: the trial needs no more work. "interrupted" (the
# campaign was stopped, or its checkpoint was lost) and "running" (a driver died while it ran)
# are what `--resume` continues.
FINAL_STATUSES = ("ok", "failed", "diverged", "pruned")
STATUSES = (*FINAL_STATUSES, "interrupted", "running")


def now() -> str:
    """The current UTC time as ISO 8601 text (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TrialRecord:
    """Everything known about one trial.

    Identity: campaign, trial_id (Ray Tune's), model, dataset, variant (registry name),
    variant_display (the name tables show), seed, cell (the planned grid cell it fills, empty
    for sweeps) and varied (the settings the campaign chose for it: a sweep's sampled values, a
    sensitivity study's parameter).
    Fate: status (one of STATUSES), reason (one line; empty when ok), epochs, best_epoch.
    Accuracy (raw units, MAPE in percent): val = {mae, rmse, mape} of the restored best weights
    (or the best epoch reached, for a pruned trial); test = {"overall": {...}, "h3": {...}, ...}.
    Cost: parameters (used at inference), train_s_per_iter (median), infer_ms (one forward pass
    of a training-size batch, median), peak_mem_mb (see harness.memory), wall_s.
    Settings: every resolved model and training setting.
    Provenance: device (where it trained: cpu, or cuda:0 (GPU name)), cached (reused from the result
    cache), teacher (trained / reused / none),
    identity (the result-cache key), nodes (Ray nodes it ran on, in order), retries and
    last_error (of Tune's retries), notes, started / ended (UTC), curve (one dict per epoch),
    artifacts (kind -> path relative to the campaign folder).
    """

    campaign: str
    trial_id: str
    model: str
    dataset: str
    variant: str = ""
    variant_display: str = ""
    seed: int | None = None
    cell: str = ""
    varied: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    reason: str = ""
    epochs: int = 0
    best_epoch: int | None = None
    val: dict[str, float | None] = field(default_factory=dict)
    test: dict[str, dict[str, float | None]] = field(default_factory=dict)
    parameters: int | None = None
    train_s_per_iter: float | None = None
    infer_ms: float | None = None
    peak_mem_mb: float | None = None
    wall_s: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    cached: bool = False
    teacher: str = ""
    identity: str = ""
    nodes: list[str] = field(default_factory=list)
    retries: int = 0
    last_error: str = ""
    notes: list[str] = field(default_factory=list)
    started: str = ""
    ended: str = ""
    curve: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """Whether the trial needs no more work (ok, failed, diverged or pruned)."""
        return self.status in FINAL_STATUSES

    def finish(self, status: str, reason: str = "") -> TrialRecord:
        """This record with its fate set and its end time stamped."""
        if status not in STATUSES:
            raise ValueError(f"unknown trial status {status!r}; valid: {', '.join(STATUSES)}")
        return dataclasses.replace(self, status=status, reason=reason, ended=now())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN and inf become null)."""
        return _json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """A record from to_dict's output; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------
# Writing and reading.


def atomic_write(path: Path, fill: Callable[[Path], None], durable: bool = True) -> None:
    """Write `path` so that no reader and no crash ever sees half of it: `fill(temp)` writes the
    content to a uniquely named temporary file in the same folder, which then replaces `path` in
    one rename. `durable` also flushes it to the disk first (fsync), so that a power loss cannot
    leave an empty file behind the rename; progress snapshots may skip that. The one atomic
    writer of the harness: records, tables, reports, weights, artifacts and the result cache."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; records are for every reader
    try:
        fill(Path(tmp))
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """`atomic_write` of a text."""
    atomic_write(path, lambda tmp: tmp.write_text(text), durable)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_shared_dir(path: Path) -> Path:
    """mkdir -p with the permissions the umask allows (tempfile.mkdtemp's folders are 0700)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777 & ~_umask())
    return path


def _json_safe(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); tuples become lists; numpy scalars plain numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n", durable)


def record_path(campaign_dir: Path, trial_id: str) -> Path:
    """Where a trial's record lives."""
    return Path(campaign_dir) / RECORDS_FOLDER / f"{trial_id}.json"


def write_record(campaign_dir: Path, record: TrialRecord, durable: bool = True) -> Path:
    """Write (or replace) a trial's record atomically; returns its path."""
    path = record_path(campaign_dir, record.trial_id)
    write_json(path, record.to_dict(), durable)
    return path


def load_record(path: Path) -> TrialRecord | None:
    """One record file; None when it is unreadable or not a record (a note is the caller's)."""
    try:
        data = json.loads(Path(path).read_text())
        return TrialRecord.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def read_records(campaign_dir: Path) -> tuple[list[TrialRecord], list[str]]:
    """Every record of a campaign, in start order, and a note per file that could not be read."""
    folder = Path(campaign_dir) / RECORDS_FOLDER
    records, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = load_record(path)
        if record is None:
            problems.append(f"{RECORDS_FOLDER}/{path.name} is not a readable trial record")
        else:
            records.append(record)
    records.sort(key=lambda r: (r.started or "~", r.trial_id))
    return records, problems


# --------------------------------------------------------------------------------------------
# The tables derived from records: trials.csv (one row per trial) and curves.csv (per epoch).

IDENTITY_COLUMNS = ("trial_id", "campaign", "model", "dataset", "variant", "variant_display", "seed", "cell")
OUTCOME_COLUMNS = ("status", "error", "cached", "teacher", "node", "device", "retries", "epochs", "best_epoch", "started", "ended")
METRIC_COLUMNS = (
    *(f"val_{m}" for m in MEASURES),
    *(f"test_{m}" for m in MEASURES),
    *(f"test_{m}_h{h}" for h in REPORTED_HORIZONS for m in MEASURES),
)
COST_COLUMNS = ("parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb", "wall_s")
TRIAL_COLUMNS = IDENTITY_COLUMNS + OUTCOME_COLUMNS + METRIC_COLUMNS + COST_COLUMNS
INTEGER_COLUMNS = ("seed", "retries", "epochs", "best_epoch", "parameters")
CURVE_COLUMNS = ("trial_id", "epoch", "train_loss", "val_mae", "val_rmse", "val_mape", "lr", "epoch_s")
CONFIG_PREFIX = "config."


def horizon_key(horizon: int | None) -> str:
    """The key of `TrialRecord.test` for one horizon (None: the average over all steps)."""
    return "overall" if horizon is None else f"h{horizon}"


def record_row(record: TrialRecord) -> dict[str, Any]:
    """One trials.csv row: the record's scalars, its metrics flattened, every setting as config.<name>."""
    row: dict[str, Any] = {name: getattr(record, name) for name in IDENTITY_COLUMNS + COST_COLUMNS}
    row.update(
        status=record.status, error=record.reason, cached=record.cached, teacher=record.teacher,
        node=";".join(record.nodes), device=record.device, retries=record.retries, epochs=record.epochs, best_epoch=record.best_epoch,
        started=record.started, ended=record.ended,
    )
    for measure in MEASURES:
        row[f"val_{measure}"] = record.val.get(measure)
        row[f"test_{measure}"] = record.test.get(horizon_key(None), {}).get(measure)
        for horizon in REPORTED_HORIZONS:
            row[f"test_{measure}_h{horizon}"] = record.test.get(horizon_key(horizon), {}).get(measure)
    for key, value in record.settings.items():
        row[CONFIG_PREFIX + key] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value
    return row


def tune_metrics(record: TrialRecord) -> dict[str, Any]:
    """A final record as one result dict, as Tune and the searcher see it: its metrics (NaN where
    not measured) and its fate."""
    row = record_row(record)
    metrics = {name: math.nan if row[name] is None else row[name] for name in METRIC_COLUMNS + COST_COLUMNS}
    return {**metrics, "epoch": record.epochs, "status": record.status, "reason": record.reason, "final": True}


def trials_frame(records: list[TrialRecord]) -> pd.DataFrame:
    """The trials table: TRIAL_COLUMNS first (always present), then the config.<name> columns."""
    frame = pd.DataFrame([record_row(r) for r in records])
    extra = [c for c in frame.columns if c not in TRIAL_COLUMNS]
    frame = frame.reindex(columns=[*TRIAL_COLUMNS, *extra])
    for column in INTEGER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in METRIC_COLUMNS + COST_COLUMNS:
        if column not in INTEGER_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def curves_frame(records: list[TrialRecord]) -> pd.DataFrame:
    """The per-epoch table: CURVE_COLUMNS first, then each loss term (loss_<name>)."""
    rows = [{"trial_id": r.trial_id, **point} for r in records for point in r.curve]
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in CURVE_COLUMNS and c.startswith("loss_")]
    frame = frame.reindex(columns=[*CURVE_COLUMNS, *extra])
    frame["epoch"] = pd.to_numeric(frame["epoch"], errors="coerce").astype("Int64")
    return frame


def write_tables(campaign_dir: Path, records: list[TrialRecord]) -> None:
    """Regenerate trials.csv and curves.csv from the records, atomically."""
    campaign_dir = Path(campaign_dir)
    atomic_write_text(campaign_dir / "trials.csv", trials_frame(records).to_csv(index=False))
    atomic_write_text(campaign_dir / "curves.csv", curves_frame(records).to_csv(index=False))
