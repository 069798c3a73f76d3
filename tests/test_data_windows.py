"""prepare(): the BasicTS protocol on small synthetic series (splits, z-score, time features, window views)."""

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from harness.data import (
    DataError,
    PreparedData,
    Series,
    generate_synthetic,
    prepare,
    scaler_steps,
    split_sample_counts,
)
from models import build_model
from models.base import DatasetMeta, time_indices

PEMS04_STEPS, PEMS04_SPLIT = 16992, (0.6, 0.2, 0.2)


@pytest.fixture(scope="module")
def series() -> Series:
    return generate_synthetic(num_nodes=6, num_steps=288 * 4, seed=3)


@pytest.fixture(scope="module")
def data(series) -> PreparedData:
    return prepare(series)


def _read_only(series: Series) -> Series:
    """A copy of `series` whose arrays are read-only, like arrays coming back from the Ray object store."""
    arrays = {name: getattr(series, name).copy() for name in ("values", "tod", "dow", "adjacency")}
    for array in arrays.values():
        array.setflags(write=False)
    return dataclasses.replace(series, **arrays)


def test_sample_counts_follow_the_split_arithmetic(series, data):
    assert data.num_samples() == split_sample_counts(series.num_steps, series.info.split)
    assert {name: len(data.split(name)) for name in ("train", "val", "test")} == data.num_samples()
    assert data.segments == {"train": (0, 692), "val": (692, 922), "test": (922, 1152)}


def test_windows_are_views_into_the_prepared_arrays(series, data):
    split = data.split("val")
    assert np.shares_memory(split.inputs, data.features)
    assert np.shares_memory(split.targets, data.raw)
    assert np.shares_memory(data.raw, series.values)
    assert split.inputs.shape == (len(split), 12, 6, 3) and split.targets.shape == (len(split), 12, 6)


def test_each_window_holds_its_history_and_the_following_raw_values(data):
    split = data.split("test")
    start = data.segments["test"][0]
    for sample in (0, 7, len(split) - 1):
        np.testing.assert_array_equal(split.inputs[sample], data.features[start + sample : start + sample + 12])
        np.testing.assert_array_equal(split.targets[sample], data.raw[start + sample + 12 : start + sample + 24])
    assert start + len(split) + 23 == data.segments["test"][1]  # the last window ends at the segment's end


def test_batch_returns_contiguous_float32_copies_of_the_chosen_samples(data):
    split = data.split("train")
    x, y = split.batch(np.array([4, 0, 9]))
    assert x.shape == (3, 12, 6, 3) and y.shape == (3, 12, 6)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.flags["C_CONTIGUOUS"] and y.flags["C_CONTIGUOUS"]
    assert not np.shares_memory(x, data.features) and not np.shares_memory(y, data.raw)
    np.testing.assert_array_equal(x[0], split.inputs[4])
    np.testing.assert_array_equal(y[2], split.targets[9])


def test_time_index_points_at_the_first_forecast_step(data):
    split = data.split("val")
    steps = split.time_index(np.array([0, 5]))
    np.testing.assert_array_equal(steps, data.segments["val"][0] + 12 + np.array([0, 5]))
    np.testing.assert_array_equal(data.raw[steps[1]], split.targets[5, 0])


def test_scaler_is_fitted_as_basicts_05_on_int_t_times_r_train_rows_not_the_training_segment():
    series = generate_synthetic(num_nodes=3, num_steps=PEMS04_STEPS, seed=0)
    values = series.values.copy()
    values[10195] = 5000.0  # the training segment's last row: BasicTS 0.5's scaler never sees it
    data = prepare(dataclasses.replace(series, values=values))
    assert scaler_steps(PEMS04_STEPS, PEMS04_SPLIT) == 10195 and data.segments["train"] == (0, 10196)
    fitted = values[:10195]  # float32 mean, population std, zeros (missing readings) included
    assert (data.mean, data.std) == (float(np.mean(fitted)), float(np.std(fitted)))
    assert data.mean < float(np.mean(values[:10196], dtype=np.float64)) - 0.1
    np.testing.assert_allclose(data.features[..., 0], (values - data.mean) / data.std, rtol=1e-5, atol=1e-5)


def test_scaler_ignores_the_values_after_its_rows(series, data):
    rows = scaler_steps(series.num_steps, series.info.split)
    assert rows == 691 and data.segments["train"] == (0, 692)
    changed = series.values.copy()
    changed[rows:] *= 3.0
    other = prepare(dataclasses.replace(series, values=changed))
    assert (other.mean, other.std) == (data.mean, data.std)
    changed[rows - 1] += 500.0
    assert prepare(dataclasses.replace(series, values=changed)).mean > data.mean


def test_time_features_are_unscaled_fractions_that_models_decode(series, data):
    np.testing.assert_allclose(data.features[:, 0, 1], series.tod / 288, rtol=1e-6)
    np.testing.assert_allclose(data.features[:, 0, 2], series.dow / 7, rtol=1e-6)
    x, _ = data.split("train").batch(np.arange(300, 302))
    tod, dow = time_indices(torch.from_numpy(x))
    np.testing.assert_array_equal(tod.numpy(), series.tod[300:302, None] + np.arange(12))
    np.testing.assert_array_equal(dow.numpy()[:, 0], series.dow[300:302])


