"""The Ray Tune trainable of every campaign: plan the trial, train it with per-epoch reports and
checkpoints, and write its record.

A trial's Tune config is a grid cell ({"cell": {...}}, see harness.ledger) or a sweep's sampled
values plus {"dataset": name}. Everything else comes from the `TrialContext` the campaign binds
with `tune.with_parameters`, together with the prepared datasets (put into the object store once
by the driver and shared zero-copy by all trials).

The trial writes its own record: "running" when it starts, final when it ends (ok, diverged, or
failed when its settings are invalid in combination), and a progress snapshot with its curve
after every epoch (records/progress/), from which the driver writes the record of a trial that
the scheduler prunes, that crashes, or that an interrupt stops. Nothing here is model-specific:
a model's artifacts come from the hook on its registry entry.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from harness.cache import artifact_path, identity_key, lookup, publish, reuse, weights_path
from harness.data import PreparedData
from harness.experiment import run_planned
from harness.ledger import CELL_KEY, DATASET_KEY
from harness.loop import TrainState, device_label, resolve_device
from harness.plan import RunPlan, plan_run
from harness.records import COST_COLUMNS, RECORDS_FOLDER, TrialRecord, atomic_write, load_record, now, record_path, tune_metrics, write_json, write_record
from models.base import ConfigError, ForecastModel

CHECKPOINT_FILE = "train_state.pt"
CHECKPOINT_INTERVAL_S = 30.0
PROGRESS_FOLDER = "progress"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a campaign shares (small, picklable).

    fixed: a sweep's fixed settings (grid cells carry their own); checkpoint_every: save a
    checkpoint every N epochs, or (None) at the end of the first epoch that ends
    CHECKPOINT_INTERVAL_S or more after the trial's last checkpoint (or its start), so that a
    crash costs at most that much training and short trials pay nothing for checkpoints.
    """

    campaign: str
    model: str
    fixed: dict[str, Any]
    campaign_dir: str
    storage_root: str
    code_version: str
    use_cache: bool = True
    checkpoint_every: int | None = None


@dataclass(frozen=True)
class TrialRequest:
    """What a Tune config asks for: the dataset, the settings before planning, and labels."""

    dataset: str
    settings: dict[str, Any]
    display: str = ""
    seed: int | None = None
    cell: str = ""
    varied: dict[str, Any] = dataclasses.field(default_factory=dict)


def node_name() -> str:
    """This worker's machine and Ray node, e.g. 'gpu-07/3f2a9c1b'."""
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def trial_request(config: dict[str, Any], fixed: dict[str, Any]) -> TrialRequest:
    """Read a trial's Tune config (a grid cell, or a sweep's sample plus its dataset)."""
    if CELL_KEY in config:
        cell = config[CELL_KEY]
        return TrialRequest(cell["dataset"], dict(cell["settings"]), cell["display"], cell["seed"], cell["key"], dict(cell.get("varied", {})))
    sampled = {k: v for k, v in config.items() if k != DATASET_KEY}
    return TrialRequest(config[DATASET_KEY], {**fixed, **sampled}, varied=sampled)


def progress_path(campaign_dir: Path, trial_id: str) -> Path:
    """The running trial's latest snapshot (its record with the curve so far)."""
    return Path(campaign_dir) / RECORDS_FOLDER / PROGRESS_FOLDER / f"{trial_id}.json"


def latest_known(campaign_dir: Path, trial_id: str) -> TrialRecord | None:
    """What is on disk about a trial: its progress snapshot, else its record."""
    return load_record(progress_path(campaign_dir, trial_id)) or load_record(record_path(campaign_dir, trial_id))


def start_record(request: TrialRequest, context: TrialContext, trial_id: str, node: str) -> TrialRecord:
    """The record of a trial starting now; a retried or resumed trial keeps its history."""
    record = TrialRecord(
        campaign=context.campaign, trial_id=trial_id, model=context.model, dataset=request.dataset,
        variant_display=request.display, seed=request.seed, cell=request.cell, varied=request.varied,
        settings=request.settings, started=now(), nodes=[node],
    )
    previous = latest_known(Path(context.campaign_dir), trial_id)
    if previous is None or previous.final:
        return record
    nodes = previous.nodes if previous.nodes[-1:] == [node] else [*previous.nodes, node]
    return dataclasses.replace(record, started=previous.started or record.started, nodes=nodes, retries=previous.retries,
                               last_error=previous.last_error, notes=list(previous.notes))


def finish(record: TrialRecord, context: TrialContext) -> None:
    """Write the final record, drop the progress snapshot, and give Tune the final report."""
    campaign_dir = Path(context.campaign_dir)
    write_record(campaign_dir, record)
    progress_path(campaign_dir, record.trial_id).unlink(missing_ok=True)
    tune.report(tune_metrics(record))


