"""Exclusive file locks that work across processes and cluster nodes sharing a filesystem.

A lock is a file created with O_CREAT | O_EXCL (atomic on local filesystems and NFS v3+) holding
its owner's host, pid and start time; a heartbeat thread rewrites it with a growing beat count
(content, not only mtime, so NFS attribute caching cannot hide a beat). A waiter judges a lock
stale when its owner's process is gone (same host) or when the lock has not changed for a while
by the waiter's own clock (so clock skew between nodes does not matter), and may then break it.
The teacher cache serialises the training of one teacher with it; a campaign folder admits one
driver at a time with it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


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


class HeartbeatLock:
    """An exclusive lock file that a heartbeat thread keeps fresh while it is held."""

    def __init__(self, path: Path, owner: LockOwner, heartbeat_s: float):
        self.path = path
        self.owner = owner
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)

    @classmethod
    def acquire(cls, path: Path, heartbeat_s: float) -> HeartbeatLock | None:
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

    def __enter__(self) -> HeartbeatLock:
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
