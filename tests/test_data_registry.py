"""The dataset registry and the BasicTS split arithmetic."""

import pytest

from harness.data import DataError, dataset_names, get_dataset_info, split_sample_counts, split_segments, steps_per_day


def test_registry_lists_the_paper_datasets_largest_and_synthetic():
    assert dataset_names() == [
        "METR-LA",
        "PEMS-BAY",
        "PEMS03",
        "PEMS04",
        "PEMS07",
        "PEMS08",
        "SD",
        "GBA",
        "GLA",
        "CA",
        "synthetic",
    ]


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("pems04", "PEMS04"),
        ("pems-bay", "PEMS-BAY"),
        ("pemsbay", "PEMS-BAY"),
        ("PEMS_BAY", "PEMS-BAY"),
        ("metr_la", "METR-LA"),
        ("metr-la", "METR-LA"),
        ("Synthetic", "synthetic"),
        ("largest-sd", "SD"),
    ],
)
def test_dataset_names_are_case_insensitive_with_modest_aliases(spelling, canonical):
    assert get_dataset_info(spelling).name == canonical


def test_unknown_dataset_name_lists_the_valid_ones():
    with pytest.raises(DataError, match=r"dataset: unknown dataset 'PEMS05'; valid: METR-LA, PEMS-BAY, .*synthetic"):
        get_dataset_info("PEMS05")


def test_registry_entries_follow_the_protocol_table():
    pems04, metr = get_dataset_info("PEMS04"), get_dataset_info("METR-LA")
    assert (pems04.num_nodes, pems04.num_steps, pems04.signal, pems04.split) == (307, 16992, "flow", (0.6, 0.2, 0.2))
    assert (metr.num_nodes, metr.num_steps, metr.signal, metr.split) == (207, 34272, "speed", (0.7, 0.1, 0.2))
    assert (pems04.interval_minutes, pems04.steps_per_day) == (5, 288)


@pytest.mark.parametrize(("name", "nodes"), [("SD", 716), ("GBA", 2352), ("GLA", 3834), ("CA", 8600)])
def test_largest_is_a_year_of_15_minute_readings(name, nodes):
    info = get_dataset_info(name)
    assert (info.num_nodes, info.num_steps, info.interval_minutes, info.steps_per_day) == (nodes, 35040, 15, 96)
    assert info.split == (0.6, 0.2, 0.2)


def test_steps_per_day_follow_from_the_interval():
    assert [steps_per_day(minutes) for minutes in (5, 15, 60)] == [288, 96, 24]
    for minutes in (7, 0, 2880, 5.0):
        with pytest.raises(DataError, match=rf"interval: {minutes} minutes does not divide a day of 1440 minutes"):
            steps_per_day(minutes)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PEMS04", (10173, 3375, 3375)),
        ("PEMS08", (10691, 3548, 3548)),
        ("PEMS03", (15703, 5218, 5218)),
        ("PEMS07", (16913, 5621, 5621)),
        ("METR-LA", (23968, 3404, 6831)),
        ("PEMS-BAY", (36459, 5188, 10400)),
    ],
)
def test_sample_counts_match_basicts(name, expected):
    info = get_dataset_info(name)
    counts = split_sample_counts(info.num_steps, info.split)
    assert (counts["train"], counts["val"], counts["test"]) == expected


def test_segments_are_contiguous_and_cover_the_series():
    segments = split_segments(16992, (0.6, 0.2, 0.2))
    assert segments == {"train": (0, 10196), "val": (10196, 13594), "test": (13594, 16992)}
