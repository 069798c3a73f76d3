"""Readers of BasicTS's processed layouts (files found by role, see formats.layouts).

BasicTS 0.4/0.5: data.dat, a float32 memmap of desc.json's 'shape' (L, N, C >= 3) holding
    [value, tod fraction, dow fraction], + adj_mx.pkl.
BasicTS 1.x: {train,val,test}_data.npy, (T_s, N) or (T_s, N, C) with channel 0 = value, already
    split by its preparation script (train = int(T * r_train) rows, val = int(T * r_val), test
    the rest; PEMS04: 10195 / 3398 / 3399 rows, 10172 / 3375 / 3376 windows), + meta.json +
    adj_mx.pkl. Time features come from {train,val,test}_timestamps.npy, (T_s, K) fractions whose
    columns meta.json's 'timestamps_description' names (default: time of day, day of week), or,
    without those files, from data channels 1-2 as in 0.5. The files' split is kept. Readings
    equal to meta.json's regular_settings 'null_val' (NaN when absent, as BasicTS 1.x writes it)
    become 0, this harness's missing reading; its 'train_val_test_ratio' sets the ratios the
    0.5 scaler is fitted by (protocol.md keeps the 0.5 normalisation and metrics for every layout).

Both: the minutes between readings come from the key 'frequency (minutes)' where present, else
from the time-of-day fractions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.errors import DataError
from harness.data.graphs import read_adjacency_pickle
from harness.data.reading import (
    checked_interval,
    finite_float32,
    indices_from_fractions,
    interval_of_fractions,
    load_npy,
    numeric_array,
    read_json_object,
    series_from_file,
)
from harness.data.registry import DatasetInfo, steps_per_day
from harness.data.series import SPLITS, Series
from models.base import DAYS_PER_WEEK

FREQUENCY_KEY = "frequency (minutes)"
TIME_OF_DAY, DAY_OF_WEEK = "time of day", "day of week"
DEFAULT_NULL_VALUE = math.nan  # BasicTS 1.x's null_val where meta.json states none


def read_basicts05(files: dict[str, Path], info: DatasetInfo) -> Series:
    """data.dat (float32 memmap of desc.json's shape) + adj pickle: tod/dow from the fraction channels."""
    path, desc_path = files["data"], files["desc"]
    desc = read_json_object(desc_path)
    shape = _memmap_shape(desc, desc_path)
    expected_bytes = int(np.prod(shape)) * np.dtype(np.float32).itemsize
    size = path.stat().st_size
    if size != expected_bytes:
        raise DataError(f"{path}: {size} bytes, but desc.json shape {list(shape)} needs {expected_bytes} float32 bytes")
    stored = np.memmap(path, dtype=np.float32, mode="r", shape=shape)
    values = finite_float32(stored[:, :, 0], f"{path}: channel 0 (value)")
    fractions = finite_float32(stored[:, 0, 1:3], f"{path}: channels 1-2 (tod, dow fractions)")
    where = f"{path}: channel 1 (tod fraction)"
    interval = _interval(desc, desc_path, fractions[:, 0], where)
    time = _time_indices(fractions[:, 0], fractions[:, 1], interval, where, f"{path}: channel 2 (dow fraction)")
    adjacency = read_adjacency_pickle(files["graph"], values.shape[1])
    return series_from_file(info, values, time, adjacency, path, interval)


def read_basicts1(files: dict[str, Path], info: DatasetInfo) -> Series:
    """{train,val,test}_data.npy (+ _timestamps.npy) + meta.json + adj pickle, keeping the files' split."""
    meta_path = files["meta"]
    meta = read_json_object(meta_path)
    settings = _regular_settings(meta, meta_path)
    columns = _time_columns(meta, meta_path)
    parts = [_read_split(files, split, columns) for split in SPLITS]
    _check_same_sensors(parts, files)
    data_files = f"{meta_path.parent}/{{train,val,test}}_data.npy"
    raw = np.concatenate([values for values, _, _ in parts])
    values = finite_float32(_zero_nulls(raw, _null_value(settings, meta_path)), f"{data_files}: value channel")
    tod_fraction = np.concatenate([tod for _, tod, _ in parts])
    where = f"{data_files}: time-of-day fractions"
    interval = _interval(meta, meta_path, tod_fraction, where)
    dow_fraction = np.concatenate([dow for _, _, dow in parts])
    time = _time_indices(tod_fraction, dow_fraction, interval, where, f"{data_files}: day-of-week fractions")
    lengths = [len(values) for values, _, _ in parts]
    ends = np.cumsum(lengths).tolist()
    segments = {split: (end - length, end) for split, length, end in zip(SPLITS, lengths, ends, strict=True)}
    source = (
        f"{data_files} (BasicTS 1.x: its own train/val/test split of "
        f"{'/'.join(str(length) for length in lengths)} steps is kept)"
    )
    adjacency = read_adjacency_pickle(files["graph"], values.shape[1])
    split = _split_ratios(settings, meta_path)
    return series_from_file(info, values, time, adjacency, files["train_data"], interval, source, segments, split)


def _read_split(
    files: dict[str, Path], split: str, columns: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split's raw value channel (T_s, N) and its tod and dow fractions (T_s,)."""
    path = files[f"{split}_data"]
    data = numeric_array(load_npy(path), str(path), ranks=(2, 3))
    values = data if data.ndim == 2 else data[..., 0]
    stamps_path = files.get(f"{split}_timestamps")
    if stamps_path is not None:
        stamps = numeric_array(load_npy(stamps_path), str(stamps_path), ranks=(1, 2))
        stamps = stamps.reshape(len(stamps), -1)
        if len(stamps) != len(data) or max(columns) >= stamps.shape[1]:
            raise DataError(
                f"{stamps_path}: shape {stamps.shape}, expected {len(data)} rows (as {path.name}) and "
                f"columns {list(columns)} for time of day and day of week"
            )
        return values, stamps[:, columns[0]], stamps[:, columns[1]]
    if data.ndim != 3 or data.shape[2] < 3:
        raise DataError(
            f"{path}: no time features: neither {split}_timestamps.npy nor tod/dow channels 1-2 (shape {data.shape})"
        )
    return values, data[:, 0, 1], data[:, 0, 2]


def _check_same_sensors(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], files: dict[str, Path]) -> None:
    """DataError unless every split has the training split's sensor count."""
    nodes = parts[0][0].shape[1]
    for split, (values, _, _) in zip(SPLITS, parts, strict=True):
        if values.shape[1] != nodes:
            raise DataError(f"{files[f'{split}_data']}: {values.shape[1]} sensors, but train_data.npy has {nodes}")


def _regular_settings(meta: dict[str, Any], meta_path: Path) -> dict[str, Any]:
    """meta.json's 'regular_settings' (empty when absent), keys in lower case."""
    settings = meta.get("regular_settings", {})
    if not isinstance(settings, dict):
        raise DataError(f"{meta_path}: key 'regular_settings' is {type(settings).__name__}, expected an object")
    return {str(key).lower(): value for key, value in settings.items()}


def _null_value(settings: dict[str, Any], meta_path: Path) -> float:
    """The reading that marks a missing value: regular_settings 'null_val' (NaN when absent or null)."""
    value = settings.get("null_val", DEFAULT_NULL_VALUE)
    if value is None:
        return DEFAULT_NULL_VALUE
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{meta_path}: regular_settings 'null_val' is {value!r}, expected a number or NaN")
    return float(value)


def _zero_nulls(values: np.ndarray, null_value: float) -> np.ndarray:
    """float32 copy of `values` with the null readings set to 0."""
    null = np.isnan(values) if math.isnan(null_value) else values == null_value
    return np.where(null, 0.0, values).astype(np.float32)


def _split_ratios(settings: dict[str, Any], meta_path: Path) -> tuple[float, float, float] | None:
    """regular_settings 'train_val_test_ratio' as three positive ratios summing to 1, or None when absent."""
    ratios = settings.get("train_val_test_ratio")
    if ratios is None:
        return None
    valid = (
        isinstance(ratios, list)
        and len(ratios) == 3
        and all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in ratios)
        and math.isclose(sum(ratios), 1.0, abs_tol=1e-6)
    )
    if not valid:
        raise DataError(
            f"{meta_path}: regular_settings 'train_val_test_ratio' is {ratios!r}, expected 3 ratios summing to 1"
        )
    return float(ratios[0]), float(ratios[1]), float(ratios[2])


