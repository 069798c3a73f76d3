"""The records only the driver can write (a trial the scheduler pruned, one that crashed or was
retried, one a stop interrupted) and the derived files kept current as trials end.

Tune pickles a run's callbacks with the Tuner (tuner.pkl) and unpickles them on --resume: a
`LiveCallback` pickles as its key only and comes back as the current driver's instance.
"""

from __future__ import annotations

import contextlib
import errno
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from harness.outputs import write_outputs
from harness.records import TrialRecord, read_records, write_json, write_record
from harness.spec import Campaign
from harness.trial import latest_known, progress_path, trial_request

if TYPE_CHECKING:
    from harness.tuner import Interrupts

DERIVE_EVERY_S = 10.0
# What Tune says when a trial's snapshot names a checkpoint that a kill caught mid-rotation,
# and what the records and the console say instead.
LOST_CHECKPOINT = "does not exist on storage anymore"
LOST_CHECKPOINT_TEXT = "its newest checkpoint was lost when the driver died"
DISK_FULL = "No space left on device"
LOST_WORKER = ("ActorUnavailableError", "ActorDiedError", "NodeDiedError", "OwnerDiedError", "WorkerCrashedError")


def one_line(error: object) -> str:
    """The last meaningful line of an error or traceback text."""
    text = str(error).strip().splitlines()
    return next((line.strip() for line in reversed(text) if line.strip()), type(error).__name__ if error else "")


_ACTIVE: dict[str, tune.Callback] = {}


def _active_callback(key: str) -> tune.Callback:
    """The running driver's callback for a key: what a restored Tuner's pickled callback becomes."""
    return _ACTIVE.get(key) or tune.Callback()


class LiveCallback(tune.Callback):
    """A callback that Tune may pickle with the Tuner (tuner.pkl) and unpickle on --resume:
    it pickles as its key only and comes back as the current driver's instance."""

    def __init__(self, key: str):
        self.key = key
        _ACTIVE[key] = self

    def __reduce__(self):
        return _active_callback, (self.key,)


