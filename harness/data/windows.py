"""The BasicTS protocol (shared/specs/protocol.md): contiguous splits, the BasicTS 0.5 z-score and
stride-1 windows of `input_len` in / `output_len` out, built inside each segment as views.

`PreparedData` keeps only plain numpy arrays (the raw series, the (T, N, 3) feature array, the
time indices), so it can sit once in the Ray object store and be shared read-only between trials;
`split()` recreates the windows on demand as strided views, which costs no memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.data.errors import DataError
from harness.data.registry import DatasetInfo
from harness.data.series import Series
from models.base import DAYS_PER_WEEK, DatasetMeta


def split_segments(num_steps: int, ratios: tuple[float, float, float]) -> dict[str, tuple[int, int]]:
    """Contiguous [start, end) step ranges: val = int(T * r_val), test = int(T * r_test), train = the rest."""
    _, val_ratio, test_ratio = ratios
    val, test = int(num_steps * val_ratio), int(num_steps * test_ratio)
    train = num_steps - val - test
    return {"train": (0, train), "val": (train, train + val), "test": (train + val, num_steps)}


def scaler_steps(num_steps: int, ratios: tuple[float, float, float]) -> int:
    """Rows the z-score is fitted on, as BasicTS 0.5 does: int(T * r_train) (PEMS04: 10195).

    One fewer than the ratio split's training segment whenever T * r_val or T * r_test has a
    fractional part (PEMS04's training segment has 10196 rows).
    """
    return int(num_steps * ratios[0])


def split_sample_counts(
    num_steps: int, ratios: tuple[float, float, float], input_len: int = 12, output_len: int = 12
) -> dict[str, int]:
    """Number of windows per split, e.g. PEMS04 (T = 16992, 6:2:2) -> train 10173, val 3375, test 3375."""
    segments = split_segments(num_steps, ratios)
    return {name: _window_count(segment, input_len, output_len) for name, segment in segments.items()}


@dataclass(frozen=True, eq=False)
class WindowSplit:
    """The windows of one split, as read-only views into the prepared arrays.

    inputs:  (S, H, N, 3) float32 view into `features` (z-scored value, tod and dow fractions).
    targets: (S, F, N) float32 view into the raw series (metrics are computed in raw units).
    start:   series index of sample 0's first input step.
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    start: int
    input_len: int

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous float32 copies of the chosen samples: x (b, H, N, 3), y (b, F, N)."""
        indices = np.asarray(indices, dtype=np.int64)
        return np.ascontiguousarray(self.inputs[indices]), np.ascontiguousarray(self.targets[indices])

    def time_index(self, indices: np.ndarray) -> np.ndarray:
        """Series index of each sample's first forecast step (its time-of-day index is tod[step])."""
        return self.start + self.input_len + np.asarray(indices, dtype=np.int64)


@dataclass(eq=False)
class PreparedData:
    """A series ready for training: raw values, normalised features and the split boundaries.

    raw (T, N) float32 raw units (0 = missing); features (T, N, 3) float32 [z-scored value,
    tod / steps_per_day, dow / 7]; mean, std: the z-score of channel 0, fitted on
    raw[:scaler_steps(T, info.split)]; tod, dow (T,) int64 indices; segments: [start, end) step
    range of each split (the files' own where they fix it, else by the ratios info.split);
    source: where the series came from and, for files with their own split, that it was kept;
    fingerprint: the series' content and what preparing it derived (scaler, steps per day).
    """

    name: str
    info: DatasetInfo
    raw: np.ndarray
    features: np.ndarray
    mean: float
    std: float
    tod: np.ndarray
    dow: np.ndarray
    adjacency: np.ndarray | None
    fingerprint: str
    input_len: int
    output_len: int
    segments: dict[str, tuple[int, int]]
    source: str

    @property
    def num_nodes(self) -> int:
        """N, the number of sensors."""
        return int(self.raw.shape[1])

    def split(self, name: str) -> WindowSplit:
        """The windows of split `name` ("train", "val" or "test"), as views (never copies)."""
        if name not in self.segments:
            raise DataError(f"split: unknown split {name!r}; valid: {', '.join(self.segments)}")
        start, end = self.segments[name]
        # sliding_window_view puts the window axis last: (S, N, 3, H) -> (S, H, N, 3).
        inputs = sliding_window_view(self.features[start : end - self.output_len], self.input_len, axis=0)
        targets = sliding_window_view(self.raw[start + self.input_len : end], self.output_len, axis=0)
        return WindowSplit(name, np.moveaxis(inputs, -1, 1), np.moveaxis(targets, -1, 1), start, self.input_len)

    def meta(self) -> DatasetMeta:
        """What a model may know of this dataset: name, sizes, graph, and the normalised value
        of a missing reading (computed exactly as the features are)."""
        return DatasetMeta(
            name=self.name,
            num_nodes=self.num_nodes,
            input_len=self.input_len,
            output_len=self.output_len,
            steps_per_day=self.info.steps_per_day,
            adjacency=self.adjacency,
            missing_value=float((np.float32(0.0) - np.float32(self.mean)) / np.float32(self.std)),
        )

    def train_segment(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the training segment: z-scored values (T_train, N), tod and dow indices (T_train,)."""
        start, end = self.segments["train"]
        return np.array(self.features[start:end, :, 0]), self.tod[start:end].copy(), self.dow[start:end].copy()

    def num_samples(self) -> dict[str, int]:
        """Windows per split."""
        return {
            name: _window_count(segment, self.input_len, self.output_len) for name, segment in self.segments.items()
        }


def prepare(series: Series, input_len: int = 12, output_len: int = 12) -> PreparedData:
    """Split `series` (its own segments, else its ratios), z-score as BasicTS 0.5, add time features.

    Never writes into `series`' arrays (they may be read-only, e.g. from the Ray object store).
    """
    for field_name, length in (("input_len", input_len), ("output_len", output_len)):
        if not isinstance(length, (int, np.integer)) or length < 1:
            raise DataError(f"{field_name}: expected a positive integer, got {length!r}")
    segments = series.segments if series.segments is not None else split_segments(series.num_steps, series.info.split)
    for name, segment in segments.items():
        if _window_count(segment, input_len, output_len) < 1:
            raise DataError(
                f"{series.name}: the {name} segment has {segment[1] - segment[0]} steps, fewer than "
                f"input_len + output_len = {input_len + output_len} (series has {series.num_steps} steps)"
            )
    mean, std = _zscore(series)
    features = np.empty((*series.values.shape, 3), dtype=np.float32)
    features[..., 0] = (series.values - np.float32(mean)) / np.float32(std)
    features[..., 1] = (series.tod / series.info.steps_per_day)[:, None]
    features[..., 2] = (series.dow / DAYS_PER_WEEK)[:, None]
    return PreparedData(
        name=series.name,
        info=series.info,
        raw=series.values,
        features=features,
        mean=mean,
        std=std,
        tod=series.tod,
        dow=series.dow,
        adjacency=series.adjacency,
        fingerprint=_prepared_fingerprint(series, mean, std),
        input_len=int(input_len),
        output_len=int(output_len),
        segments=segments,
        source=series.source,
    )


def _zscore(series: Series) -> tuple[float, float]:
    """BasicTS 0.5's scaler: float32 mean and population std of all values (zeros included) in
    the first int(T * r_train) rows."""
    rows = scaler_steps(series.num_steps, series.info.split)
    fitted = series.values[:rows]
    mean, std = float(np.mean(fitted, dtype=np.float32)), float(np.std(fitted, dtype=np.float32))
    if not std > 0:
        raise DataError(
            f"{series.source}: the first {rows} steps (the scaler's rows) are constant ({mean}); cannot z-score them"
        )
    return mean, std


def _prepared_fingerprint(series: Series, mean: float, std: float) -> str:
    """16 hex characters identifying what a model sees: the series' content, the scaler and the
    time-of-day resolution."""
    prepared = f"{series.fingerprint()}|mean={mean!r}|std={std!r}|steps_per_day={series.info.steps_per_day}"
    return hashlib.sha256(prepared.encode()).hexdigest()[:16]


def _window_count(segment: tuple[int, int], input_len: int, output_len: int) -> int:
    """Stride-1 windows of input_len + output_len steps that fit in [start, end)."""
    start, end = segment
    return max(end - start - input_len - output_len + 1, 0)
