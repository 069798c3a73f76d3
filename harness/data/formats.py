"""Detection of the released file layouts of the traffic datasets, the ASTGCN and DCRNN readers,
and the ASTGCN writer.

Four layouts are recognised from the files present in a dataset's folder (names matched
case-insensitively; the first file of a layout identifies it), tried in this order:
  ASTGCN/STSGCN:  NAME.npz (key 'data', (T, N, C), channel 0 = flow) + NAME.csv edge list
                  (+ NAME.txt sensor ids for PEMS03); tod/dow by position, day 0 = first day,
                  at the registry's interval.
  DCRNN:          metr-la.h5 / pems-bay.h5 (pandas HDF, DatetimeIndex, one column per sensor)
                  + adj_mx.pkl / adj_mx_bay.pkl; interval and tod/dow from the timestamps.
  BasicTS 0.4/0.5 and BasicTS 1.x: see harness.data.basicts.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.basicts import read_basicts05, read_basicts1
from harness.data.errors import DataError
from harness.data.graphs import read_adjacency_pickle, read_pems_graph
from harness.data.reading import finite_float32, interval_of_timestamps, numeric_array, one_line, series_from_file
from harness.data.registry import DatasetInfo, get_dataset_info, resolve_name
from harness.data.series import SPLITS, Series
from models.base import DAYS_PER_WEEK

_DCRNN_FILES = {"METR-LA": ("metr-la.h5", "adj_mx.pkl"), "PEMS-BAY": ("pems-bay.h5", "adj_mx_bay.pkl")}
_ID_FILE_DATASETS = frozenset({"PEMS03"})


@dataclass(frozen=True)
class Layout:
    """One released file layout: the files it needs by role (the first identifies the layout), the
    files it reads when present, and its reader."""

    format: str
    files: dict[str, str]
    read: Callable[[dict[str, Path], DatasetInfo], Series]
    optional: dict[str, str] = field(default_factory=dict)

    @property
    def key_file(self) -> str:
        """The file whose presence says the folder holds this layout."""
        return next(iter(self.files.values()))

    def describe(self) -> str:
        """E.g. "PEMS04.npz + PEMS04.csv (ASTGCN)"."""
        optional = f" (+ {' + '.join(self.optional.values())})" if self.optional else ""
        return f"{' + '.join(self.files.values())}{optional} ({self.format})"


def layouts(info: DatasetInfo) -> tuple[Layout, ...]:
    """The layouts a dataset may come in, with its file names filled in."""
    astgcn = {"data": f"{info.name}.npz", "graph": f"{info.name}.csv"}
    if info.name in _ID_FILE_DATASETS:
        astgcn["ids"] = f"{info.name}.txt"
    h5_name, pickle_name = _DCRNN_FILES.get(info.name, (f"{info.name.lower()}.h5", "adj_mx.pkl"))
    basicts1 = {f"{split}_data": f"{split}_data.npy" for split in SPLITS}
    return (
        Layout("ASTGCN", astgcn, _read_astgcn),
        Layout("DCRNN", {"data": h5_name, "graph": pickle_name}, _read_dcrnn),
        Layout("BasicTS 0.4/0.5", {"data": "data.dat", "desc": "desc.json", "graph": "adj_mx.pkl"}, read_basicts05),
        Layout(
            "BasicTS 1.x",
            {**basicts1, "meta": "meta.json", "graph": "adj_mx.pkl"},
            read_basicts1,
            {f"{split}_timestamps": f"{split}_timestamps.npy" for split in SPLITS},
        ),
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
        if layout.key_file.lower() not in present:
            continue
        missing = [file for file in layout.files.values() if file.lower() not in present]
        if missing:
            raise DataError(
                f"{folder}: {layout.format} layout is missing {', '.join(missing)} (needs {layout.describe()})"
            )
        wanted = {**layout.files, **layout.optional}
        found = {role: present[file.lower()] for role, file in wanted.items() if file.lower() in present}
        return layout.read(found, info)
    raise DataError(f"{folder}: no dataset files for {info.name}; expected {expected_files(info)}")


def write_astgcn(series: Series, folder: Path, name: str | None = None) -> Path:
    """Write `series` in the ASTGCN layout (NAME.npz with data (T, N, 1) + NAME.csv); returns the folder.

    The csv lists each undirected edge once with its larger weight as cost, so the reader gives
    back the binary symmetric graph. tod/dow are not stored: the reader derives them from the
    position (step 0 = midnight of day-of-week 0), which is how the synthetic series start, at the
    registry's interval for `name`, so the series must have that interval.
    """
    stem = name or series.name
    registry_interval = get_dataset_info(stem).interval_minutes
    if series.info.interval_minutes != registry_interval:
        raise DataError(
            f"{folder}: ASTGCN files carry no timestamps; {stem} would be read back every {registry_interval} min, "
            f"but the series has a reading every {series.info.interval_minutes} min"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{stem}.npz", data=series.values[:, :, None])
    adjacency = series.adjacency if series.adjacency is not None else np.zeros((series.num_nodes,) * 2, np.float32)
    weights = np.maximum(adjacency, adjacency.T)
    sources, targets = np.nonzero(np.triu(weights, k=1))
    edges = pd.DataFrame({"from": sources, "to": targets, "cost": weights[sources, targets]})
    edges.to_csv(folder / f"{stem}.csv", index=False)
    return folder


def _read_astgcn(files: dict[str, Path], info: DatasetInfo) -> Series:
    """NAME.npz + NAME.csv (+ NAME.txt): flow is channel 0; tod/dow by position at the registry's interval."""
    path = files["data"]
    try:
        with np.load(path) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an npz archive")
            if "data" not in archive.files:
                raise DataError(f"{path}: no key 'data' (keys: {', '.join(archive.files) or 'none'})")
            data = archive["data"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: unreadable npz file ({one_line(error)})") from None
    data = numeric_array(data, f"{path}: key 'data'", ranks=(3,))
    values = finite_float32(data[..., 0], f"{path}: key 'data' channel 0")
    adjacency = read_pems_graph(files["graph"], values.shape[1], files.get("ids"))
    positions = np.arange(values.shape[0])
    tod, dow = positions % info.steps_per_day, (positions // info.steps_per_day) % DAYS_PER_WEEK
    return series_from_file(info, values, (tod, dow), adjacency, path, info.interval_minutes)


def _read_dcrnn(files: dict[str, Path], info: DatasetInfo) -> Series:
    """metr-la.h5 / pems-bay.h5 + adj pickle: interval and tod/dow from the DatetimeIndex (Monday = 0)."""
    path = files["data"]
    try:
        frame = pd.read_hdf(path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as error:
        raise DataError(f"{path}: unreadable HDF5 file ({one_line(error)})") from None
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{path}: expected a DataFrame with a DatetimeIndex, one column per sensor")
    try:
        raw = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: sensor columns are not numeric ({one_line(error)})") from None
    values = finite_float32(raw, f"{path}: sensor readings")
    interval = interval_of_timestamps(frame.index, str(path), info.interval_minutes)
    tod = np.asarray((frame.index.hour * 60 + frame.index.minute) // interval)
    adjacency = read_adjacency_pickle(files["graph"], values.shape[1])
    return series_from_file(info, values, (tod, np.asarray(frame.index.day_of_week)), adjacency, path, interval)
