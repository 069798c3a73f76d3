"""`Series`: one dataset's readings in raw units, the common output of every reader."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from harness.data.errors import DataError
from harness.data.registry import DatasetInfo
from models.base import DAYS_PER_WEEK

SPLITS = ("train", "val", "test")


@dataclass(eq=False)
class Series:
    """A traffic series as read from disk or generated.

    values:    (T, N) float32 in raw units (vehicles per reading, or mph); 0 marks a missing reading.
    tod, dow:  (T,) int64 time-of-day (0 .. info.steps_per_day - 1) and day-of-week (0..6, Monday = 0)
               indices.
    adjacency: (N, N) float32 edge weights, or None when the dataset has no graph.
    source:    the file it came from, or "synthetic(...)" with the generator's settings.
    info:      the registry entry, with num_nodes, num_steps and interval_minutes set to this
               series' own.
    segments:  the [start, end) step range of each split where the files fix the split themselves
               (BasicTS 1.x); None splits by the ratios info.split.
    """

    name: str
    info: DatasetInfo
    values: np.ndarray
    tod: np.ndarray
    dow: np.ndarray
    adjacency: np.ndarray | None
    source: str
    segments: dict[str, tuple[int, int]] | None = None
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        self.tod = np.asarray(self.tod, dtype=np.int64)
        self.dow = np.asarray(self.dow, dtype=np.int64)
        if self.values.ndim != 2:
            raise DataError(f"{self.source}: values have shape {self.values.shape}, expected (T, N)")
        num_steps, num_nodes = self.values.shape
        for field_name, index, count in (("tod", self.tod, self.info.steps_per_day), ("dow", self.dow, DAYS_PER_WEEK)):
            if index.shape != (num_steps,):
                raise DataError(f"{self.source}: {field_name} has shape {index.shape}, expected ({num_steps},)")
            if index.size and not (0 <= index.min() and index.max() < count):
                raise DataError(
                    f"{self.source}: {field_name} indices span {index.min()}..{index.max()}, expected 0..{count - 1}"
                )
        if self.segments is not None:
            self._check_segments()
        if self.adjacency is not None:
            self.adjacency = np.asarray(self.adjacency, dtype=np.float32)
            if self.adjacency.shape != (num_nodes, num_nodes):
                raise DataError(
                    f"{self.source}: adjacency has shape {self.adjacency.shape}, expected ({num_nodes}, {num_nodes})"
                )

    def _check_segments(self) -> None:
        """DataError unless `segments` hold the splits in order, non-empty and contiguous from step 0 to T."""
        position = 0
        for name in SPLITS:
            bound = tuple(self.segments.get(name, ()))
            if len(bound) != 2 or bound[0] != position or bound[1] <= position:
                break
            position = bound[1]
        else:
            if position == self.num_steps and len(self.segments) == len(SPLITS):
                return
        raise DataError(
            f"{self.source}: split segments {self.segments} are not non-empty, contiguous train, val, test "
            f"ranges covering steps 0..{self.num_steps}"
        )

    @property
    def num_steps(self) -> int:
        """T, the number of time steps."""
        return int(self.values.shape[0])

    @property
    def num_nodes(self) -> int:
        """N, the number of sensors."""
        return int(self.values.shape[1])

    def fingerprint(self) -> str:
        """16 hex characters of sha256 over values, tod, dow and adjacency (computed once)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for array in (self.values, self.tod, self.dow, self.adjacency):
                if array is None:
                    digest.update(b"no-adjacency")
                    continue
                digest.update(repr((array.dtype.str, array.shape)).encode())
                digest.update(np.ascontiguousarray(array).data)
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint
