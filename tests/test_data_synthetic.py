"""The built-in synthetic dataset: determinism, realistic structure, options and the ASTGCN round trip."""

import warnings

import numpy as np
import pytest

from harness.data import (
    DataError,
    Series,
    generate_synthetic,
    load_series,
    prepare,
    read_folder,
    read_graph,
    write_astgcn,
)
from harness.data.synthetic import _incident_cuts

DAY = 288


@pytest.fixture(scope="module")
def clean_flow() -> Series:
    """Default size (40 sensors x 28 days), without gaps or incidents."""
    return generate_synthetic(seed=0, missing_rate=0.0, incident_rate=0.0)


def _autocorrelation(values: np.ndarray, lag: int) -> float:
    centred = values - values.mean(axis=0)
    return float(np.mean([np.corrcoef(column[:-lag], column[lag:])[0, 1] for column in centred.T]))


def _residuals(series: Series) -> np.ndarray:
    """Values minus each sensor's mean profile by (weekday or weekend, time of day)."""
    key = (series.dow >= 5) * DAY + series.tod
    means = np.zeros((2 * DAY, series.num_nodes))
    np.add.at(means, key, series.values)
    means /= np.bincount(key, minlength=2 * DAY)[:, None]
    return series.values - means[key]


def _lagged_correlations(upstream: np.ndarray, downstream: np.ndarray, max_lag: int) -> np.ndarray:
    """corr(upstream[t], downstream[t + lag]) for lag = 0 .. max_lag."""
    pairs = ((upstream[: len(upstream) - lag], downstream[lag:]) for lag in range(max_lag + 1))
    return np.array([np.corrcoef(earlier, later)[0, 1] for earlier, later in pairs])


