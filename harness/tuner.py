"""Everything Ray on the driver side: starting Ray, the Tuner with its searcher and scheduler,
restoring it on --resume, the callback that writes the records only the driver can write, and
stopping cleanly on Ctrl-C or SIGTERM.

A campaign is one Tuner run at a time under <campaign>/ray/run-<n>. A sweep's Tuner serves every
dataset at once: `DatasetStudies` asks one Optuna study per dataset in turn (each study in the
campaign's live journal) and `PerDatasetScheduler` gives each dataset its own ASHA, so a cluster
never idles while one dataset's last trials finish and no dataset's trials are pruned by
another's scale of error. A grid campaign's Tuner runs its cells (`harness.ledger`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from harness.data import PreparedData
from harness.errors import UsageError
from harness.ledger import CELL_KEY, DATASET_KEY, Cell, Owed
from harness.outputs import write_outputs
from harness.records import TrialRecord, read_records, write_json, write_record
from harness.space import DefineByRun, make_sampler
from harness.spec import Campaign, SweepSpec
from harness.trial import TrialContext, latest_known, progress_path, run_trial, trial_request

RUNS_FOLDER = "ray"
JOURNAL_FILE = "optuna_journal.log"
DRIVER_LOG = "ray-driver.log"
DERIVE_EVERY_S = 10.0
RESULT_BUFFER_LENGTH, RESULT_BUFFER_S = 64, 1.0
# What Tune says when a trial's snapshot names a checkpoint that a kill caught mid-rotation,
# and what the records and the console say instead.
LOST_CHECKPOINT = "does not exist on storage anymore"
LOST_CHECKPOINT_TEXT = "its newest checkpoint was lost when the driver died"
DISK_FULL = "No space left on device"
LOST_WORKER = ("ActorUnavailableError", "ActorDiedError", "NodeDiedError", "OwnerDiedError", "WorkerCrashedError")


# --------------------------------------------------------------------------------------------
# Ray itself.


def start_ray(address: str | None, campaign_dir: Path) -> None:
    """Join a cluster (--address / RAY_ADDRESS) or start a private local Ray on loopback.

    A local campaign never joins someone else's Ray on the same machine. Ray's own warnings and
    tracebacks go to <campaign>/ray-driver.log; the console gets one line per event.
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's legacy output, silent at verbose=0
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours forwards to Tune (see Interrupts)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "60")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"--address {address}: cannot join the Ray cluster ({one_line(error)})") from None
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **kwargs)
    _quiet_ray_loggers(Path(campaign_dir) / DRIVER_LOG)



