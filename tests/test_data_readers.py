"""Readers of the released layouts (ASTGCN npz+csv(+txt), DCRNN h5+pkl, BasicTS 0.4/0.5 dat+json+pkl,
BasicTS 1.x split npy+json+pkl), the readings' interval, the real sensor graphs, folder lookup and
every malformed-input error."""

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data import DataError, generate_synthetic, load_graph_pickle, load_series, prepare, read_folder, read_graph

pytestmark = pytest.mark.filterwarnings("ignore:.*using the file's sizes:UserWarning")

STEPS, NODES = 600, 4
EDGES = [(0, 1, 5.0), (1, 2, 3.5), (3, 2, 1.0), (2, 2, 0.0)]  # includes a self loop, dropped by the reader
SENSOR_IDS = [4017, 4012, 4100, 3999]


def _flow(channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 500, size=(STEPS, NODES, channels)).astype(np.float64)


def _write_astgcn(folder: Path, name: str, data: np.ndarray, edges=EDGES, sensor_ids=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", data=data)
    pd.DataFrame(edges, columns=["from", "to", "cost"]).to_csv(folder / f"{name}.csv", index=False)
    if sensor_ids is not None:
        (folder / f"{name}.txt").write_text("".join(f"{sensor}\n" for sensor in sensor_ids))
    return folder


def _weighted_adjacency(nodes: int = NODES) -> np.ndarray:
    adjacency = np.random.default_rng(1).uniform(0, 1, (nodes, nodes)).astype(np.float32)
    np.fill_diagonal(adjacency, 1.0)
    return adjacency


def _write_pickle(path: Path, content: object) -> None:
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=2)


def _dcrnn_pickle(adjacency: np.ndarray) -> list:
    sensor_ids = [str(700000 + i) for i in range(len(adjacency))]
    return [sensor_ids, {sensor: i for i, sensor in enumerate(sensor_ids)}, adjacency]


def _speed_frame(index=None) -> pd.DataFrame:
    if index is None:
        index = pd.date_range("2012-03-01 00:00", periods=STEPS, freq="5min")  # a Thursday
    speeds = np.random.default_rng(2).uniform(0, 70, (STEPS, NODES))
    return pd.DataFrame(speeds, index=index, columns=[str(700000 + i) for i in range(NODES)])


def _write_dcrnn(folder: Path, frame: pd.DataFrame, adjacency: np.ndarray, h5_name="metr-la.h5", pkl="adj_mx.pkl"):
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_hdf(folder / h5_name, key="df")
    _write_pickle(folder / pkl, _dcrnn_pickle(adjacency))
    return folder


