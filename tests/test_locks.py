"""Heartbeat locks: exclusive, kept fresh while held, judged stale only when silent."""

import time
from pathlib import Path

from harness.locks import HeartbeatLock, LockOwner, LockWatch, lock_content

LOCK_FILE = "train.lock"


def test_a_beating_lock_is_never_judged_stale_but_a_silent_one_is(tmp_path: Path):
    path = tmp_path / LOCK_FILE
    lock = HeartbeatLock.acquire(path, heartbeat_s=0.05)
    assert lock is not None and HeartbeatLock.acquire(path, heartbeat_s=0.05) is None
    watch = LockWatch(path, stale_after_s=0.3)
    watched_until = time.monotonic() + 1.0  # over three stale periods
    while time.monotonic() < watched_until:
        assert watch.stale_reason() is None
        time.sleep(0.02)
    lock.release()
    assert not path.exists()

    path.write_text(lock_content(LockOwner.me(), beats=3))  # a live process that stopped beating
    silent = LockWatch(path, stale_after_s=0.3)
    assert silent.stale_reason() is None
    time.sleep(0.4)
    assert "heartbeat stopped" in silent.stale_reason()
