"""Readers of the released layouts (ASTGCN npz+csv(+txt), DCRNN h5+pkl, BasicTS dat+json+pkl),
the real sensor graphs, folder lookup and every malformed-input error."""

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data import DataError, load_series, read_folder, read_graph

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


def _basicts_array(first_tod: int = 100, first_dow: int = 5) -> np.ndarray:
    steps = np.arange(STEPS) + first_tod
    array = np.empty((STEPS, NODES, 3), dtype=np.float32)
    array[..., 0] = _flow(1)[..., 0]
    array[..., 1] = ((steps % 288) / 288)[:, None]
    array[..., 2] = (((first_dow + steps // 288) % 7) / 7)[:, None]
    return array


def _write_basicts(folder: Path, array: np.ndarray, adjacency_pickle: object, desc=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    array.tofile(folder / "data.dat")
    desc = {"name": folder.name, "shape": list(array.shape), "num_nodes": array.shape[1]} if desc is None else desc
    (folder / "desc.json").write_text(json.dumps(desc))
    _write_pickle(folder / "adj_mx.pkl", adjacency_pickle)
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
    series = read_folder(_write_basicts(tmp_path / "SD", _basicts_array(), adjacency), "SD")
    np.testing.assert_array_equal(series.adjacency, adjacency)


def test_size_different_from_the_registry_warns_in_one_line_and_uses_the_file(tmp_path):
    folder = _write_astgcn(tmp_path / "PEMS04", "PEMS04", _flow())
    with pytest.warns(UserWarning, match=r"PEMS04\.npz: 4 nodes x 600 steps, registry has PEMS04 as 307 x 16992"):
        series = read_folder(folder, "PEMS04")
    assert (series.info.num_nodes, series.info.num_steps) == (NODES, STEPS)


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


BAD_INPUTS: list[tuple[Callable[[Path], None], str, str]] = [
    (_npz_without_data_key, "PEMS04", r"PEMS04\.npz: no key 'data' \(keys: flow\)"),
    (_npz_of_rank_two, "PEMS04", r"PEMS04\.npz: key 'data' has rank 2, expected \(T, N, C\)"),
    (_npz_with_nan, "PEMS04", r"PEMS04\.npz: key 'data' channel 0 has 1 NaN/inf values"),
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
        r"pems04\.h5 \+ adj_mx\.pkl \(DCRNN\) or data\.dat \+ desc\.json \+ adj_mx\.pkl \(BasicTS\)",
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
]


@pytest.mark.parametrize(("build", "name", "message"), BAD_INPUTS, ids=[case[0].__name__[1:] for case in BAD_INPUTS])
def test_malformed_dataset_files_raise_a_one_line_data_error_naming_file_and_field(tmp_path, build, name, message):
    folder = tmp_path / name
    build(folder)
    with pytest.raises(DataError, match=message) as error:
        read_folder(folder, name)
    assert "\n" not in str(error.value)
