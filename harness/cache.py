"""The result cache: a trial identical to one that already finished is not run again.

A trial's identity is its model, every resolved setting (seed included, device left out), the
dataset's content fingerprint and split, and the generation of the code that computes results
(`harness.provenance.result_code_version`; report and runner code are not part of it). A
finished trial publishes under the storage root:

    cache/<key>/model.pt         its trained weights
    cache/<key>/<kind>.npz       its artifacts (e.g. routing.npz)
    cache/<key>/record.json      its trial record, written last: the entry's commit mark

Every file is written under a unique temporary name, flushed to disk and renamed, so two trials
publishing one entry at once, or a reader, never meet a half-written file. Only trials that
finished ok are published; diverged or failed ones never are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from harness.records import TrialRecord, atomic_write, load_record, write_json

CACHE_FOLDER = "cache"
RECORD_FILE = "record.json"
WEIGHTS_FILE = "model.pt"
# The fields a cached record contributes; identity, times and provenance are the new trial's own.
RESULT_FIELDS = ("variant", "seed", "epochs", "best_epoch", "val", "test", "parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb",
                 "wall_s", "settings", "device", "teacher", "curve")


def identity_key(model: str, settings: dict[str, Any], fingerprint: str, segments: dict[str, Any], code_version: str) -> str:
    """A trial's full identity as a short hash."""
    settings = {k: v for k, v in settings.items() if k != "device"}
    payload = {"model": model, "settings": settings, "data": fingerprint, "segments": segments, "code": code_version}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def entry_dir(storage_root: Path, key: str) -> Path:
    """The cache folder of one identity."""
    return Path(storage_root) / CACHE_FOLDER / key


def copy_durably(source: Path, target: Path) -> None:
    """Copy a file so that no reader ever sees it half-written (`atomic_write`, fsync included)."""
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def lookup(storage_root: Path, key: str) -> TrialRecord | None:
    """The cached record of this identity, or None (also when the entry is unreadable)."""
    path = entry_dir(storage_root, key) / RECORD_FILE
    record = load_record(path) if path.is_file() else None
    return record if record is not None and record.status == "ok" else None


def reuse(storage_root: Path, key: str, cached: TrialRecord, fresh: TrialRecord, campaign_dir: Path) -> TrialRecord:
    """This trial's record from a cached one: the cached results under the new trial's identity,
    with the cached weights and artifacts copied into this campaign."""
    entry = entry_dir(storage_root, key)
    artifacts = {}
    for kind, relative in cached.artifacts.items():
        target = campaign_dir / artifact_path(fresh.trial_id, kind)
        copy_durably(entry / Path(relative).name, target)
        artifacts[kind] = str(target.relative_to(campaign_dir))
    if (entry / WEIGHTS_FILE).is_file():
        copy_durably(entry / WEIGHTS_FILE, campaign_dir / weights_path(fresh.trial_id))
    results = {name: getattr(cached, name) for name in RESULT_FIELDS}
    return dataclasses.replace(fresh, **results, artifacts=artifacts, cached=True, identity=key).finish("ok")



def publish(storage_root: Path, key: str, record: TrialRecord, campaign_dir: Path) -> None:
    """Store a finished trial's weights, artifacts and record (the record last)."""
    entry = entry_dir(storage_root, key)
    for relative in record.artifacts.values():
        copy_durably(campaign_dir / relative, entry / Path(relative).name)
    weights = campaign_dir / weights_path(record.trial_id)
    if weights.is_file():
        copy_durably(weights, entry / WEIGHTS_FILE)
    write_json(entry / RECORD_FILE, record.to_dict())


def weights_path(trial_id: str) -> Path:
    """Where a trial's trained weights live, relative to its campaign folder."""
    return Path("models") / f"{trial_id}.pt"


def artifact_path(trial_id: str, kind: str) -> Path:
    """Where a trial's artifact of one kind lives, relative to its campaign folder."""
    return Path("artifacts") / trial_id / f"{kind}.npz"