def _time_fractions(num_steps: int, per_day: int = 288, first_tod: int = 0, first_dow: int = 0):
    """BasicTS's time features: (tod fraction, dow fraction) of each step."""
    steps = np.arange(num_steps) + first_tod
    return (steps % per_day) / per_day, ((first_dow + steps // per_day) % 7) / 7


def _basicts_array(first_tod: int = 100, first_dow: int = 5, per_day: int = 288) -> np.ndarray:
    array = np.empty((STEPS, NODES, 3), dtype=np.float32)
    array[..., 0] = _flow(1)[..., 0]
    for channel, fraction in enumerate(_time_fractions(STEPS, per_day, first_tod, first_dow), start=1):
        array[..., channel] = fraction[:, None]
    return array


def _write_basicts(folder: Path, array: np.ndarray, adjacency_pickle: object, desc=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    array.tofile(folder / "data.dat")
    desc = {"name": folder.name, "shape": list(array.shape), "num_nodes": array.shape[1]} if desc is None else desc
    (folder / "desc.json").write_text(json.dumps(desc))
    _write_pickle(folder / "adj_mx.pkl", adjacency_pickle)
    return folder


def _write_basicts1(
    folder: Path,
    values: np.ndarray,
    time: tuple[np.ndarray, np.ndarray],
    adjacency: np.ndarray | None = None,
    timestamps: bool = True,
    **meta_changes,
) -> Path:
    """The BasicTS 1.x layout as its preparation scripts write it: {train,val,test}_data.npy split at
    int(T * 0.6) and int(T * 0.2) rows, float32 {split}_timestamps.npy [tod, dow fractions],
    meta.json (null_val NaN) and adj_mx.pkl. `meta_changes` override meta.json's keys."""
    folder.mkdir(parents=True, exist_ok=True)
    num_steps = len(values)
    train, val = int(num_steps * 0.6), int(num_steps * 0.2)
    stamps = np.stack(time, axis=-1).astype(np.float32)
    splits = {"train": slice(0, train), "val": slice(train, train + val), "test": slice(train + val, None)}
    for split, rows in splits.items():
        np.save(folder / f"{split}_data.npy", values[rows].astype(np.float32))
        if timestamps:
            np.save(folder / f"{split}_timestamps.npy", stamps[rows])
    meta = {
        "name": folder.name,
        "domain": "traffic flow",
        "frequency (minutes)": 5,
        "shape": list(values.shape),
        "timestamps_shape": list(stamps.shape),
        "timestamps_description": ["time of day", "day of week"],
        "num_time_steps": num_steps,
        "num_vars": values.shape[1],
        "has_graph": True,
        "regular_settings": {
            "train_val_test_ratio": [0.6, 0.2, 0.2],
            "norm_each_channel": False,
            "rescale": True,
            "metrics": ["MAE", "RMSE", "MAPE"],
            "null_val": float("nan"),
        },
        **meta_changes,
    }
    (folder / "meta.json").write_text(json.dumps(meta))  # NaN written as BasicTS writes it
    _write_pickle(folder / "adj_mx.pkl", _weighted_adjacency(values.shape[1]) if adjacency is None else adjacency)
    return folder


# ---------------------------------------------------------------------------------------- readers


def test_astgcn_reader_keeps_flow_channel_and_builds_a_binary_symmetric_graph(tmp_path):
    data = _flow()
    series = read_folder(_write_astgcn(tmp_path / "PEMS04", "PEMS04", data), "PEMS04")
    np.testing.assert_array_equal(series.values, data[..., 0].astype(np.float32))
    expected = np.zeros((NODES, NODES), dtype=np.float32)
    for source, target in [(0, 1), (1, 2), (3, 2)]:
        expected[source, target] = expected[target, source] = 1.0
    np.testing.assert_array_equal(series.adjacency, expected)
    positions = np.arange(STEPS)
    np.testing.assert_array_equal(series.tod, positions % 288)
    np.testing.assert_array_equal(series.dow, (positions // 288) % 7)
    assert series.name == "PEMS04" and series.source.endswith("PEMS04.npz") and series.values.dtype == np.float32


def test_pems03_edges_are_mapped_to_rows_through_the_id_file(tmp_path):
    edges = [(4017, 4100, 1.0), (3999, 4012, 2.0)]
    folder = _write_astgcn(tmp_path / "PEMS03", "PEMS03", _flow(1), edges, SENSOR_IDS)
    adjacency = read_folder(folder, "PEMS03").adjacency
    assert sorted(zip(*np.nonzero(adjacency), strict=True)) == [(0, 2), (1, 3), (2, 0), (3, 1)]


def test_dcrnn_reader_takes_time_features_from_the_timestamps(tmp_path):
    index = pd.date_range("2012-03-01 00:00", periods=STEPS, freq="5min")
    frame = _speed_frame(index)
    adjacency = _weighted_adjacency()
    series = read_folder(_write_dcrnn(tmp_path / "METR-LA", frame, adjacency), "METR-LA")
    np.testing.assert_array_equal(series.values, frame.to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(series.adjacency, adjacency)  # the weighted matrix, as given
    np.testing.assert_array_equal(series.tod, np.arange(STEPS) % 288)
    np.testing.assert_array_equal(series.dow, (3 + np.arange(STEPS) // 288) % 7)  # 2012-03-01 was a Thursday


def test_pems_bay_reads_its_own_pickle_name(tmp_path):
    folder = _write_dcrnn(tmp_path / "PEMS-BAY", _speed_frame(), _weighted_adjacency(), "pems-bay.h5", "adj_mx_bay.pkl")
    assert read_folder(folder, "pems-bay").values.shape == (STEPS, NODES)


def test_basicts_reader_turns_fraction_channels_into_indices(tmp_path):
    array = _basicts_array(first_tod=100, first_dow=5)
    adjacency = _weighted_adjacency()
    series = read_folder(_write_basicts(tmp_path / "PEMS08", array, _dcrnn_pickle(adjacency)), "PEMS08")
    np.testing.assert_array_equal(series.values, array[..., 0])
    steps = np.arange(STEPS) + 100
    np.testing.assert_array_equal(series.tod, steps % 288)
    np.testing.assert_array_equal(series.dow, (5 + steps // 288) % 7)
    np.testing.assert_array_equal(series.adjacency, adjacency)


def test_basicts_reader_accepts_a_plain_array_pickle(tmp_path):
    adjacency = _weighted_adjacency()
    series = read_folder(_write_basicts(tmp_path / "SD", _basicts_array(per_day=96), adjacency), "SD")
    np.testing.assert_array_equal(series.adjacency, adjacency)


@pytest.mark.parametrize("desc_frequency", [{"frequency (minutes)": 15}, {}], ids=["desc.json", "fractions"])
def test_basicts_05_reader_takes_the_interval_from_desc_json_or_the_tod_fractions(tmp_path, desc_frequency):
    array = _basicts_array(first_tod=90, per_day=96)
    desc = {"name": "SD", "shape": list(array.shape), **desc_frequency}
    series = read_folder(_write_basicts(tmp_path / "SD", array, _weighted_adjacency(), desc), "SD")
    assert (series.info.interval_minutes, series.info.steps_per_day) == (15, 96)
    np.testing.assert_array_equal(series.tod, (np.arange(STEPS) + 90) % 96)
    assert prepare(series).meta().steps_per_day == 96


def test_dcrnn_reader_takes_the_interval_from_the_timestamps(tmp_path):
    index = pd.date_range("2012-03-01 00:00", periods=STEPS, freq="15min")
    folder = _write_dcrnn(tmp_path / "METR-LA", _speed_frame(index), _weighted_adjacency())
    with pytest.warns(UserWarning, match=r"every 15 min, registry has METR-LA as 207 x 34272 every 5 min"):
        series = read_folder(folder, "METR-LA")
    assert (series.info.interval_minutes, series.info.steps_per_day) == (15, 96)
    np.testing.assert_array_equal(series.tod, np.arange(STEPS) % 96)
    np.testing.assert_array_equal(series.dow, (3 + np.arange(STEPS) // 96) % 7)


def test_size_different_from_the_registry_warns_in_one_line_and_uses_the_file(tmp_path):
    folder = _write_astgcn(tmp_path / "PEMS04", "PEMS04", _flow())
    message = r"PEMS04\.npz: 4 nodes x 600 steps every 5 min, registry has PEMS04 as 307 x 16992 every 5 min; using"
    with pytest.warns(UserWarning, match=message):
        series = read_folder(folder, "PEMS04")
    assert (series.info.num_nodes, series.info.num_steps) == (NODES, STEPS)


# ------------------------------------------------------------------------------------ BasicTS 1.x


def test_basicts1_round_trip_keeps_the_files_split_and_reads_nan_as_missing(tmp_path):
    series = generate_synthetic(num_nodes=NODES, num_steps=602, seed=5)  # its sensor gaps are zeros
    stored = np.where(series.values == 0, np.nan, series.values)  # BasicTS 1.x marks them NaN
    folder = _write_basicts1(tmp_path / "PEMS04", stored, (series.tod / 288, series.dow / 7), series.adjacency)
    read = read_folder(folder, "PEMS04")
    np.testing.assert_array_equal(read.values, series.values)
    np.testing.assert_array_equal(read.tod, series.tod)
    np.testing.assert_array_equal(read.dow, series.dow)
    np.testing.assert_array_equal(read.adjacency, series.adjacency)
    assert read.segments == {"train": (0, 361), "val": (361, 481), "test": (481, 602)}  # int(0.6 T), int(0.2 T), rest
    assert "BasicTS 1.x: its own train/val/test split of 361/120/121 steps is kept" in read.source
    data = prepare(read)
    assert data.num_samples() == {"train": 338, "val": 97, "test": 98}
    assert data.source == read.source and data.segments == read.segments


def test_basicts1_pems04_keeps_its_10172_3375_3376_windows_and_the_05_scaler(tmp_path):
    values = np.random.default_rng(3).uniform(1, 500, (16992, 2))
    folder = _write_basicts1(tmp_path / "PEMS04", values, _time_fractions(16992))
    data = prepare(read_folder(folder, "PEMS04"))
    assert data.num_samples() == {"train": 10172, "val": 3375, "test": 3376}
    fitted = values[:10195].astype(np.float32)  # the 0.5 scaler's rows: here the whole training file
    assert (data.mean, data.std) == (float(np.mean(fitted)), float(np.std(fitted)))


@pytest.mark.parametrize("frequency", [15, None], ids=["meta.json", "fractions"])
def test_basicts1_fifteen_minute_largest_gives_96_steps_per_day(tmp_path, frequency):
    values = _flow(1)[:288, :, 0]
    folder = _write_basicts1(tmp_path / "SD", values, _time_fractions(288, 96), **{"frequency (minutes)": frequency})
    series = read_folder(folder, "SD")
    assert (series.info.interval_minutes, series.info.steps_per_day) == (15, 96)
    np.testing.assert_array_equal(series.tod, np.arange(288) % 96)
    assert prepare(series).meta().steps_per_day == 96


def test_basicts1_time_features_may_be_data_channels_instead_of_timestamps_files(tmp_path):
    array = _basicts_array(first_tod=5, first_dow=2)
    folder = _write_basicts1(tmp_path / "PEMS08", array, _time_fractions(STEPS), timestamps=False)
    series = read_folder(folder, "PEMS08")
    np.testing.assert_array_equal(series.values, array[..., 0])
    np.testing.assert_array_equal(series.tod, (np.arange(STEPS) + 5) % 288)
    np.testing.assert_array_equal(series.dow, (2 + (np.arange(STEPS) + 5) // 288) % 7)


def test_basicts1_numeric_null_value_marks_missing_readings(tmp_path):
    values = _flow(1)[..., 0]
    values[[3, 400], [1, 2]] = -1.0
    settings = {"train_val_test_ratio": [0.7, 0.1, 0.2], "null_val": -1}
    folder = _write_basicts1(tmp_path / "PEMS04", values, _time_fractions(STEPS), regular_settings=settings)
    series = read_folder(folder, "PEMS04")
    assert series.values[3, 1] == 0 and series.values[400, 2] == 0 and (series.values >= 0).all()
    assert series.info.split == (0.7, 0.1, 0.2)


# ------------------------------------------------------------------------------- folders and names


def test_load_series_finds_the_dataset_folder_case_insensitively_via_the_environment(tmp_path, monkeypatch):
    _write_astgcn(tmp_path / "pems04", "pems04", _flow())
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    assert load_series("PEMS04").values.shape == (STEPS, NODES)


def test_load_series_accepts_folder_aliases(tmp_path):
    _write_dcrnn(tmp_path / "pems_bay", _speed_frame(), _weighted_adjacency(), "pems-bay.h5", "adj_mx_bay.pkl")
    assert load_series("PEMS-BAY", data_dir=tmp_path).name == "PEMS-BAY"


def test_real_dataset_without_data_dir_says_what_to_pass_and_what_to_put_there(monkeypatch):
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    with pytest.raises(DataError) as error:
        load_series("pems08")
    message = str(error.value)
    assert "--data-dir" in message and "HARNESS_DATA_DIR" in message and "PEMS08.npz + PEMS08.csv" in message
    assert "data.dat + desc.json + adj_mx.pkl" in message and "\n" not in message


def test_missing_dataset_folder_names_the_folder_and_the_files(tmp_path):
    with pytest.raises(DataError, match=r"no folder PEMS07/ for dataset PEMS07; it should hold PEMS07\.npz"):
        load_series("PEMS07", data_dir=tmp_path)


def test_missing_data_directory_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data directory not found"):
        load_series("PEMS07", data_dir=tmp_path / "nowhere")


def test_options_are_only_for_the_synthetic_dataset(tmp_path):
    with pytest.raises(DataError, match=r"options: only the synthetic dataset takes options; PEMS04 got nodes"):
        load_series("PEMS04", data_dir=tmp_path, options={"nodes": 3})


# -------------------------------------------------------------------------------- real graphs


@pytest.mark.parametrize(
    ("file", "nodes"), [("PEMS03.csv", 358), ("PEMS04.csv", 307), ("PEMS07.csv", 883), ("PEMS08.csv", 170)]
)
def test_real_pems_graphs_load_as_binary_symmetric_matrices(shared_graphs, file, nodes):
    adjacency = read_graph(shared_graphs / file)
    assert adjacency.shape == (nodes, nodes)
    assert set(np.unique(adjacency)) == {0.0, 1.0}
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert not adjacency.diagonal().any()


@pytest.mark.parametrize(("file", "nodes"), [("METR-LA_adj_mx.pkl", 207), ("PEMS-BAY_adj_mx.pkl", 325)])
def test_real_dcrnn_pickles_load_as_weighted_matrices(shared_graphs, file, nodes):
    adjacency = read_graph(shared_graphs / file)
    assert adjacency.shape == (nodes, nodes) and adjacency.dtype == np.float32
    assert adjacency.min() >= 0 and adjacency.max() <= 1.0 and len(np.unique(adjacency)) > 2
    sensor_ids, id_to_index, _ = load_graph_pickle(shared_graphs / file)  # Python 2 pickles, latin1 strings
    assert len(sensor_ids) == nodes and all(isinstance(sensor, str) for sensor in sensor_ids)
    assert id_to_index[sensor_ids[-1]] == nodes - 1


# ------------------------------------------------------------------------------ hostile pickles


class _RunsACommand:
    """Unpickling this calls os.system(command): what a hostile adj_mx.pkl does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _WritesAFile:
    """Unpickling this calls Path.write_text(path, ...) (a global found by its dotted name)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.write_text, (self.path, "pwned")


def _hostile_payloads(sentinel: Path) -> dict[str, object]:
    adjacency = _weighted_adjacency()
    return {
        "os.system": _RunsACommand(f"touch {sentinel}"),
        "os.system inside the DCRNN list": [["a"], {"a": 0}, _RunsACommand(f"touch {sentinel}")],
        "Path.write_text beside the matrix": [_WritesAFile(sentinel), {}, adjacency],
    }


@pytest.mark.parametrize("payload", list(_hostile_payloads(Path("pwned"))))
@pytest.mark.parametrize("entry", ["DCRNN folder", "BasicTS 0.5 folder", "BasicTS 1.x folder", "graph option"])
def test_hostile_pickle_runs_nothing_and_is_a_data_error_naming_the_file(tmp_path, payload, entry):
    sentinel = tmp_path / "pwned"
    content = _hostile_payloads(sentinel)[payload]
    folder = tmp_path / "METR-LA"
    if entry == "DCRNN folder":
        _write_dcrnn(folder, _speed_frame(), _weighted_adjacency())
    elif entry == "BasicTS 0.5 folder":
        _write_basicts(folder, _basicts_array(), _weighted_adjacency())
    elif entry == "BasicTS 1.x folder":
        _write_basicts1(folder, _flow(1)[..., 0], _time_fractions(STEPS))
    else:
        folder.mkdir()
    with (folder / "adj_mx.pkl").open("wb") as handle:
        pickle.dump(content, handle, protocol=4)
    message = r"METR-LA/adj_mx\.pkl: refused to unpickle \S+; graph pickles may hold only"
    with pytest.raises(DataError, match=message) as error:
        if entry == "graph option":
            load_series("synthetic", options={"graph": str(folder / "adj_mx.pkl")})
        else:
            read_folder(folder, "METR-LA")
    assert "\n" not in str(error.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_graph_pickles_of_containers_strings_numbers_and_arrays_load_at_every_protocol(tmp_path, protocol):
    adjacency = _weighted_adjacency()
    content = [["701", "702", "703", "704"], {"701": np.int64(0), "702": 1}, adjacency, ("ids", b"raw", {1.5}, None)]
    path = tmp_path / "adj.pkl"
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=protocol)
    loaded = load_graph_pickle(path)
    assert loaded[0] == content[0] and loaded[1] == content[1] and loaded[3] == content[3]
    np.testing.assert_array_equal(loaded[2], adjacency)


# ----------------------------------------------------------------------------------- bad input


def _npz_without_data_key(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow())
    np.savez(folder / "PEMS04.npz", flow=_flow())


def _npz_of_rank_two(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow()[..., 0])


def _npz_with_nan(folder: Path) -> None:
    data = _flow()
    data[7, 2, 0] = np.nan
    _write_astgcn(folder, "PEMS04", data)


def _npz_of_strings(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow().astype(str))


def _npz_of_objects(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow().astype(object))


def _npz_of_complex_numbers(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow().astype(np.complex64))


def _npz_without_channels(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow()[..., :0])


def _npz_without_steps(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow()[:0])


def _npz_of_rank_four(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow()[..., None])


def _npz_only_nan(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", np.full((STEPS, NODES, 1), np.nan))


def _npz_only_zeros(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", np.zeros((STEPS, NODES, 1)))


def _npz_corrupt(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow())
    (folder / "PEMS04.npz").write_bytes(b"PK\x03\x04 not really a zip archive")


def _csv_id_outside_the_data(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow(), [(0, 9, 1.0)])


def _csv_with_text_ids(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow(), [("a", "b", 1.0)])


def _csv_missing(folder: Path) -> None:
    _write_astgcn(folder, "PEMS04", _flow())
    (folder / "PEMS04.csv").unlink()


def _pems03_edge_id_not_in_id_file(folder: Path) -> None:
    _write_astgcn(folder, "PEMS03", _flow(), [(4017, 999, 1.0)], SENSOR_IDS)


def _pems03_id_file_too_short(folder: Path) -> None:
    _write_astgcn(folder, "PEMS03", _flow(), [(4017, 4012, 1.0)], SENSOR_IDS[:3])


def _pems03_without_id_file(folder: Path) -> None:
    _write_astgcn(folder, "PEMS03", _flow(), [(4017, 4012, 1.0)])


def _empty_folder(folder: Path) -> None:
    folder.mkdir()


def _h5_corrupt(folder: Path) -> None:
    _write_dcrnn(folder, _speed_frame(), _weighted_adjacency())
    (folder / "metr-la.h5").write_bytes(b"garbage" * 50)


def _h5_without_timestamps(folder: Path) -> None:
    _write_dcrnn(folder, _speed_frame(pd.RangeIndex(STEPS)), _weighted_adjacency())


def _h5_with_inf(folder: Path) -> None:
    frame = _speed_frame()
    frame.iloc[3, 1] = np.inf
    _write_dcrnn(folder, frame, _weighted_adjacency())


def _pickle_with_too_few_nodes(folder: Path) -> None:
    _write_dcrnn(folder, _speed_frame(), _weighted_adjacency(NODES - 1))


def _pickle_corrupt(folder: Path) -> None:
    _write_dcrnn(folder, _speed_frame(), _weighted_adjacency())
    (folder / "adj_mx.pkl").write_bytes(b"\x80\x02 truncated")


def _pickle_of_a_dict(folder: Path) -> None:
    _write_dcrnn(folder, _speed_frame(), _weighted_adjacency())
    _write_pickle(folder / "adj_mx.pkl", {"adj": 1})


def _desc_without_shape(folder: Path) -> None:
    _write_basicts(folder, _basicts_array(), _weighted_adjacency(), desc={"name": "PEMS04"})


def _desc_corrupt(folder: Path) -> None:
    _write_basicts(folder, _basicts_array(), _weighted_adjacency())
    (folder / "desc.json").write_text("{not json")


def _dat_shorter_than_desc(folder: Path) -> None:
    array = _basicts_array()
    _write_basicts(folder, array, _weighted_adjacency(), desc={"shape": [STEPS + 1, NODES, 3]})


def _dat_with_nan(folder: Path) -> None:
    array = _basicts_array()
    array[0, 0, 0] = np.nan
    _write_basicts(folder, array, _weighted_adjacency())


def _basicts1(folder: Path, **changes) -> Path:
    """A well-formed BasicTS 1.x PEMS04 folder (meta.json keys changed by `changes`)."""
    return _write_basicts1(folder, _flow(1)[..., 0], _time_fractions(STEPS), **changes)


def _basicts1_without_val_data(folder: Path) -> None:
    (_basicts1(folder) / "val_data.npy").unlink()


def _basicts1_object_array(folder: Path) -> None:
    np.save(_basicts1(folder) / "train_data.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)


def _basicts1_string_array(folder: Path) -> None:
    np.save(_basicts1(folder) / "train_data.npy", np.array([["12.5", "n/a"]]))


def _basicts1_sensors_differ(folder: Path) -> None:
    np.save(_basicts1(folder) / "val_data.npy", np.ones((120, NODES - 1), dtype=np.float32))


def _basicts1_timestamps_too_short(folder: Path) -> None:
    np.save(_basicts1(folder) / "test_timestamps.npy", np.zeros((119, 2), dtype=np.float32))


def _basicts1_without_time_features(folder: Path) -> None:
    _basicts1(folder, timestamps=False)


def _basicts1_meta_corrupt(folder: Path) -> None:
    (_basicts1(folder) / "meta.json").write_text("[1, 2")


def _basicts1_null_value_text(folder: Path) -> None:
    _basicts1(folder, regular_settings={"null_val": "none"})


def _basicts1_two_ratios(folder: Path) -> None:
    _basicts1(folder, regular_settings={"train_val_test_ratio": [0.5, 0.5]})


def _basicts1_unnamed_time_of_day(folder: Path) -> None:
    _basicts1(folder, timestamps_description=["day of week", "day of month"])


def _basicts1_frequency_not_a_divisor(folder: Path) -> None:
    _basicts1(folder, **{"frequency (minutes)": 7})


def _basicts1_frequency_off_the_tod_fractions(folder: Path) -> None:
    _basicts1(folder, **{"frequency (minutes)": 15})  # the fractions step by 1/288


def _basicts1_only_null(folder: Path) -> None:
    _write_basicts1(folder, np.full((STEPS, NODES), np.nan), _time_fractions(STEPS))


def _basicts1_inf(folder: Path) -> None:
    values = _flow(1)[..., 0]
    values[5, 0] = np.inf
    _write_basicts1(folder, values, _time_fractions(STEPS))


BAD_INPUTS: list[tuple[Callable[[Path], None], str, str]] = [
    (_npz_without_data_key, "PEMS04", r"PEMS04\.npz: no key 'data' \(keys: flow\)"),
    (_npz_of_rank_two, "PEMS04", r"PEMS04\.npz: key 'data': rank 2 \(shape \(600, 4\)\), expected rank 3"),
    (_npz_of_rank_four, "PEMS04", r"PEMS04\.npz: key 'data': rank 4 \(shape \(600, 4, 3, 1\)\), expected rank 3"),
    (_npz_with_nan, "PEMS04", r"PEMS04\.npz: key 'data' channel 0 has 1 NaN/inf values"),
    (_npz_of_strings, "PEMS04", r"PEMS04\.npz: key 'data': dtype <U\d+ is not numeric"),
    (_npz_of_objects, "PEMS04", r"PEMS04\.npz: unreadable npz file \(ValueError: Object arrays cannot be loaded"),
    (_npz_of_complex_numbers, "PEMS04", r"PEMS04\.npz: key 'data': dtype complex64 is not numeric"),
    (_npz_without_channels, "PEMS04", r"PEMS04\.npz: key 'data': shape \(600, 4, 0\) has an empty axis"),
    (_npz_without_steps, "PEMS04", r"PEMS04\.npz: key 'data': shape \(0, 4, 3\) has an empty axis"),
    (_npz_only_nan, "PEMS04", r"PEMS04\.npz: key 'data' channel 0 has 2400 NaN/inf values"),
    (_npz_only_zeros, "PEMS04", r"PEMS04\.npz: every reading is 0 or null; there is nothing to forecast"),
    (_npz_corrupt, "PEMS04", r"PEMS04\.npz: unreadable npz file \(BadZipFile"),
    (_csv_id_outside_the_data, "PEMS04", r"PEMS04\.csv: sensor id 9 is not a row index 0\.\.3 of the 4-node data"),
    (_csv_with_text_ids, "PEMS04", r"PEMS04\.csv: columns \['from', 'to'\] must hold integer sensor ids"),
    (_csv_missing, "PEMS04", r"PEMS04: ASTGCN layout is missing PEMS04\.csv"),
    (
        _pems03_edge_id_not_in_id_file,
        "PEMS03",
        r"PEMS03\.csv: edge sensor id 999 is not listed in the id file .*PEMS03\.txt",
    ),
    (_pems03_id_file_too_short, "PEMS03", r"PEMS03\.txt: lists 3 sensor ids, but the data has 4 nodes"),
    (_pems03_without_id_file, "PEMS03", r"ASTGCN layout is missing PEMS03\.txt"),
    (
        _empty_folder,
        "PEMS04",
        r"no dataset files for PEMS04; expected PEMS04\.npz \+ PEMS04\.csv \(ASTGCN\) or "
        r"pems04\.h5 \+ adj_mx\.pkl \(DCRNN\) or data\.dat \+ desc\.json \+ adj_mx\.pkl \(BasicTS 0\.4/0\.5\) or "
        r"train_data\.npy \+ val_data\.npy \+ test_data\.npy \+ meta\.json \+ adj_mx\.pkl "
        r"\(\+ train_timestamps\.npy \+ val_timestamps\.npy \+ test_timestamps\.npy\) \(BasicTS 1\.x\)",
    ),
    (_h5_corrupt, "METR-LA", r"metr-la\.h5: unreadable HDF5 file"),
    (_h5_without_timestamps, "METR-LA", r"metr-la\.h5: expected a DataFrame with a DatetimeIndex"),
    (_h5_with_inf, "METR-LA", r"metr-la\.h5: sensor readings has 1 NaN/inf values"),
    (_pickle_with_too_few_nodes, "METR-LA", r"adj_mx\.pkl: adjacency has 3 nodes, but the data has 4"),
    (_pickle_corrupt, "METR-LA", r"adj_mx\.pkl: unreadable pickle"),
    (
        _pickle_of_a_dict,
        "METR-LA",
        r"adj_mx\.pkl: expected \[sensor_ids, id_to_index, adj\] or an \(N, N\) array, got dict",
    ),
    (_desc_without_shape, "PEMS04", r"desc\.json: missing key 'shape'"),
    (_desc_corrupt, "PEMS04", r"desc\.json: unreadable JSON"),
    (_dat_shorter_than_desc, "PEMS04", r"data\.dat: 28800 bytes, but desc\.json shape \[601, 4, 3\] needs 28848"),
    (_dat_with_nan, "PEMS04", r"data\.dat: channel 0 \(value\) has 1 NaN/inf values"),
    (_basicts1_without_val_data, "PEMS04", r"PEMS04: BasicTS 1\.x layout is missing val_data\.npy"),
    (
        _basicts1_object_array,
        "PEMS04",
        r"train_data\.npy: unreadable \.npy file \(ValueError: Object arrays cannot be loaded when allow_pickle=False",
    ),
    (_basicts1_string_array, "PEMS04", r"train_data\.npy: dtype <U4 is not numeric"),
    (_basicts1_sensors_differ, "PEMS04", r"val_data\.npy: 3 sensors, but train_data\.npy has 4"),
    (
        _basicts1_timestamps_too_short,
        "PEMS04",
        r"test_timestamps\.npy: shape \(119, 2\), expected 120 rows \(as test_data\.npy\) and columns \[0, 1\]",
    ),
    (
        _basicts1_without_time_features,
        "PEMS04",
        r"train_data\.npy: no time features: neither train_timestamps\.npy nor tod/dow channels 1-2 "
        r"\(shape \(360, 4\)\)",
    ),
    (_basicts1_meta_corrupt, "PEMS04", r"meta\.json: unreadable JSON"),
    (_basicts1_null_value_text, "PEMS04", r"meta\.json: regular_settings 'null_val' is 'none', expected a number"),
    (
        _basicts1_two_ratios,
        "PEMS04",
        r"meta\.json: regular_settings 'train_val_test_ratio' is \[0\.5, 0\.5\], expected 3 ratios summing to 1",
    ),
    (_basicts1_unnamed_time_of_day, "PEMS04", r"meta\.json: timestamps_description .* lacks 'time of day'"),
    (
        _basicts1_frequency_not_a_divisor,
        "PEMS04",
        r"meta\.json: key 'frequency \(minutes\)': interval 7 minutes does not divide a day of 1440 minutes",
    ),
    (
        _basicts1_frequency_off_the_tod_fractions,
        "PEMS04",
        r"\{train,val,test\}_data\.npy: time-of-day fractions: \d+ fractions are not multiples of 1/96",
    ),
    (_basicts1_only_null, "PEMS04", r"train_data\.npy: every reading is 0 or null"),
    (_basicts1_inf, "PEMS04", r"\{train,val,test\}_data\.npy: value channel has 1 NaN/inf values"),
]


@pytest.mark.parametrize(("build", "name", "message"), BAD_INPUTS, ids=[case[0].__name__[1:] for case in BAD_INPUTS])
def test_malformed_dataset_files_raise_a_one_line_data_error_naming_file_and_field(tmp_path, build, name, message):
    folder = tmp_path / name
    build(folder)
    with pytest.raises(DataError, match=message) as error:
        read_folder(folder, name)
    assert "\n" not in str(error.value)
