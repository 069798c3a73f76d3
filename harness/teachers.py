"""The teacher cache: each LightST teacher is trained once and reused by every student trial.

A teacher depends only on (dataset and its content fingerprint, split, teacher config, training
settings and seed). Those inputs are hashed into a key; the teacher lives in

    <cache_dir>/<key>/teacher.pt    its state_dict, written to a temp file then renamed (atomic)
    <cache_dir>/<key>/meta.json     the key inputs, its validation metrics, who trained it, when
    <cache_dir>/<key>/train.lock    present while someone trains it

The cache folder sits inside the campaign's storage, so trials on several processes or cluster
nodes sharing a filesystem share it. Training is serialised by a `harness.locks.HeartbeatLock`:
a waiter polls, and breaks the lock and trains itself when the trainer is gone or its heartbeat
stopped for `stale_after_s` seconds. Since teacher.pt only ever appears whole, a crashed trainer
leaves nothing loadable; a teacher.pt that does not load is treated as absent and trained again.
The key includes a hash of the teacher's own code (`harness.provenance.model_code_version`), so
an edit of the teacher trains it again instead of reusing stale weights.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from harness.data import PreparedData
from harness.locks import HeartbeatLock, LockOwner, LockWatch, read_owner
from harness.provenance import model_code_version
from harness.records import now, write_json
from harness.loop import TrainConfig, fit
from models.base import ForecastModel
from models.config import as_dict
from models.registry import build_model, get_model

CACHE_FORMAT = 2  # part of the key: bump when the stored layout changes meaning
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
    entry = get_model(teacher_name)
    return {
        "format": CACHE_FORMAT,
        "teacher": teacher_name,
        "code": model_code_version(inspect.getfile(entry.build)),
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
            "trained_at": now(),
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

    Loads it from `cache_dir` when present; otherwise trains it (with harness.loop.fit) and
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
        lock = HeartbeatLock.acquire(lock_path, heartbeat_s=min(5.0, stale_after_s / 4.0))
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
