"""What the console shows while a campaign runs: one line per event, each with the elapsed time,
and a heartbeat at least every 30 s with every running trial's epoch and last validation MAE
and, once epochs have been timed, an estimate of the time left.

    [quickstart 00:41] 3/8 done (2 ok, 1 pruned), 2 running; best val_mae 21.40 (a1b2c3d4)
    [quickstart 01:10] running: a1b2c3d4 epoch 5/8 val MAE 22.1; e5f6a7b8 epoch 2/8 val MAE 30.4; ETA ~1m10s
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.spec import Campaign, SweepSpec
from harness.keeper import LiveCallback, trial_error

HEARTBEAT_S = 30.0


def clock(seconds: float) -> str:
    """Elapsed time as MM:SS, or H:MM:SS past an hour."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def duration(seconds: float) -> str:
    """A rough duration: 45s, 3m10s, 2h05m."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Running:
    """What the console knows of a running trial."""

    label: str
    epoch: int = 0
    val_mae: float | None = None


def estimate_left(remaining_epochs: float, epoch_s: float, slots: int) -> float:
    """Seconds left for `remaining_epochs` of `epoch_s` each on `slots` parallel trials."""
    return remaining_epochs * epoch_s / max(slots, 1)


class Progress(LiveCallback):
    """Tune callback printing the campaign's progress (see the module docstring)."""

    def __init__(self, spec: Campaign, total: int, max_epochs: int, slots: int, log: Callable[[str], None],
                 finished_before: set[str] = frozenset()):
        super().__init__(f"progress:{spec.name}")
        self.finished_before = set(finished_before)  # trials a restored run reports again: not counted
        self.spec, self.total, self.max_epochs, self.slots, self.log = spec, total, max_epochs, slots, log
        self.started = time.monotonic()
        objective = spec.objectives[0] if isinstance(spec, SweepSpec) else None
        self.metric = objective.metric if objective else "val_mae"
        self.sign = -1.0 if objective is not None and objective.mode == "max" else 1.0
        self.counts: dict[str, int] = {}
        self.running: dict[str, Running] = {}
        self.epoch_times: list[float] = []
        self.finished_epochs: list[int] = []
        self.best: tuple[float, str] | None = None
        self.last_heartbeat = time.monotonic()

    def say(self, text: str) -> None:
        self.log(f"[{self.spec.name} {clock(time.monotonic() - self.started)}] {text}")

    @staticmethod
    def label(trial) -> str:
        cell = trial.config.get("cell")
        return f"{trial.trial_id} ({cell['key']})" if cell else f"{trial.trial_id} ({trial.config.get('dataset', '')})"

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id not in self.finished_before:
            self.running.setdefault(trial.trial_id, Running(self.label(trial)))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id in self.finished_before:
            return
        running = self.running.setdefault(trial.trial_id, Running(self.label(trial)))
        if result.get("final"):
            value = result.get(self.metric)
            if result.get("status") == "ok" and value is not None and math.isfinite(value):
                if self.best is None or self.sign * value < self.sign * self.best[0]:
                    self.best = (value, trial.trial_id)
            self.finished_epochs.append(int(result.get("epoch") or running.epoch))
            return
        running.epoch = int(result.get("epoch", running.epoch))
        running.val_mae = result.get("val_mae")
        if result.get("epoch_s"):
            self.epoch_times.append(float(result["epoch_s"]))

    def _ended(self, trial, status: str, detail: str = "") -> None:
        if trial.trial_id in self.finished_before:
            return
        self.running.pop(trial.trial_id, None)
        self.counts[status] = self.counts.get(status, 0) + 1
        if detail:
            self.say(f"trial {self.label(trial)} {status}: {detail}")
        self.summary()

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        status = last.get("status", "ok") if last.get("final") else "pruned"
        self._ended(trial, status, "" if status in ("ok", "pruned") else str(last.get("reason", "")))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trial, "failed", trial_error(trial))

    def on_step_end(self, iteration, trials, **info):
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_S:
            self.heartbeat()

    def done(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> None:
        """The one-line state: done, by status, running, best so far."""
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        best = f"; best {self.metric} {self.best[0]:.4g} ({self.best[1]})" if self.best else ""
        self.say(f"{self.done()}/{self.total} done ({statuses}), {len(self.running)} running{best}")
        self.last_heartbeat = time.monotonic()

    def eta(self) -> str:
        """'ETA ~3m10s' from the measured epoch times, or '' before any epoch was timed."""
        if not self.epoch_times:
            return ""
        epoch_s = sum(self.epoch_times[-50:]) / len(self.epoch_times[-50:])
        expected = sum(self.finished_epochs) / len(self.finished_epochs) if self.finished_epochs else self.max_epochs
        waiting = max(self.total - self.done() - len(self.running), 0)
        left = sum(max(expected - r.epoch, 0) for r in self.running.values()) + waiting * expected
        return f"ETA ~{duration(estimate_left(left, epoch_s, self.slots))}"

    def heartbeat(self) -> None:
        """Every running trial's epoch and last validation MAE, and the time left."""
        parts = []
        for running in self.running.values():
            val = f" val MAE {running.val_mae:.4g}" if running.val_mae is not None and math.isfinite(running.val_mae) else ""
            parts.append(f"{running.label} epoch {running.epoch}/{self.max_epochs}{val}")
        eta = self.eta()
        self.say("running: " + ("; ".join(parts) or "nothing yet (waiting for resources)") + (f"; {eta}" if eta else ""))
        self.last_heartbeat = time.monotonic()