def _time_columns(meta: dict[str, Any], meta_path: Path) -> tuple[int, int]:
    """Columns of time of day and day of week in the timestamps files, from 'timestamps_description'."""
    description = meta.get("timestamps_description")
    if description is None:
        return 0, 1
    names = [str(name).lower() for name in description] if isinstance(description, list) else []
    if TIME_OF_DAY not in names or DAY_OF_WEEK not in names:
        raise DataError(
            f"{meta_path}: timestamps_description {description!r} lacks {TIME_OF_DAY!r} or {DAY_OF_WEEK!r}"
        )
    return names.index(TIME_OF_DAY), names.index(DAY_OF_WEEK)


def _interval(document: dict[str, Any], document_path: Path, tod_fraction: np.ndarray, where: str) -> int:
    """Minutes between readings: the document's 'frequency (minutes)', else read off the tod fractions."""
    minutes = document.get(FREQUENCY_KEY)
    if minutes is None:
        return interval_of_fractions(tod_fraction, where)
    return checked_interval(minutes, f"{document_path}: key {FREQUENCY_KEY!r}")


def _time_indices(
    tod_fraction: np.ndarray, dow_fraction: np.ndarray, interval: int, tod_where: str, dow_where: str
) -> tuple[np.ndarray, np.ndarray]:
    """(tod, dow) indices of BasicTS's fractions tod = k / steps_per_day, dow = d / 7."""
    tod = indices_from_fractions(tod_fraction, steps_per_day(interval), tod_where)
    return tod, indices_from_fractions(dow_fraction, DAYS_PER_WEEK, dow_where)


def _memmap_shape(desc: dict[str, Any], desc_path: Path) -> tuple[int, int, int]:
    """The (L, N, C >= 3) shape recorded under desc.json's key 'shape'."""
    if "shape" not in desc:
        raise DataError(f"{desc_path}: missing key 'shape'")
    shape = desc["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(size, int) and size > 0 for size in shape)
        or shape[2] < 3
    ):
        raise DataError(f"{desc_path}: key 'shape' is {shape!r}, expected [L, N, C] positive integers with C >= 3")
    return int(shape[0]), int(shape[1]), int(shape[2])
