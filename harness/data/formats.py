"""Readers for the released file layouts of the traffic datasets, and the ASTGCN writer.

Three layouts are recognised from the files present in a dataset's folder (names matched
case-insensitively), tried in this order:
  ASTGCN/STSGCN:  NAME.npz (key 'data', (T, N, C), channel 0 = flow) + NAME.csv edge list
                  (+ NAME.txt sensor ids for PEMS03); tod/dow by position, day 0 = first day.
  DCRNN:          metr-la.h5 / pems-bay.h5 (pandas HDF, DatetimeIndex, one column per sensor)
                  + adj_mx.pkl / adj_mx_bay.pkl; tod/dow from the timestamps.
  BasicTS 0.4/5:  data.dat (float32 memmap (L, N, 3): value, tod fraction, dow fraction)
                  + desc.json (key 'shape') + adj_mx.pkl.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.errors import DataError
from harness.data.graphs import read_adjacency_pickle, read_pems_graph
from harness.data.registry import DatasetInfo, get_dataset_info, resolve_name
from harness.data.series import Series
from models.base import DAYS_PER_WEEK, STEPS_PER_DAY

_DCRNN_FILES = {"METR-LA": ("metr-la.h5", "adj_mx.pkl"), "PEMS-BAY": ("pems-bay.h5", "adj_mx_bay.pkl")}
_ID_FILE_DATASETS = frozenset({"PEMS03"})


@dataclass(frozen=True)
class Layout:
    """One released file layout: the files it needs by role ("data" first) and its reader."""

    format: str
    files: dict[str, str]
    read: Callable[[dict[str, Path], DatasetInfo], Series]

    def describe(self) -> str:
        """E.g. "PEMS04.npz + PEMS04.csv (ASTGCN)"."""
        return f"{' + '.join(self.files.values())} ({self.format})"


def layouts(info: DatasetInfo) -> tuple[Layout, ...]:
    """The layouts a dataset may come in, with its file names filled in."""
    astgcn = {"data": f"{info.name}.npz", "graph": f"{info.name}.csv"}
    if info.name in _ID_FILE_DATASETS:
        astgcn["ids"] = f"{info.name}.txt"
    h5_name, pickle_name = _DCRNN_FILES.get(info.name, (f"{info.name.lower()}.h5", "adj_mx.pkl"))
    return (
        Layout("ASTGCN", astgcn, _read_astgcn),
        Layout("DCRNN", {"data": h5_name, "graph": pickle_name}, _read_dcrnn),
        Layout("BasicTS", {"data": "data.dat", "desc": "desc.json", "graph": "adj_mx.pkl"}, _read_basicts),
    )


def expected_files(info: DatasetInfo) -> str:
    """One line listing the file sets a dataset folder may hold."""
    return " or ".join(layout.describe() for layout in layouts(info))


def find_dataset_folder(data_dir: Path, info: DatasetInfo) -> Path:
    """The sub-folder of `data_dir` whose name spells the dataset (case-insensitive, aliases)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found")
    matches = sorted(
        (path for path in data_dir.iterdir() if path.is_dir() and resolve_name(path.name) == info.name),
        key=lambda path: (path.name != info.name, path.name),
    )
    if not matches:
        raise DataError(
            f"{data_dir}: no folder {info.name}/ for dataset {info.name}; it should hold {expected_files(info)}"
        )
    return matches[0]