class EpochReporter:
    """The training loop's per-epoch callback: progress snapshot, Tune report, checkpoint."""

    def __init__(self, record: TrialRecord, context: TrialContext, max_epochs: int, patience: int):
        self.record, self.context, self.max_epochs, self.patience = record, context, max_epochs, patience
        self.path = progress_path(Path(context.campaign_dir), record.trial_id)
        self.last_checkpoint = time.monotonic()

    def checkpoint_due(self, epoch: int, last: bool) -> bool:
        """Whether this epoch leaves a checkpoint (never the last: the trial's record follows)."""
        if last:
            return False
        if self.context.checkpoint_every is not None:
            return epoch % self.context.checkpoint_every == 0
        return time.monotonic() - self.last_checkpoint >= CHECKPOINT_INTERVAL_S

    def __call__(self, row: dict[str, Any], state: TrainState) -> None:
        snapshot = dataclasses.replace(self.record, epochs=state.epoch, best_epoch=state.best_epoch or None, curve=list(state.history))
        write_record_to(self.path, snapshot)
        # Tune checks that every result holds the objective metrics; the cost metrics a
        # multi-objective sweep may optimise are only measured at the end, so they are NaN here.
        last = state.epoch >= self.max_epochs or state.bad_epochs >= self.patience  # no epoch follows this one
        metrics = {**row, **{name: math.nan for name in COST_COLUMNS}, "final": False, "last": last}
        if not self.checkpoint_due(state.epoch, last):
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state.to_dict(), Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        self.last_checkpoint = time.monotonic()


def write_record_to(path: Path, record: TrialRecord) -> None:
    """A progress snapshot (not flushed to disk: the next epoch replaces it anyway)."""
    write_json(path, record.to_dict(), durable=False)


def resume_state() -> tuple[TrainState | None, str]:
    """The state to continue from (Tune's latest checkpoint of this trial), and a note when a
    damaged checkpoint made the trial start from scratch instead."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, ""
    try:
        with checkpoint.as_directory() as folder:
            state = TrainState.from_dict(torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True))
        return state, f"resumed from its checkpoint after epoch {state.epoch}"
    except Exception as error:  # a damaged checkpoint of any kind: never fail the trial for it
        return None, f"its checkpoint could not be read ({type(error).__name__}: {str(error)[:120]}); restarted from scratch"


def save_outputs(model: ForecastModel, plan: RunPlan, data: PreparedData, record: TrialRecord, campaign_dir: Path) -> dict[str, str]:
    """The trained weights and the model's artifacts (its registry hook, on one day of test
    windows); returns the artifacts' paths by kind, relative to the campaign folder."""
    weights = campaign_dir / weights_path(record.trial_id)
    atomic_write(weights, lambda path: torch.save({"model": plan.entry.name, "settings": plan.settings(), "state_dict": model.state_dict()}, path))
    if record.status != "ok" or plan.entry.artifacts is None:
        return {}
    split = data.split("test")
    history, target = split.batch(np.arange(min(data.meta().steps_per_day, len(split))))
    paths = {}
    for kind, arrays in plan.entry.artifacts(model, history, target, plan.train_config.batch_size).items():
        relative = artifact_path(record.trial_id, kind)
        atomic_write(campaign_dir / relative, lambda path, arrays=arrays: _save_npz(path, arrays))
        paths[kind] = str(relative)
    return paths


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would add ".npz" to a name
        np.savez(handle, **arrays)


def run_trial(config: dict[str, Any], context: TrialContext, datasets: dict[str, PreparedData]) -> None:
    """The Ray Tune trainable of every campaign."""
    trial_id = tune.get_context().get_trial_id()
    campaign_dir, storage_root = Path(context.campaign_dir), Path(context.storage_root)
    request = trial_request(config, context.fixed)
    finished = load_record(record_path(campaign_dir, trial_id))
    if finished is not None and finished.final:  # restored by Tune after it ended: report, never redo
        tune.report(tune_metrics(finished))
        return
    record = start_record(request, context, trial_id, node_name())
    try:
        plan = plan_run(context.model, request.settings)
    except ConfigError as error:  # valid alone, invalid in combination: a failed record, the campaign goes on
        finish(record.finish("failed", f"invalid settings: {error}"), context)
        return
    data = datasets[request.dataset]
    key = identity_key(plan.entry.name, plan.settings(), data.fingerprint, data.segments, context.code_version)
    record = dataclasses.replace(
        record, variant=plan.variant, variant_display=request.display or plan.entry.variant(plan.variant).display,
        seed=plan.train_config.seed, settings=plan.settings(), identity=key,
        device=device_label(resolve_device(plan.train_config.device)),  # known now: a pruned trial's record keeps it
    )
    cached = lookup(storage_root, key) if context.use_cache else None
    if cached is not None:
        finish(reuse(storage_root, key, cached, record, campaign_dir), context)
        return

    write_record(campaign_dir, record, durable=False)
    resume, note = resume_state()
    if note:
        record = dataclasses.replace(record, notes=[*record.notes, note])
    result = run_planned(
        plan, data, teacher_cache=storage_root / "teachers",
        on_epoch_end=EpochReporter(record, context, plan.train_config.max_epochs, plan.train_config.patience), resume=resume,
    )
    record = dataclasses.replace(record, **result.fields)
    record = dataclasses.replace(record, artifacts=save_outputs(result.model, plan, data, record, campaign_dir))
    record = record.finish(record.status, record.reason)
    if record.status == "ok":
        publish(storage_root, key, record, campaign_dir)
    finish(record, context)