def _zero_run_lengths(values: np.ndarray) -> np.ndarray:
    """Lengths of all runs of consecutive zero readings, sensor by sensor."""
    runs = []
    for column in (values == 0).T:
        edges = np.diff(np.concatenate(([0], column.astype(np.int8), [0])))
        runs.append(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    return np.concatenate(runs)


def _rush_window(series: Series, weekend: bool, start_hour: float, end_hour: float) -> np.ndarray:
    hours = series.tod / 12
    rows = ((series.dow >= 5) == weekend) & (hours >= start_hour) & (hours < end_hour)
    return series.values[rows]


def test_same_seed_gives_the_same_series_and_another_seed_a_different_one():
    first, again = (generate_synthetic(num_nodes=12, num_steps=3 * DAY, seed=5) for _ in range(2))
    other = generate_synthetic(num_nodes=12, num_steps=3 * DAY, seed=6)
    assert first.fingerprint() == again.fingerprint()
    np.testing.assert_array_equal(first.values, again.values)
    assert other.fingerprint() != first.fingerprint()


def test_flow_mode_looks_like_pems_counts_on_a_road_graph():
    series = generate_synthetic()
    assert series.values.shape == (28 * DAY, 40) and series.values.dtype == np.float32
    assert series.values.min() == 0.0 and series.values.max() < 800
    assert 100 < series.values[series.values > 0].mean() < 300
    assert series.tod[0] == 0 and series.dow[0] == 0 and series.tod.max() == DAY - 1 and series.dow.max() == 6
    adjacency = series.adjacency
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert set(np.unique(adjacency)) == {0.0, 1.0} and not adjacency.diagonal().any()
    assert adjacency.sum(axis=1).min() >= 1  # every sensor is on a road


def test_speed_mode_looks_like_metr_la_speeds_and_slows_down_at_rush_hour():
    series = generate_synthetic(mode="speed", missing_rate=0.0)
    assert series.info.signal == "speed" and series.values.min() >= 0 and series.values.max() <= 70
    night = _rush_window(series, weekend=False, start_hour=1, end_hour=4)
    evening = _rush_window(series, weekend=False, start_hour=17, end_hour=18.5)
    assert np.median(night) > 55 and evening.mean() < night.mean() - 5


def test_daily_cycle_makes_one_day_lag_far_more_similar_than_half_a_day(clean_flow):
    assert _autocorrelation(clean_flow.values, DAY) > _autocorrelation(clean_flow.values, DAY // 2) + 0.5


def test_weekends_lack_the_weekday_morning_rush(clean_flow):
    weekday = _rush_window(clean_flow, weekend=False, start_hour=7, end_hour=9).mean()
    weekend = _rush_window(clean_flow, weekend=True, start_hour=7, end_hour=9).mean()
    assert weekday > 1.4 * weekend


def test_rush_hour_timing_and_size_differ_by_sensor(clean_flow):
    weekday_mornings = _rush_window(clean_flow, weekend=False, start_hour=5, end_hour=11).reshape(-1, 72, 40)
    profile = weekday_mornings.mean(axis=0)
    assert len(np.unique(profile.argmax(axis=0))) >= 10
    assert profile.max(axis=0).max() > 1.5 * profile.max(axis=0).min()


def test_downstream_sensor_follows_its_upstream_sensor_after_a_travel_delay(clean_flow):
    corridor = np.arange(9)  # sensors are numbered along each corridor, upstream first
    assert clean_flow.adjacency[corridor[:-1], corridor[1:]].all()
    residuals = _residuals(clean_flow)
    correlations = _lagged_correlations(residuals[:, 0], residuals[:, 8], max_lag=12)
    assert correlations.argmax() > 0
    assert correlations.max() > correlations[0] + 0.1


def test_sensor_gaps_are_zeros_at_about_the_missing_rate_as_outages_and_single_readings():
    values = generate_synthetic(missing_rate=0.05, incident_rate=0.0).values
    assert 0.04 < (values == 0).mean() < 0.055
    run_lengths = _zero_run_lengths(values)
    assert (run_lengths == 1).sum() > 1000  # scattered single readings
    assert (run_lengths >= 12).sum() > 50  # whole-sensor outages of an hour or more


def test_clean_series_has_no_zero_readings(clean_flow):
    assert clean_flow.values.min() > 0


def test_incident_cuts_capacity_at_its_origin_then_at_neighbours_later_and_smaller():
    path = np.zeros((7, 7), dtype=np.float32)
    path[np.arange(6), np.arange(1, 7)] = path[np.arange(1, 7), np.arange(6)] = 1.0
    cut = _incident_cuts(
        path, 200, origin=np.array([3]), start=np.array([100]), duration=np.array([10]), severity=np.array([0.8])
    )
    onset = [int(np.argmax(cut[:, node] > 0)) for node in (3, 2, 4, 1, 5)]
    assert onset[0] == 100 and onset[1] == onset[2] > onset[0] and onset[3] == onset[4] > onset[1]
    assert cut[105, 3] == pytest.approx(0.8) and cut[:, 2].max() == pytest.approx(0.4)
    assert not cut[:, [0, 6]].any()  # beyond the spread radius
    assert 0 < cut[130, 3] < 0.2 and cut[:100].sum() == 0  # recovers after it ends; nothing before it


def test_incidents_lower_the_average_speed():
    calm = generate_synthetic(mode="speed", missing_rate=0.0, incident_rate=0.0)
    busy = generate_synthetic(mode="speed", missing_rate=0.0, incident_rate=1.0)
    assert busy.values.mean() < calm.values.mean() - 1.0


def test_synthetic_on_a_real_graph_takes_the_graph_and_its_size(shared_graphs):
    series = load_series("synthetic", options={"graph": str(shared_graphs / "PEMS08.csv"), "days": 2})
    assert series.values.shape == (2 * DAY, 170)
    np.testing.assert_array_equal(series.adjacency, read_graph(shared_graphs / "PEMS08.csv"))
    assert "PEMS08.csv" in series.source


def test_node_count_conflicting_with_the_graph_is_a_data_error(shared_graphs):
    with pytest.raises(DataError, match=r"synthetic option 'nodes': 5 differs from the 170 nodes of .*PEMS08\.csv"):
        load_series("synthetic", options={"graph": str(shared_graphs / "PEMS08.csv"), "nodes": 5})


def test_synthetic_options_configure_the_generator():
    series = load_series("synthetic", options={"nodes": 7, "steps": 500, "days": 3, "mode": "speed", "seed": 2})
    assert series.values.shape == (500, 7) and series.info.signal == "speed"
    assert series.fingerprint() == generate_synthetic(num_nodes=7, num_steps=500, seed=2, mode="speed").fingerprint()
    assert load_series("synthetic", options={"days": 2, "nodes": 3}).num_steps == 2 * DAY


def test_unknown_synthetic_option_lists_the_valid_ones():
    with pytest.raises(DataError, match=r"synthetic option 'sensors': unknown; valid: nodes, days, steps, interval"):
        load_series("synthetic", options={"sensors": 5})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nodes": "many"}, r"synthetic option 'nodes': expected an integer >= 2, got 'many'"),
        ({"nodes": 1}, r"synthetic option 'nodes': expected an integer >= 2"),
        ({"days": 0}, r"synthetic option 'days': expected an integer >= 1"),
        ({"seed": -1}, r"synthetic option 'seed': expected an integer >= 0"),
        ({"mode": "density"}, r"synthetic mode: expected one of flow, speed, got 'density'"),
        ({"missing_rate": "lots"}, r"synthetic option 'missing_rate': expected a number"),
        ({"missing_rate": 1.5}, r"synthetic missing_rate: expected a number in \[0, 1\)"),
        ({"incidents": -0.1}, r"synthetic incident_rate \(option 'incidents'\): expected a number >= 0"),
        ({"graph": "/nowhere/PEMS09.csv"}, r"/nowhere/PEMS09\.csv: graph file not found"),
        ({"interval": 7}, r"interval: 7 minutes does not divide a day of 1440 minutes"),
        ({"interval": 1}, r"synthetic interval_minutes: expected a multiple of 5 that divides 1440, got 1"),
    ],
)
def test_bad_synthetic_option_values_name_the_option(options, message):
    with pytest.raises(DataError, match=message):
        load_series("synthetic", options=options)


