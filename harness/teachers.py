"""The teacher cache: each LightST teacher is trained once and reused by every student trial.

A teacher depends only on (dataset and its content fingerprint, split, teacher config, training
settings and seed). Those inputs are hashed into a key; the teacher lives in

    <cache_dir>/<key>/teacher.pt    its state_dict, written to a temp file then renamed (atomic)
    <cache_dir>/<key>/meta.json     the key inputs, its validation metrics, who trained it, when
    <cache_dir>/<key>/train.lock    present while someone trains it

The cache folder sits inside the campaign's storage, so trials on several processes or cluster
nodes sharing a filesystem share it. The lock is a file created with O_CREAT | O_EXCL (atomic on
local filesystems and NFS v3+) holding the trainer's host, pid and start time; a heartbeat thread
rewrites it with a growing beat count while training (content, not only mtime, so NFS attribute
caching cannot hide a beat). A waiter polls; it breaks the lock and trains itself when the
trainer's process is gone (same host) or when the lock has not changed for `stale_after_s`
seconds of the waiter's own clock (so clock skew between nodes does not matter).
Since teacher.pt only ever appears whole, a crashed trainer leaves nothing loadable; a
teacher.pt that does not load is treated as absent and trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from harness.data import PreparedData
from harness.records import write_json
from harness.train import TrainConfig, fit
from models.base import ForecastModel
from models.config import as_dict
from models.registry import build_model, get_model

CACHE_FORMAT = 1  # part of the key: bump when the stored layout or the teacher's code changes meaning
WEIGHTS_FILE = "teacher.pt"
META_FILE = "meta.json"
LOCK_FILE = "train.lock"
# What torch.load / load_state_dict raise on a missing, truncated, garbled or mismatched file.
UNREADABLE_WEIGHTS = (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError, AttributeError, pickle.UnpicklingError)


def teacher_key_inputs(
    teacher_name: str, teacher_overrides: Mapping[str, Any], data: PreparedData, train_config: TrainConfig
) -> dict[str, Any]:
    """Everything a trained teacher depends on, as plain JSON data (the device is left out)."""
    meta = data.meta()
    train = as_dict(train_config)
    train.pop("device")
    return {
        "format": CACHE_FORMAT,
        "teacher": teacher_name,
        "config": as_dict(get_model(teacher_name).make_config(teacher_overrides)),
        "dataset": meta.name,
        "fingerprint": data.fingerprint,
        "segments": {name: list(bounds) for name, bounds in data.segments.items()},
        "input_len": meta.input_len,
        "output_len": meta.output_len,
        "train": train,
    }


def teacher_key(inputs: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the key inputs."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class LockOwner:
    """Who holds a training lock, as written in the lock file."""

    host: str
    pid: int
    started: str

    @classmethod
    def me(cls) -> LockOwner:
        return cls(socket.gethostname(), os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"))

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} (since {self.started})"


def lock_content(owner: LockOwner, beats: int) -> str:
    """What a lock file holds: its owner and how many heartbeats it has made."""
    return json.dumps({"owner": asdict(owner), "heartbeat": beats})


class TrainingLock:
    """The exclusive right to train one teacher; a heartbeat thread keeps it fresh."""

    def __init__(self, path: Path, owner: LockOwner, heartbeat_s: float):
        self.path = path
        self.owner = owner
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)

    @classmethod
    def acquire(cls, path: Path, heartbeat_s: float) -> TrainingLock | None:
        """Create the lock file exclusively; None when someone else holds it."""
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        lock = cls(path, LockOwner.me(), heartbeat_s)
        with os.fdopen(fd, "w") as handle:
            handle.write(lock_content(lock.owner, 0))
        lock._heartbeat.start()
        return lock

    def _beat(self, interval_s: float) -> None:
        beats = 0
        while not self._stop.wait(interval_s):
            beats += 1
            try:
                fd = os.open(self.path, os.O_WRONLY)  # no O_CREAT: never revive a lock a waiter broke
            except FileNotFoundError:
                return
            with os.fdopen(fd, "w") as handle:
                handle.write(lock_content(self.owner, beats))
                handle.truncate()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file."""
        self._stop.set()
        self._heartbeat.join()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> TrainingLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def read_owner(path: Path) -> LockOwner | None:
    """The owner written in a lock file; None when it is unreadable or not written yet."""
    try:
        return LockOwner(**json.loads(path.read_text())["owner"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class LockWatch:
    """A waiter's view of someone else's lock: stale when its process is gone or the lock (its
    mtime and heartbeat count) has not changed for `stale_after_s` of this process's clock."""

    def __init__(self, path: Path, stale_after_s: float):
        self.path = path
        self.stale_after_s = stale_after_s
        self._seen: tuple[int, str] | None = None
        self._seen_at = 0.0

    def _signature(self) -> tuple[int, str] | None:
        try:
            return self.path.stat().st_mtime_ns, self.path.read_text()
        except FileNotFoundError:
            return None

    def stale_reason(self) -> str | None:
        """Why the lock is stale, or None while it looks alive (or is gone)."""
        signature = self._signature()
        if signature is None:
            return None
        now = time.monotonic()
        if signature != self._seen:
            self._seen, self._seen_at = signature, now
        owner = read_owner(self.path)
        if owner is not None and owner.host == socket.gethostname() and not process_alive(owner.pid):
            return f"its trainer {owner} is no longer running"
        if now - self._seen_at > self.stale_after_s:
            return f"its heartbeat stopped {now - self._seen_at:.0f} s ago (trainer {owner or 'unknown'})"
        return None

    def break_if_unchanged(self) -> None:
        """Remove the lock, unless it changed since it was judged stale (a new trainer took it).

        Two waiters breaking the same stale lock at the same instant may both train; both
        results are whole and equivalent, so this costs time, never correctness.
        """
        if self._seen is not None and self._signature() == self._seen:
            self.path.unlink(missing_ok=True)
        self._seen = None


def _build(teacher_name: str, teacher_overrides: Mapping[str, Any], data: PreparedData, seed: int) -> ForecastModel:
    """The untrained teacher, initialised from `seed` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(teacher_name, data.meta(), teacher_overrides)


def _freeze(model: ForecastModel) -> ForecastModel:
    model.requires_grad_(False)
    return model.eval()


def _load(folder: Path, teacher_name: str, teacher_overrides: Mapping[str, Any], data: PreparedData) -> ForecastModel:
    """The stored teacher; raises one of UNREADABLE_WEIGHTS when it is missing or damaged."""
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model = _build(teacher_name, teacher_overrides, data, seed=0)  # weights are overwritten
    model.load_state_dict(state)
    return _freeze(model)


def _save_atomically(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """torch.save to a temp file beside `path`, then rename it: `path` only ever appears whole."""
    temp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _train(
    folder: Path,
    teacher_name: str,
    teacher_overrides: Mapping[str, Any],
    data: PreparedData,
    train_config: TrainConfig,
    inputs: Mapping[str, Any],
    log: Callable[[str], None],
) -> ForecastModel:
    """Train the teacher (the caller holds the lock) and store it; teacher.pt is written last."""
    for leftover in folder.glob(f".{WEIGHTS_FILE}.*.tmp"):  # from a trainer that crashed
        leftover.unlink(missing_ok=True)
    model = _build(teacher_name, teacher_overrides, data, train_config.seed)
    with torch.random.fork_rng(devices=[]):  # whether trained or reused, the caller's RNG is the same
        result = fit(model, data, train_config, log=log)
    if result.status != "ok":
        log(f"teacher {folder.name[:12]}: training ended {result.status}: {result.reason}; storing its best weights")
    write_json(
        folder / META_FILE,
        {
            "key": folder.name,
            "inputs": dict(inputs),
            "status": result.status,
            "reason": result.reason,
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "best_val_mae": result.best_val_mae,
            "train_seconds": result.train_seconds,
            "trained_by": asdict(LockOwner.me()),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    _save_atomically({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / WEIGHTS_FILE)
    return _freeze(model)


def obtain_teacher(
    teacher_name: str,
    teacher_overrides: dict,
    data: PreparedData,
    train_config: TrainConfig,
    cache_dir: Path,
    log: Callable[[str], None] = print,
    *,
    stale_after_s: float = 60.0,
) -> tuple[ForecastModel, str]:
    """The trained, frozen teacher for these settings and whether this call "trained" or "reused" it.

    Loads it from `cache_dir` when present; otherwise trains it (with harness.train.fit) and
    stores it, or waits while another process or node trains it. A trainer whose lock has been
    stale for `stale_after_s` seconds is presumed dead and the teacher is trained again here.
    """
    inputs = teacher_key_inputs(teacher_name, teacher_overrides, data, train_config)
    key = teacher_key(inputs)
    folder = Path(cache_dir) / key
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_FILE
    watch = LockWatch(lock_path, stale_after_s)
    poll_s = min(2.0, stale_after_s / 10.0)
    last_notice = ""

    def notice(message: str) -> None:
        nonlocal last_notice
        if message != last_notice:
            log(f"teacher {key[:12]}: {message}")
            last_notice = message

    def stored() -> ForecastModel | None:
        if not (folder / WEIGHTS_FILE).exists():
            return None
        try:
            return _load(folder, teacher_name, teacher_overrides, data)
        except UNREADABLE_WEIGHTS as error:
            notice(f"stored {WEIGHTS_FILE} does not load ({type(error).__name__}: {error}); it will be trained again")
            return None

    while True:
        model = stored()
        if model is not None:
            return model, "reused"
        lock = TrainingLock.acquire(lock_path, heartbeat_s=min(5.0, stale_after_s / 4.0))
        if lock is not None:
            with lock:
                model = stored()  # someone may have finished between our look and our lock
                if model is not None:
                    return model, "reused"
                notice(f"training {teacher_name} on {inputs['dataset']} (cache {folder})")
                return _train(folder, teacher_name, teacher_overrides, data, train_config, inputs, log), "trained"
        stale = watch.stale_reason()
        if stale is not None:
            notice(f"breaking the training lock: {stale}")
            watch.break_if_unchanged()
            continue
        owner = read_owner(lock_path)
        notice(f"waiting for {owner or 'another process'} to finish training it")
        time.sleep(poll_s)