class QuietFileHandler(logging.FileHandler):
    """A log file that never prints its own write errors (a full disk) over the console."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _quiet_ray_loggers(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = QuietFileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("ray", "ray.tune", "ray.train"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes of Ray's retries, when HOST:PORT does not answer."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UsageError(f"--address {address}: cannot join the Ray cluster ({error.strerror or error})") from None


@dataclass(frozen=True)
class Cluster:
    """What Ray offers: alive nodes, total CPUs and GPUs, and the largest node."""

    nodes: int
    cpus: float
    gpus: float
    largest: tuple[float, float]

    @classmethod
    def current(cls) -> Cluster:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        sizes = [(n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in alive]
        return cls(len(alive), sum(c for c, _ in sizes), sum(g for _, g in sizes), max(sizes, default=(0.0, 0.0)))

    def slots(self, spec: Campaign) -> int:
        """How many trials can run at once (the campaign's limit, then what fits)."""
        by_cpu = math.floor(self.cpus / spec.resources.cpu) if spec.resources.cpu else spec.max_concurrent
        by_gpu = math.floor(self.gpus / spec.resources.gpu) if spec.resources.gpu else spec.max_concurrent
        return max(1, min(spec.max_concurrent, by_cpu, by_gpu))

    def check_fits(self, spec: Campaign) -> None:
        """Fail early when no node could ever run one trial (it would wait forever)."""
        cpu, gpu = self.largest
        if cpu < spec.resources.cpu or gpu < spec.resources.gpu:
            raise UsageError(
                f"{spec.source}: resources: a trial asks for {spec.resources.cpu:g} cpu and {spec.resources.gpu:g} gpu, "
                f"but the largest node has {cpu:g} cpu and {gpu:g} gpu"
            )


def one_line(error: object) -> str:
    """The last meaningful line of an error or traceback text."""
    text = str(error).strip().splitlines()
    return next((line.strip() for line in reversed(text) if line.strip()), type(error).__name__ if error else "")


# --------------------------------------------------------------------------------------------
# Search: one Optuna study per dataset, served by one searcher.


class RecordedOptunaSearch(OptunaSearch):
    """OptunaSearch that tells its study what the records say: a trial the scheduler stopped is
    PRUNED (not COMPLETE with an early epoch's value), a trial that failed or diverged FAILs,
    and every trial carries its Tune id and status as user attributes. A trial the study
    already holds as finished (it ended after the searcher's last saved state, before a crash)
    is left as it is."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and not result.get("final"):
            try:
                super().on_trial_result(trial_id, result)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return  # a trial restored after its searcher state was saved: nothing to tell
        result = result or {}
        status = result.get("status") if result.get("final") else ("failed" if error else "pruned")
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        values = [result.get(m) for m in metrics]
        finished = status == "ok" and all(v is not None and math.isfinite(v) for v in values)
        try:
            ot_trial.set_user_attr("tune_trial_id", trial_id)
            ot_trial.set_user_attr("status", status if finished or status != "ok" else "failed")
            if finished:
                self._ot_study.tell(ot_trial, values if len(values) > 1 else values[0])
            else:
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED if status == "pruned" else optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
        self._completed_trials.add(trial_id)


class DatasetStudies(Searcher):
    """Serves one Optuna study per dataset from one Tuner: suggestions go round the datasets
    that still have budget; results go back to the study their trial came from."""

    def __init__(self, studies: dict[str, RecordedOptunaSearch], budgets: dict[str, int], metric: str | list[str], mode: str | list[str]):
        super().__init__(metric=metric, mode=mode)
        self.studies = studies
        self.budgets = dict(budgets)
        self.owner: dict[str, str] = {}
        self._turn = 0

    def suggest(self, trial_id: str) -> dict | None:
        open_datasets = [d for d, n in self.budgets.items() if n > 0]
        if not open_datasets:
            return Searcher.FINISHED
        dataset = open_datasets[self._turn % len(open_datasets)]
        self._turn += 1
        config = self.studies[dataset].suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        self.budgets[dataset] -= 1
        self.owner[trial_id] = dataset
        return {**config, DATASET_KEY: dataset}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner:
            self.studies[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.owner:
            self.studies[self.owner[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__.copy(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


def journal_storage(campaign_dir: Path) -> optuna.storages.JournalStorage:
    """The campaign's live Optuna journal (`optuna-dashboard <campaign>/optuna_journal.log`)."""
    backend = optuna.storages.journal.JournalFileBackend(str(Path(campaign_dir) / JOURNAL_FILE))
    return optuna.storages.JournalStorage(backend)


def study_name(spec: SweepSpec, dataset: str) -> str:
    return f"{spec.name}/{dataset}"


def dataset_studies(spec: SweepSpec, campaign_dir: Path, budgets: dict[str, int], retry: dict[str, list[dict[str, Any]]]) -> DatasetStudies:
    """The searcher of a sweep: each dataset's study loaded from (or created in) the journal,
    with the sampled values of unfinished trials queued first."""
    metrics = [o.metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    metric, mode = (metrics[0], modes[0]) if len(metrics) == 1 else (metrics, modes)
    storage = journal_storage(campaign_dir)
    studies = {}
    for dataset, budget in budgets.items():
        if budget <= 0:
            continue
        studies[dataset] = RecordedOptunaSearch(
            space=DefineByRun(spec.space), metric=metric, mode=mode, sampler=make_sampler(spec),
            study_name=study_name(spec, dataset), storage=storage, points_to_evaluate=retry.get(dataset) or None,
        )
    return DatasetStudies(studies, {d: n for d, n in budgets.items() if n > 0}, metric, mode)


def fail_stale_study_trials(spec: SweepSpec, campaign_dir: Path) -> None:
    """Trials a dead driver left RUNNING in the journal are marked FAIL (they were re-run)."""
    storage = journal_storage(campaign_dir)
    for dataset in spec.datasets:
        try:
            study = optuna.load_study(study_name=study_name(spec, dataset), storage=storage)
        except KeyError:
            continue
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


class PerDatasetScheduler(FIFOScheduler):
    """ASHA per dataset: trials are only compared with trials of their own dataset."""

    def __init__(self, grace_period: int, reduction_factor: float, metric: str, mode: str):
        super().__init__()
        self._supports_buffered_results = False  # ASHA decides on every epoch
        self.options = {"time_attr": "training_iteration", "metric": metric, "mode": mode, "grace_period": grace_period,
                        "reduction_factor": reduction_factor, "max_t": 100_000}  # max_t: max_epochs is the limit
        self.by_dataset: dict[str, ASHAScheduler] = {}

    def _for(self, trial) -> ASHAScheduler:
        dataset = trial.config.get(DATASET_KEY, "")
        if dataset not in self.by_dataset:
            self.by_dataset[dataset] = ASHAScheduler(**self.options)
        return self.by_dataset[dataset]

    def on_trial_add(self, tune_controller, trial) -> None:
        self._for(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get("final") or result.get("last"):
            return TrialScheduler.CONTINUE  # its training is over: a trial is never pruned after its last epoch
        return self._for(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._for(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._for(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"ASHA per dataset ({', '.join(self.by_dataset)})"

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__.copy(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


# --------------------------------------------------------------------------------------------
# Records only the driver can write: pruned, crashed, retried and interrupted trials.

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


# --------------------------------------------------------------------------------------------
# Interrupts.


class Interrupts:
    """Stops the run cleanly: on Ctrl-C or SIGTERM, or when the campaign asks (a full disk).

    The first stop asks Tune to end the run (it saves its state and ends the trials; the
    records of running trials are written as interrupted); a second signal stops the driver at
    once. `signum` is the signal that stopped the run, `reason` says why in words.
    """

    def __init__(self):
        self.signum: int | None = None
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def stop(self, reason: str, signum: int | None = None) -> None:
        """End the run at Tune's next step (idempotent: the first reason stays)."""
        if self.stopped:
            return
        self.reason, self.signum = reason, signum
        tune_handler = signal.getsignal(signal.SIGUSR1)  # Tune's own "stop the run" handler, set during fit()
        if callable(tune_handler):
            tune_handler(signal.SIGUSR1, None)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.reason = None  # a signal overrides a pending reason
        self.stop("the campaign was stopped (Ctrl-C)" if signum == signal.SIGINT else "the campaign was stopped (SIGTERM)", signum)

    def __enter__(self) -> Interrupts:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# --------------------------------------------------------------------------------------------
# One Tuner run.


@dataclass
class TunerRun:
    """What one run of the campaign's Tuner is to do (a fresh run, or a restored one)."""

    label: str
    cells: list[Cell] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    retry: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def for_owed(cls, label: str, owed: Owed) -> TunerRun:
        return cls(label, list(owed.cells), dict(owed.samples), dict(owed.retry))

    @property
    def trials(self) -> int:
        return len(self.cells) + sum(self.samples.values())


def runs_dir(campaign_dir: Path) -> Path:
    return Path(campaign_dir) / RUNS_FOLDER


def restorable(campaign_dir: Path, label: str) -> bool:
    """Whether a run left enough of Tune's state to continue it (the Tuner and an experiment state)."""
    path = runs_dir(campaign_dir) / label
    return tune.Tuner.can_restore(str(path)) and any(path.glob("experiment_state*.json"))


def _trainable(spec: Campaign, context: TrialContext, datasets: dict[str, PreparedData]):
    resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(run_trial, context=context, datasets=datasets), resources)


def _run_config(spec: Campaign, label: str, campaign_dir: Path, callbacks: list[tune.Callback]) -> tune.RunConfig:
    return tune.RunConfig(
        name=label,
        storage_path=str(runs_dir(campaign_dir)),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=callbacks,
        verbose=0,
    )


def run(spec: Campaign, work: TunerRun, context: TrialContext, datasets: dict[str, PreparedData], callbacks: list[tune.Callback],
        interrupts: Interrupts, restore: bool) -> None:
    """Run (or, with `restore`, continue) one Tuner of the campaign until it ends or is interrupted."""
    campaign_dir = Path(context.campaign_dir)
    trainable = _trainable(spec, context, datasets)
    path = str(runs_dir(campaign_dir) / work.label)
    # Without a scheduler that acts on every epoch, a trial's epochs reach the driver in batches
    # (at most every RESULT_BUFFER_S): a round trip to the driver per epoch costs ~10 ms.
    asha = isinstance(spec, SweepSpec) and spec.scheduler.type == "asha"
    os.environ["TUNE_RESULT_BUFFER_LENGTH"] = "1" if asha else str(RESULT_BUFFER_LENGTH)
    os.environ["TUNE_RESULT_BUFFER_MIN_TIME_S"] = str(RESULT_BUFFER_S)
    if restore:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False, restart_errored=False)
    elif isinstance(spec, SweepSpec):
        searcher = dataset_studies(spec, campaign_dir, work.samples, work.retry)
        scheduler = None
        if spec.scheduler.type == "asha":
            scheduler = PerDatasetScheduler(spec.scheduler.grace_period, spec.scheduler.reduction_factor, spec.objectives[0].metric, spec.objectives[0].mode)
        tune_config = tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=work.trials,
                                      max_concurrent_trials=spec.max_concurrent, reuse_actors=True)
        tuner = tune.Tuner(trainable, tune_config=tune_config, run_config=_run_config(spec, work.label, campaign_dir, callbacks))
    else:
        tune_config = tune.TuneConfig(max_concurrent_trials=spec.max_concurrent, reuse_actors=True)
        param_space = {CELL_KEY: tune.grid_search([c.as_config()[CELL_KEY] for c in work.cells])}
        tuner = tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=_run_config(spec, work.label, campaign_dir, callbacks))
    with interrupts:
        tuner.fit()