def test_fifteen_minute_readings_average_the_five_minute_ones_96_a_day():
    fine = generate_synthetic(num_nodes=5, num_steps=3 * DAY, seed=4, missing_rate=0.0)
    coarse = load_series("synthetic", options={"nodes": 5, "days": 3, "interval": 15, "seed": 4, "missing_rate": 0})
    assert coarse.values.shape == (3 * 96, 5) and (coarse.info.interval_minutes, coarse.info.steps_per_day) == (15, 96)
    np.testing.assert_array_equal(coarse.tod, np.arange(3 * 96) % 96)
    np.testing.assert_array_equal(coarse.dow, np.arange(3 * 96) // 96)
    np.testing.assert_allclose(coarse.values, fine.values.reshape(-1, 3, 5).mean(axis=1), rtol=1e-6)
    assert "interval_minutes=15" in coarse.source


def test_fifteen_minute_series_keeps_its_gaps_and_daily_cycle():
    series = generate_synthetic(interval_minutes=15, missing_rate=0.05, incident_rate=0.0)
    assert series.values.shape == (28 * 96, 40)
    assert 0.04 < (series.values == 0).mean() < 0.06
    assert (_zero_run_lengths(series.values) >= 4).sum() > 20  # outages of an hour or more
    assert _autocorrelation(series.values, 96) > _autocorrelation(series.values, 48) + 0.5


def test_astgcn_files_refuse_a_series_at_another_interval_than_the_registry(tmp_path):
    series = generate_synthetic(num_nodes=3, num_steps=96, interval_minutes=15)
    with pytest.raises(DataError, match=r"ASTGCN files carry no timestamps; PEMS08 would be read back every 5 min"):
        write_astgcn(series, tmp_path / "PEMS08", name="PEMS08")


def test_astgcn_round_trip_reads_back_the_identical_series(tmp_path):
    series = generate_synthetic(seed=4)
    folder = write_astgcn(series, tmp_path / "synthetic")
    assert sorted(path.name for path in folder.iterdir()) == ["synthetic.csv", "synthetic.npz"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default size: nothing differs from the registry
        read = read_folder(folder, "synthetic")
    np.testing.assert_array_equal(read.values, series.values)
    np.testing.assert_array_equal(read.adjacency, series.adjacency)
    assert read.fingerprint() == series.fingerprint()


def test_written_series_can_stand_in_for_a_real_dataset(tmp_path):
    write_astgcn(generate_synthetic(num_nodes=5, num_steps=4 * DAY), tmp_path / "PEMS08", name="PEMS08")
    with pytest.warns(UserWarning, match="registry has PEMS08 as 170 x 17856"):
        series = load_series("pems08", data_dir=tmp_path)
    assert series.name == "PEMS08" and prepare(series).num_samples()["test"] == int(4 * DAY * 0.2) - 23
