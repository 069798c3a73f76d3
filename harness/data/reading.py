"""What every file reader shares: checked arrays and JSON from disk, the readings' interval, time
indices from fractions, and the Series a file becomes. Every problem is a one-line DataError that
names the file and the field."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.data.errors import DataError
from harness.data.registry import MINUTES_PER_DAY, DatasetInfo
from harness.data.series import Series

_NUMERIC_KINDS = "iuf"  # signed and unsigned integers, floats
_FRACTION_TOLERANCE = 1e-2  # of one step: a time fraction farther than this from k / count is off the grid


def one_line(error: Exception) -> str:
    """The last non-empty line of an exception's message (HDF5 errors span many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path` (NaN allowed, as BasicTS writes null_val)."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable JSON ({one_line(error)})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


def load_npy(path: Path) -> np.ndarray:
    """The array of a .npy file, never unpickling (object arrays are refused)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: unreadable .npy file ({one_line(error)})") from None


def numeric_array(array: object, where: str, ranks: tuple[int, ...]) -> np.ndarray:
    """`array` checked to be a non-empty integer or float array of one of the `ranks`."""
    if not isinstance(array, np.ndarray):
        raise DataError(f"{where}: expected an array, got {type(array).__name__}")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise DataError(f"{where}: dtype {array.dtype} is not numeric (expected integers or floats)")
    if array.ndim not in ranks:
        expected = " or ".join(str(rank) for rank in ranks)
        raise DataError(f"{where}: rank {array.ndim} (shape {array.shape}), expected rank {expected}")
    if 0 in array.shape:
        raise DataError(f"{where}: shape {array.shape} has an empty axis (no steps, sensors or channels)")
    return array


def finite_float32(array: np.ndarray, where: str) -> np.ndarray:
    """`array` as a new float32 array, or DataError when it holds NaN or inf."""
    values = np.array(array, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise DataError(f"{where} has {bad} NaN/inf values (missing readings must be 0)")
    return values


def checked_interval(minutes: object, where: str) -> int:
    """`minutes` as a whole number of minutes that divides a day."""
    whole = minutes if isinstance(minutes, (int, np.integer)) and not isinstance(minutes, bool) else None
    if isinstance(minutes, float) and minutes.is_integer():
        whole = int(minutes)
    if whole is None or whole <= 0 or MINUTES_PER_DAY % whole:
        raise DataError(f"{where}: interval {minutes!r} minutes does not divide a day of {MINUTES_PER_DAY} minutes")
    return int(whole)


def interval_of_timestamps(index: pd.DatetimeIndex, where: str, default: int) -> int:
    """Minutes between readings: the most common spacing of `index` (`default` for a single step)."""
    if len(index) < 2:
        return default
    spacings, counts = np.unique(np.asarray((index[1:] - index[:-1]) / pd.Timedelta(minutes=1)), return_counts=True)
    return checked_interval(float(spacings[counts.argmax()]), f"{where}: timestamps")


def interval_of_fractions(tod_fraction: np.ndarray, where: str) -> int:
    """Minutes between readings, from consecutive time-of-day fractions: 1 / (their median step,
    across midnight too) readings a day."""
    steps = np.diff(np.asarray(tod_fraction, dtype=np.float64)) % 1.0
    steps = steps[steps > 0]
    if not steps.size:
        raise DataError(f"{where}: cannot tell the interval from time-of-day fractions that never advance")
    readings_per_day = round(1.0 / float(np.median(steps)))
    return checked_interval(MINUTES_PER_DAY / max(readings_per_day, 1), f"{where}: time-of-day steps")


def indices_from_fractions(fraction: np.ndarray, count: int, where: str) -> np.ndarray:
    """int64 indices k of fractions k / count in [0, 1) (time of day: count = steps per day; day of week: 7)."""
    fraction = np.asarray(fraction, dtype=np.float64)
    if not np.isfinite(fraction).all() or fraction.min() < 0 or fraction.max() >= 1:
        raise DataError(f"{where}: fractions must be finite and in [0, 1), found {fraction.min()}..{fraction.max()}")
    scaled = fraction * count
    indices = np.rint(scaled)
    off_grid = np.abs(scaled - indices) > _FRACTION_TOLERANCE
    if off_grid.any():
        raise DataError(
            f"{where}: {int(off_grid.sum())} fractions are not multiples of 1/{count} (e.g. {fraction[off_grid][0]})"
        )
    return indices.astype(np.int64) % count


def series_from_file(
    info: DatasetInfo,
    values: np.ndarray,
    time: tuple[np.ndarray, np.ndarray],
    adjacency: np.ndarray,
    path: Path,
    interval_minutes: int,
    source: str | None = None,
    segments: dict[str, tuple[int, int]] | None = None,
    split: tuple[float, float, float] | None = None,
) -> Series:
    """The Series of a file with (tod, dow) indices `time`, taking the file's sizes and interval
    (and, where the files state them, its split ratios and segments) over the registry's.

    Warns (one line) where sizes or interval differ from the registry; DataError when no reading
    is observed. `source` defaults to `path`.
    """
    num_steps, num_nodes = values.shape
    if not np.any(values):
        raise DataError(f"{path}: every reading is 0 or null; there is nothing to forecast")
    if (num_nodes, num_steps, interval_minutes) != (info.num_nodes, info.num_steps, info.interval_minutes):
        warnings.warn(
            f"{path}: {num_nodes} nodes x {num_steps} steps every {interval_minutes} min, registry has {info.name} as "
            f"{info.num_nodes} x {info.num_steps} every {info.interval_minutes} min; using the file's sizes",
            stacklevel=4,
        )
    sized = replace(
        info, num_nodes=num_nodes, num_steps=num_steps, interval_minutes=interval_minutes, split=split or info.split
    )
    return Series(info.name, sized, values, *time, adjacency, source or str(path), segments)
