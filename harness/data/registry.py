"""The datasets the harness knows: sizes, signal and split ratios (shared/specs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.data.errors import DataError

MINUTES_PER_DAY = 24 * 60
DEFAULT_INTERVAL_MINUTES = 5  # PEMS0X, METR-LA, PEMS-BAY and the synthetic default
SYNTHETIC = "synthetic"
SYNTHETIC_NODES = 40
SYNTHETIC_DAYS = 28
LARGEST_INTERVAL_MINUTES = 15  # LargeST as BasicTS ships it and HEPHAESTUS A.7 uses it
LARGEST_DAYS = 365  # the year 2019


def steps_per_day(interval_minutes: int) -> int:
    """Readings per day at `interval_minutes` (5 -> 288, 15 -> 96); DataError unless it divides a day."""
    if (
        isinstance(interval_minutes, bool)
        or not isinstance(interval_minutes, (int, np.integer))
        or not 0 < interval_minutes <= MINUTES_PER_DAY
        or MINUTES_PER_DAY % interval_minutes
    ):
        raise DataError(f"interval: {interval_minutes!r} minutes does not divide a day of {MINUTES_PER_DAY} minutes")
    return MINUTES_PER_DAY // int(interval_minutes)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset before reading it.

    split holds the (train, val, test) ratios of the contiguous time split; interval_minutes the
    time between readings, from which steps_per_day follows.
    """

    name: str
    num_nodes: int
    num_steps: int
    signal: str
    split: tuple[float, float, float]
    description: str
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES

    @property
    def steps_per_day(self) -> int:
        """Readings per day (288 at 5 minutes, 96 at 15): what time-of-day tables are sized by."""
        return steps_per_day(self.interval_minutes)


_PEMS_SPLIT = (0.6, 0.2, 0.2)
_DCRNN_SPLIT = (0.7, 0.1, 0.2)
_LARGEST_STEPS = LARGEST_DAYS * steps_per_day(LARGEST_INTERVAL_MINUTES)  # 35,040

_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo("METR-LA", 207, 34272, "speed", _DCRNN_SPLIT, "Los Angeles highway speeds, Mar-Jun 2012 (DCRNN)"),
    DatasetInfo("PEMS-BAY", 325, 52116, "speed", _DCRNN_SPLIT, "Bay Area highway speeds, Jan-May 2017 (DCRNN)"),
    DatasetInfo("PEMS03", 358, 26208, "flow", _PEMS_SPLIT, "Caltrans District 3 flow, Sep-Nov 2018 (STSGCN)"),
    DatasetInfo("PEMS04", 307, 16992, "flow", _PEMS_SPLIT, "Caltrans District 4 flow, Jan-Feb 2018 (ASTGCN)"),
    DatasetInfo("PEMS07", 883, 28224, "flow", _PEMS_SPLIT, "Caltrans District 7 flow, May-Aug 2017 (STSGCN)"),
    DatasetInfo("PEMS08", 170, 17856, "flow", _PEMS_SPLIT, "Caltrans District 8 flow, Jul-Aug 2016 (ASTGCN)"),
    DatasetInfo("SD", 716, _LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST San Diego flow, 2019", LARGEST_INTERVAL_MINUTES),
    DatasetInfo("GBA", 2352, _LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST Greater Bay Area flow, 2019", LARGEST_INTERVAL_MINUTES),
    DatasetInfo("GLA", 3834, _LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST Greater Los Angeles flow, 2019", LARGEST_INTERVAL_MINUTES),
    DatasetInfo("CA", 8600, _LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST California flow, 2019", LARGEST_INTERVAL_MINUTES),
    DatasetInfo(
        SYNTHETIC,
        SYNTHETIC_NODES,
        SYNTHETIC_DAYS * steps_per_day(DEFAULT_INTERVAL_MINUTES),
        "flow",
        _PEMS_SPLIT,
        "built-in simulated road network: rush hours, propagation delays, incidents, sensor gaps",
    ),
)

# Extra spellings beyond case, '-', '_' and spaces (which name_key already ignores).
_ALIASES = {"largestsd": "SD", "largestgba": "GBA", "largestgla": "GLA", "largestca": "CA"}


def name_key(name: str) -> str:
    """The form names are compared in: lower case without '-', '_' or spaces ("METR-LA" -> "metrla")."""
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


_BY_KEY: dict[str, DatasetInfo] = {name_key(info.name): info for info in _DATASETS}
_BY_KEY.update({alias: _BY_KEY[name_key(target)] for alias, target in _ALIASES.items()})


def dataset_names() -> list[str]:
    """Canonical names of all registered datasets, in registry order."""
    return [info.name for info in _DATASETS]


def resolve_name(name: str) -> str | None:
    """The canonical name `name` spells (case-insensitive, modest aliases), or None."""
    info = _BY_KEY.get(name_key(name))
    return None if info is None else info.name


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name` (case-insensitive; "pems-bay", "pemsbay", "metr_la" all work)."""
    info = _BY_KEY.get(name_key(name))
    if info is None:
        raise DataError(f"dataset: unknown dataset {name!r}; valid: {', '.join(dataset_names())}")
    return info
