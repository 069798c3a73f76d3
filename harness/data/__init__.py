"""Traffic data: the dataset registry, readers of the released layouts, the synthetic default and the
BasicTS windowing protocol.

    series = load_series("PEMS04", data_dir)          # or generate_synthetic(num_nodes=20, ...)
    data = prepare(series)                            # z-scored, 12-in / 12-out windows as views
    x, y = data.split("train").batch(np.arange(8))
"""

from harness.data.errors import DataError
from harness.data.formats import expected_files, find_dataset_folder, read_folder, write_astgcn
from harness.data.graphs import load_graph_pickle, read_adjacency_pickle, read_graph, read_pems_graph
from harness.data.loader import DATA_DIR_ENV, SYNTHETIC_OPTIONS, load_series, synthetic_from_options
from harness.data.registry import SYNTHETIC, DatasetInfo, dataset_names, get_dataset_info, steps_per_day
from harness.data.series import SPLITS, Series
from harness.data.synthetic import (
    DEFAULT_INCIDENT_RATE,
    DEFAULT_MISSING_RATE,
    DEFAULT_NODES,
    DEFAULT_STEPS,
    generate_synthetic,
)
from harness.data.windows import PreparedData, WindowSplit, prepare, scaler_steps, split_sample_counts, split_segments

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_INCIDENT_RATE",
    "DEFAULT_MISSING_RATE",
    "DEFAULT_NODES",
    "DEFAULT_STEPS",
    "SPLITS",
    "SYNTHETIC",
    "SYNTHETIC_OPTIONS",
    "DataError",
    "DatasetInfo",
    "PreparedData",
    "Series",
    "WindowSplit",
    "dataset_names",
    "expected_files",
    "find_dataset_folder",
    "generate_synthetic",
    "get_dataset_info",
    "load_graph_pickle",
    "load_series",
    "prepare",
    "read_adjacency_pickle",
    "read_folder",
    "read_graph",
    "read_pems_graph",
    "scaler_steps",
    "split_sample_counts",
    "split_segments",
    "steps_per_day",
    "synthetic_from_options",
    "write_astgcn",
]
