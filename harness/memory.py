"""Peak memory of one trial, independent of what its process ran before.

Ray reuses a worker process for trial after trial, so the process's own peak (what `ps` shows)
grows with every trial it has run and says little about the one at hand. `TrialMemory`
measures the trial's own need instead:

- CUDA: the caching allocator's peak of allocated bytes since the trial started
  (`torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`): weights, optimiser state,
  activations and batches; the CUDA context and cached-but-free blocks are left out.
- CPU (Linux): how far the process's peak resident set (VmHWM) rose above its level at the
  trial's start. Before that level is taken, the memory earlier trials freed is handed back to
  the operating system (garbage collection, then glibc's malloc_trim), the peak is reset
  (/proc/self/clear_refs), and the shared dataset's pages are mapped in, so that neither an
  earlier trial's leftovers nor the first touch of the data (shared by all trials through
  Ray's object store) count. Elsewhere the CPU figure is not measured (None).
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

MIB = 2**20


def _release_freed_memory() -> None:
    """Return memory freed by earlier work to the operating system (glibc only; else no-op).

    The first call also freezes what the process holds by then (its libraries, Ray's state):
    a full collection over those takes 150 ms per trial, over what came after, next to nothing.
    """
    gc.collect()
    if not gc.get_freeze_count():
        gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int | None:
    """A 'kB' field of /proc/self/status (VmRSS, VmHWM, ...); None where there is no procfs."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _map_in(arrays: Iterable[np.ndarray]) -> None:
    """Read every page of `arrays` once, so that their first touch happens before the baseline."""
    for array in arrays:
        if array.size:
            np.add.reduce(array.reshape(-1), dtype=np.float64)


class TrialMemory:
    """Start at the beginning of a trial, read `peak_mb()` at its end (see the module docstring)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline_kib: int | None = None

    def start(self, shared_arrays: Iterable[np.ndarray] = ()) -> None:
        """Begin a measurement; `shared_arrays` are mapped in first (the prepared dataset)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        _release_freed_memory()
        _map_in(shared_arrays)
        try:
            Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        except OSError:
            self.baseline_kib = None
            return
        self.baseline_kib = _status_kib("VmRSS")

    def peak_mb(self) -> float | None:
        """The trial's peak memory in MiB since `start()`; None when it cannot be measured here."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / MIB
        peak = _status_kib("VmHWM")
        if self.baseline_kib is None or peak is None:
            return None
        return max(peak - self.baseline_kib, 0) * 1024 / MIB
