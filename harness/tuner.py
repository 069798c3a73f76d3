"""Ray on the driver side: starting Ray (or joining a cluster), one run of the campaign's Tuner
(fresh, or restored on --resume), and stopping it cleanly on Ctrl-C, SIGTERM or a full disk.

A campaign is one Tuner run at a time under <campaign>/ray/run-<n>. A sweep's Tuner serves every
dataset at once with the searcher and scheduler of `harness.search`; a grid campaign's Tuner runs
its cells (`harness.ledger`); the records only the driver can write come from `harness.keeper`.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune

from harness.data import PreparedData
from harness.errors import UsageError
from harness.keeper import one_line
from harness.ledger import CELL_KEY, Cell, Owed
from harness.search import PerDatasetScheduler, dataset_studies
from harness.spec import Campaign, SweepSpec
from harness.trial import TrialContext, run_trial

RUNS_FOLDER = "ray"
DRIVER_LOG = "ray-driver.log"
RESULT_BUFFER_LENGTH, RESULT_BUFFER_S = 64, 1.0


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


# --------------------------------------------------------------------------------------------
# Search: one Optuna study per dataset, served by one searcher.


# --------------------------------------------------------------------------------------------
# Records only the driver can write: pruned, crashed, retried and interrupted trials.

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