def read_folder(folder: Path, name: str) -> Series:
    """Read the dataset `name` from its folder, detecting the layout from the files present."""
    info = get_dataset_info(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    present = {path.name.lower(): path for path in folder.iterdir() if path.is_file()}
    for layout in layouts(info):
        if layout.files["data"].lower() not in present:
            continue
        missing = [file for file in layout.files.values() if file.lower() not in present]
        if missing:
            raise DataError(
                f"{folder}: {layout.format} layout is missing {', '.join(missing)} (needs {layout.describe()})"
            )
        return layout.read({role: present[file.lower()] for role, file in layout.files.items()}, info)
    raise DataError(f"{folder}: no dataset files for {info.name}; expected {expected_files(info)}")


def write_astgcn(series: Series, folder: Path, name: str | None = None) -> Path:
    """Write `series` in the ASTGCN layout (NAME.npz with data (T, N, 1) + NAME.csv); returns the folder.

    The csv lists each undirected edge once with its larger weight as cost, so the reader gives
    back the binary symmetric graph. tod/dow are not stored: the reader derives them from the
    position (step 0 = midnight of day-of-week 0), which is how the synthetic series start.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = name or series.name
    np.savez(folder / f"{stem}.npz", data=series.values[:, :, None])
    adjacency = series.adjacency if series.adjacency is not None else np.zeros((series.num_nodes,) * 2, np.float32)
    weights = np.maximum(adjacency, adjacency.T)
    sources, targets = np.nonzero(np.triu(weights, k=1))
    edges = pd.DataFrame({"from": sources, "to": targets, "cost": weights[sources, targets]})
    edges.to_csv(folder / f"{stem}.csv", index=False)
    return folder


def _read_astgcn(files: dict[str, Path], info: DatasetInfo) -> Series:
    """NAME.npz + NAME.csv (+ NAME.txt): flow is channel 0; tod/dow by position."""
    path = files["data"]
    try:
        with np.load(path) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an npz archive")
            if "data" not in archive.files:
                raise DataError(f"{path}: no key 'data' (keys: {', '.join(archive.files) or 'none'})")
            data = archive["data"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: unreadable npz file ({_one_line(error)})") from None
    if data.ndim != 3:
        raise DataError(f"{path}: key 'data' has rank {data.ndim}, expected (T, N, C)")
    values = _finite_float32(data[..., 0], f"{path}: key 'data' channel 0")
    positions = np.arange(values.shape[0])
    adjacency = read_pems_graph(files["graph"], values.shape[1], files.get("ids"))
    tod, dow = positions % STEPS_PER_DAY, (positions // STEPS_PER_DAY) % DAYS_PER_WEEK
    return _series(info, values, tod, dow, adjacency, path)


def _read_dcrnn(files: dict[str, Path], info: DatasetInfo) -> Series:
    """metr-la.h5 / pems-bay.h5 + adj pickle: tod/dow from the DatetimeIndex (Monday = 0)."""
    path = files["data"]
    try:
        frame = pd.read_hdf(path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as error:
        raise DataError(f"{path}: unreadable HDF5 file ({_one_line(error)})") from None
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{path}: expected a DataFrame with a DatetimeIndex, one column per sensor")
    try:
        raw = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: sensor columns are not numeric ({_one_line(error)})") from None
    values = _finite_float32(raw, f"{path}: sensor readings")
    minutes = frame.index.hour * 60 + frame.index.minute
    tod = np.asarray(minutes // info.interval_minutes) % STEPS_PER_DAY
    adjacency = read_adjacency_pickle(files["graph"], values.shape[1])
    return _series(info, values, tod, np.asarray(frame.index.day_of_week), adjacency, path)


def _read_basicts(files: dict[str, Path], info: DatasetInfo) -> Series:
    """data.dat (float32 memmap of desc.json's shape) + adj pickle: tod/dow from the fraction channels."""
    path = files["data"]
    shape = _memmap_shape(files["desc"])
    expected_bytes = int(np.prod(shape)) * np.dtype(np.float32).itemsize
    size = path.stat().st_size
    if size != expected_bytes:
        raise DataError(f"{path}: {size} bytes, but desc.json shape {list(shape)} needs {expected_bytes} float32 bytes")
    stored = np.memmap(path, dtype=np.float32, mode="r", shape=shape)
    values = _finite_float32(stored[:, :, 0], f"{path}: channel 0 (value)")
    fractions = _finite_float32(stored[:, 0, 1:3], f"{path}: channels 1-2 (tod, dow fractions)")
    tod = np.rint(fractions[:, 0] * STEPS_PER_DAY).astype(np.int64) % STEPS_PER_DAY
    dow = np.rint(fractions[:, 1] * DAYS_PER_WEEK).astype(np.int64) % DAYS_PER_WEEK
    adjacency = read_adjacency_pickle(files["graph"], values.shape[1])
    return _series(info, values, tod, dow, adjacency, path)


def _memmap_shape(desc_path: Path) -> tuple[int, int, int]:
    """The (L, N, C >= 3) shape recorded under desc.json's key 'shape'."""
    try:
        desc = json.loads(desc_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{desc_path}: unreadable JSON ({_one_line(error)})") from None
    if not isinstance(desc, dict) or "shape" not in desc:
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


def _finite_float32(array: np.ndarray, where: str) -> np.ndarray:
    """`array` as a new float32 array, or DataError when it holds NaN or inf."""
    values = np.array(array, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise DataError(f"{where} has {bad} NaN/inf values (missing readings must be 0)")
    return values


def _series(
    info: DatasetInfo, values: np.ndarray, tod: np.ndarray, dow: np.ndarray, adjacency: np.ndarray, path: Path
) -> Series:
    """The Series of a file, warning (one line) when its sizes differ from the registry's."""
    num_steps, num_nodes = values.shape
    if (num_nodes, num_steps) != (info.num_nodes, info.num_steps):
        warnings.warn(
            f"{path}: {num_nodes} nodes x {num_steps} steps, registry has {info.name} as "
            f"{info.num_nodes} x {info.num_steps}; using the file's sizes",
            stacklevel=4,
        )
    sized = replace(info, num_nodes=num_nodes, num_steps=num_steps)
    return Series(info.name, sized, values, tod, dow, adjacency, str(path))


def _one_line(error: Exception) -> str:
    """The last non-empty line of an exception's message (HDF5 errors span many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"