class RecordKeeper(LiveCallback):
    """Writes the records of trials that cannot write their own, and keeps the derived files
    (trials.csv, curves.csv, best.yaml) current as trials end.

    A full disk (ENOSPC, in a trial or here) stops the campaign: the space reserved at its start
    (`reserve`) is given back so that every record can still be written, and `interrupts` is
    asked to end the run. A write that fails for another reason is said in one line."""

    def __init__(self, spec: Campaign, campaign_dir: Path, log: Callable[[str], None], interrupts: Interrupts, reserve: Path | None = None):
        super().__init__(f"records:{campaign_dir}")
        self.spec, self.campaign_dir, self.log = spec, Path(campaign_dir), log
        self.interrupts, self.reserve = interrupts, reserve
        self.running: dict[str, Any] = {}
        self.last_derived = 0.0

    def disk_full(self) -> None:
        """Free the reserved space and stop the campaign: nothing more can be stored."""
        if self.reserve is not None:
            self.reserve.unlink(missing_ok=True)
        self.interrupts.stop(f"the storage {self.campaign_dir.parent} is full (no space left on device)")

    def write(self, record: TrialRecord, durable: bool = True) -> None:
        """Write a record; on a full disk give back the reserve, stop the campaign and retry once."""
        try:
            write_record(self.campaign_dir, record, durable)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                self.log(f"warning: could not write the record of trial {record.trial_id} ({error.strerror})")
                return
            self.disk_full()
            try:
                write_record(self.campaign_dir, record, durable)
            except OSError as again:
                self.log(f"warning: could not write the record of trial {record.trial_id} ({again.strerror})")

    def _known(self, trial) -> TrialRecord:
        """What is on disk about a trial, or a record built from its Tune config alone."""
        record = latest_known(self.campaign_dir, trial.trial_id)
        if record is not None:
            return record
        request = trial_request(trial.config, dict(getattr(self.spec, "fixed", {})))
        return TrialRecord(campaign=self.spec.name, trial_id=trial.trial_id, model=self.spec.model, dataset=request.dataset,
                           variant_display=request.display, seed=request.seed, cell=request.cell, varied=request.varied,
                           settings=request.settings)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running[trial.trial_id] = trial

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.pop(trial.trial_id, None)
        on_disk = latest_known(self.campaign_dir, trial.trial_id)
        if not (trial.last_result or {}).get("final") or on_disk is None or not on_disk.final:
            record = self._known(trial)
            best = min(record.curve, key=lambda row: row.get("val_mae", math.inf), default={})
            val = {m: best.get(f"val_{m}") for m in ("mae", "rmse", "mape")} if best else {}
            epochs = record.epochs or len(record.curve)
            self.write(replace(record, val=val, epochs=epochs).finish("pruned", f"stopped by the scheduler after epoch {epochs}"))
        self.derive()

    def on_trial_recover(self, iteration, trials, trial, **info):
        error = trial_error(trial)
        record = self._known(trial)
        if record.final:
            return  # it ended before the driver stopped; Tune's older snapshot does not know it
        record = replace(record, status="running", retries=record.retries + 1, last_error=error)
        if DISK_FULL in error:
            self.disk_full()
        self.write(record, durable=False)
        if progress_path(self.campaign_dir, trial.trial_id).is_file():  # the retry starts from what is on disk
            with contextlib.suppress(OSError):
                write_json(progress_path(self.campaign_dir, trial.trial_id), record.to_dict(), durable=False)
        what = "lost its worker or the machine it ran on" if error.startswith(LOST_WORKER) else f"failed ({error})"
        self.log(f"trial {trial.trial_id} {what}; retrying ({record.retries}/{self.spec.max_failures})")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.pop(trial.trial_id, None)
        error = trial_error(trial)
        record = self._known(trial)
        if record.final:
            return  # it finished and wrote its record; what failed came after (or Tune restored it)
        if error == LOST_CHECKPOINT_TEXT:
            record = record.finish("interrupted", f"{LOST_CHECKPOINT_TEXT}; it runs again from the start")
        else:
            if DISK_FULL in error:
                self.disk_full()
            record = replace(record, last_error=error).finish("failed", error)
        self.write(record)
        self.derive()

    def interrupted(self, reason: str) -> int:
        """Record every trial still running as interrupted; returns how many."""
        for trial in list(self.running.values()):
            record = self._known(trial)
            if not record.final:
                self.write(record.finish("interrupted", reason))
        count = len(self.running)
        self.running.clear()
        return count

    def derive(self, force: bool = False) -> None:
        """Regenerate the derived files, at most every DERIVE_EVERY_S unless forced."""
        if not force and time.monotonic() - self.last_derived < DERIVE_EVERY_S:
            return
        self.last_derived = time.monotonic()
        records, _ = read_records(self.campaign_dir)
        try:
            write_outputs(self.campaign_dir, self.spec, records)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                self.disk_full()
            self.log(f"warning: could not update trials.csv / curves.csv ({error.strerror}); the records are what counts")


def trial_error(trial) -> str:
    """One line describing why a trial failed (from the error files Tune wrote for it)."""
    error = None
    try:
        local = getattr(trial, "pickled_error_file", None)
        if local and Path(local).is_file():
            with open(local, "rb") as handle:
                error = pickle.load(handle)
        else:
            error = trial.get_pickled_error()
    except Exception:  # an exception class the driver cannot unpickle: fall back to the text
        error = None
    if error is not None:
        cause = getattr(error, "cause", None) or error
        text = f"{type(cause).__name__}: {one_line(cause)}"
    else:
        local = getattr(trial, "error_file", None)
        text = one_line((Path(local).read_text() if local and Path(local).is_file() else trial.get_error()) or "unknown error")
    return LOST_CHECKPOINT_TEXT if LOST_CHECKPOINT in text else text
