"""A campaign's folder on disk: the storage checked before anything expensive, one driver at a
time, space set aside for the last records, and a campaign started again kept rather than lost."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.errors import UsageError
from harness.locks import HeartbeatLock, LockWatch, read_owner
from harness.records import now

LOCK_FILE = ".driver.lock"
RESERVE_FILE = ".reserved-space"
RESERVE_BASE, RESERVE_PER_TRIAL, RESERVE_MAX = 4 * 2**20, 20 * 2**10, 64 * 2**20
MIN_FREE_ENV = "HARNESS_MIN_FREE_MB"  # storage with less free space is refused up front (default 200)


def storage_root(storage: str | None) -> Path:
    """The results folder: checked to be (or to be creatable as) a writable folder with room."""
    if storage and "://" in storage:
        raise UsageError(f"--storage {storage}: URI storage is not supported yet; mount it (e.g. NFS, s3fs) and pass the folder")
    root = Path(storage or "results").expanduser().resolve()
    existing = next(p for p in [root, *root.parents] if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--storage {root}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--storage {root}: {existing} is not writable")
    free_mb, needed = shutil.disk_usage(existing).free / 2**20, float(os.environ.get(MIN_FREE_ENV, 200))
    if free_mb < needed:
        raise UsageError(f"--storage {root}: only {free_mb:.0f} MB free on its disk; a campaign needs at least {needed:g} MB")
    return root


def set_aside(campaign_dir: Path) -> Path:
    """--fresh: move an existing campaign folder out of the way (nothing is deleted)."""
    target = campaign_dir.with_name(f"{campaign_dir.name}.replaced-{now().replace(':', '')}")
    campaign_dir.rename(target)
    return target


class CampaignLock:
    """One driver per campaign folder: a second run of the same campaign is refused in one line;
    the lock of a driver that died is broken."""

    def __init__(self, campaign_dir: Path):
        self.path = campaign_dir / LOCK_FILE
        self.lock: HeartbeatLock | None = None

    def refuse_if_held(self) -> LockWatch:
        """Raise (one line) when a live driver holds the campaign: called before the data load
        too, so that a second run stops before any expensive work; returns the lock's watch."""
        watch = LockWatch(self.path, stale_after_s=30.0)
        if self.path.exists():
            stale = watch.stale_reason()
            if stale is None or "no longer running" not in stale:
                raise UsageError(f"{self.path.parent}: another driver is running this campaign "
                                 f"({read_owner(self.path) or 'unknown'}); wait for it to finish, or stop it first")
        return watch

    def __enter__(self) -> CampaignLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = HeartbeatLock.acquire(self.path, heartbeat_s=5.0)
        if self.lock is None:
            self.refuse_if_held().break_if_unchanged()
            self.lock = HeartbeatLock.acquire(self.path, heartbeat_s=5.0)
            if self.lock is None:
                raise UsageError(f"{self.path.parent}: another driver just started this campaign")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.lock is not None:
            self.lock.release()


def reserve_space(campaign_dir: Path, trials: int) -> Path:
    """Set disk space aside for the campaign's last records: given back when the disk fills up,
    so that every trial's record can still be written (4 MB and 20 kB a trial, at most 64 MB)."""
    path = campaign_dir / RESERVE_FILE
    size = min(RESERVE_BASE + RESERVE_PER_TRIAL * trials, RESERVE_MAX)
    try:
        with open(path, "wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, size)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise UsageError(f"--storage {campaign_dir.parent}: cannot set {size // 2**20} MB aside for the records ({error.strerror})") from None
    return path
