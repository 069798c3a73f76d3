"""`load_series`: a dataset by name, from a data directory or from the synthetic generator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.data.errors import DataError
from harness.data.formats import expected_files, find_dataset_folder, read_folder
from harness.data.graphs import read_graph
from harness.data.registry import DEFAULT_INTERVAL_MINUTES, SYNTHETIC, SYNTHETIC_DAYS, get_dataset_info, steps_per_day
from harness.data.series import Series
from harness.data.synthetic import DEFAULT_INCIDENT_RATE, DEFAULT_MISSING_RATE, generate_synthetic

DATA_DIR_ENV = "HARNESS_DATA_DIR"
SYNTHETIC_OPTIONS = ("nodes", "days", "steps", "interval", "mode", "seed", "graph", "missing_rate", "incidents")


def load_series(name: str, data_dir: str | Path | None = None, options: Mapping[str, Any] | None = None) -> Series:
    """The dataset `name` as a Series.

    Real datasets are read from `data_dir` (default: the HARNESS_DATA_DIR environment variable),
    which holds one folder per dataset. "synthetic" is generated; `options` configure it (see
    SYNTHETIC_OPTIONS and `synthetic_from_options`).
    """
    info = get_dataset_info(name)
    if info.name == SYNTHETIC:
        return synthetic_from_options(options or {})
    if options:
        raise DataError(f"options: only the synthetic dataset takes options; {info.name} got {', '.join(options)}")
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not root:
        raise DataError(
            f"{info.name}: no data directory; pass --data-dir DIR (or set {DATA_DIR_ENV}) where DIR/{info.name}/ "
            f"holds {expected_files(info)}"
        )
    return read_folder(find_dataset_folder(Path(root), info), info.name)


def synthetic_from_options(options: Mapping[str, Any]) -> Series:
    """The synthetic series configured by `options`.

    nodes, days, steps (overrides days), interval (minutes between readings, default 5; 15 for
    LargeST-like data), mode ("flow" | "speed"), seed, graph (a PEMS .csv or DCRNN .pkl file;
    the sensor count then comes from it), missing_rate, incidents (per sensor per day).
    """
    unknown = [key for key in options if key not in SYNTHETIC_OPTIONS]
    if unknown:
        raise DataError(f"synthetic option {unknown[0]!r}: unknown; valid: {', '.join(SYNTHETIC_OPTIONS)}")
    graph_path = options.get("graph")
    adjacency = read_graph(Path(graph_path)) if graph_path is not None else None
    nodes = _integer(options, "nodes", minimum=2)
    if adjacency is not None and nodes is not None and nodes != len(adjacency):
        raise DataError(f"synthetic option 'nodes': {nodes} differs from the {len(adjacency)} nodes of {graph_path}")
    interval = _integer(options, "interval", minimum=1) or DEFAULT_INTERVAL_MINUTES
    steps = _integer(options, "steps", minimum=1)
    if steps is None:
        steps = (_integer(options, "days", minimum=1) or SYNTHETIC_DAYS) * steps_per_day(interval)
    return generate_synthetic(
        num_nodes=nodes,
        num_steps=steps,
        interval_minutes=interval,
        seed=_integer(options, "seed", minimum=0) or 0,
        mode=str(options.get("mode", "flow")),
        adjacency=adjacency,
        missing_rate=_number(options, "missing_rate", DEFAULT_MISSING_RATE),
        incident_rate=_number(options, "incidents", DEFAULT_INCIDENT_RATE),
        graph_name=str(graph_path),
    )


def _integer(options: Mapping[str, Any], key: str, minimum: int) -> int | None:
    """options[key] as an int >= minimum, None when absent; DataError naming the option otherwise."""
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, (bool, float)):
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = minimum - 1
        if number >= minimum:
            return number
    raise DataError(f"synthetic option {key!r}: expected an integer >= {minimum}, got {value!r}")


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    """options[key] as a float (default when absent); DataError naming the option otherwise."""
    value = options.get(key, default)
    if not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise DataError(f"synthetic option {key!r}: expected a number, got {value!r}")