def test_fifteen_minute_data_has_96_time_of_day_slots_and_models_are_told_so():
    series = generate_synthetic(num_nodes=4, num_steps=96 * 3, seed=1, interval_minutes=15)
    data = prepare(series)
    fractions = np.unique(data.features[..., 1])
    assert len(fractions) == 96 and fractions.max() == np.float32(95 / 96)
    np.testing.assert_allclose(data.features[:, 0, 1], (np.arange(96 * 3) % 96) / 96, rtol=1e-6)
    meta = data.meta()
    assert meta.steps_per_day == 96
    x, _ = data.split("train").batch(np.arange(90, 92))
    tod, _ = time_indices(torch.from_numpy(x), meta.steps_per_day)
    np.testing.assert_array_equal(tod.numpy(), (np.arange(90, 92)[:, None] + np.arange(12)) % 96)
    model = build_model("stid", meta)
    assert model.tod_embedding.shape[0] == 96  # its time-of-day table is sized from the data
    assert model(torch.from_numpy(x)).prediction.shape == (2, 12, 4, 1)


def test_five_minute_data_tells_models_288_steps_per_day(data):
    assert data.meta().steps_per_day == 288


def test_explicit_segments_replace_the_ratio_split():
    series = generate_synthetic(num_nodes=3, num_steps=300, seed=2)
    segments = {"train": (0, 200), "val": (200, 250), "test": (250, 300)}
    data = prepare(dataclasses.replace(series, segments=segments))
    assert data.segments == segments and prepare(series).segments["train"] == (0, 180)
    assert data.num_samples() == {"train": 177, "val": 27, "test": 27}
    test = data.split("test")
    np.testing.assert_array_equal(test.targets[-1], data.raw[288:300])  # windows stay inside their segment
    np.testing.assert_array_equal(test.inputs[0, :, :, 0], data.features[250:262, :, 0])


@pytest.mark.parametrize(
    "segments",
    [
        {"train": (0, 180), "val": (181, 240), "test": (240, 300)},
        {"train": (0, 180), "val": (180, 240), "test": (240, 299)},
        {"train": (0, 180), "val": (180, 180), "test": (180, 300)},
    ],
    ids=["gap", "short", "empty"],
)
def test_segments_that_do_not_tile_the_series_are_a_data_error(segments):
    series = generate_synthetic(num_nodes=3, num_steps=300, seed=2)
    with pytest.raises(DataError, match=r"split segments .* are not non-empty, contiguous train, val, test ranges"):
        dataclasses.replace(series, segments=segments)


def test_fingerprint_covers_what_preparation_derives(series, data):
    assert prepare(_read_only(series)).fingerprint == data.fingerprint
    fifteen_minutes = dataclasses.replace(series.info, interval_minutes=15)
    coarse = dataclasses.replace(series, info=fifteen_minutes, tod=series.tod % 96)
    assert prepare(coarse).fingerprint != prepare(dataclasses.replace(series, tod=series.tod % 96)).fingerprint
    shifted = series.values.copy()
    shifted[0] += 1.0
    assert prepare(dataclasses.replace(series, values=shifted)).fingerprint != data.fingerprint


def test_prepare_and_windows_work_on_read_only_arrays(series):
    data = prepare(_read_only(series))
    for array in (data.features, data.raw, data.tod, data.dow):
        array.setflags(write=False)
    x, y = data.split("train").batch(np.arange(4))
    z_train, tod, dow = data.train_segment()
    assert x.shape == (4, 12, 6, 3) and y.shape == (4, 12, 6)
    assert z_train.flags.writeable and tod.flags.writeable and dow.flags.writeable
    assert not data.split("train").inputs.flags.writeable


def test_prepared_data_survives_pickling_as_plain_arrays(data):
    copy = pickle.loads(pickle.dumps(data))
    assert copy.fingerprint == data.fingerprint
    np.testing.assert_array_equal(copy.split("val").batch([3])[1], data.split("val").batch([3])[1])


def test_meta_describes_the_dataset_without_its_values(series, data):
    meta = data.meta()
    assert isinstance(meta, DatasetMeta)
    assert (meta.name, meta.num_nodes, meta.input_len, meta.output_len) == ("synthetic", 6, 12, 12)
    assert meta.adjacency is series.adjacency


def test_custom_window_lengths_change_the_sample_counts(series):
    data = prepare(series, input_len=6, output_len=3)
    split = data.split("train")
    assert split.inputs.shape[1:] == (6, 6, 3) and split.targets.shape[1:] == (3, 6)
    assert len(split) == 692 - 9 + 1


def test_unknown_split_is_a_data_error(data):
    with pytest.raises(DataError, match="split: unknown split 'training'; valid: train, val, test"):
        data.split("training")


def test_series_too_short_for_a_window_is_a_data_error():
    with pytest.raises(DataError, match="the val segment has 20 steps, fewer than input_len \\+ output_len = 24"):
        prepare(generate_synthetic(num_nodes=3, num_steps=100))


def test_bad_window_length_is_a_data_error(series):
    with pytest.raises(DataError, match="input_len: expected a positive integer"):
        prepare(series, input_len=0)


def test_constant_scaler_rows_are_a_data_error(series):
    with pytest.raises(DataError, match=r"the first 691 steps \(the scaler's rows\) are constant"):
        prepare(dataclasses.replace(series, values=np.zeros_like(series.values)))


def test_time_indices_outside_the_day_are_a_data_error(series):
    with pytest.raises(DataError, match=r"tod indices span 1\.\.288, expected 0\.\.287"):
        dataclasses.replace(series, tod=series.tod + 1)
