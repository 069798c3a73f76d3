"""The datasets the harness knows: sizes, signal and split ratios (shared/specs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.data.errors import DataError
from models.base import STEPS_PER_DAY

SYNTHETIC = "synthetic"
SYNTHETIC_NODES = 40
SYNTHETIC_DAYS = 28
LARGEST_STEPS = 365 * STEPS_PER_DAY  # LargeST: one year (2019) of 5-minute readings


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset before reading it.

    split holds the (train, val, test) ratios of the contiguous time split.
    """

    name: str
    num_nodes: int
    num_steps: int
    signal: str
    split: tuple[float, float, float]
    description: str
    interval_minutes: int = 5


_PEMS_SPLIT = (0.6, 0.2, 0.2)
_DCRNN_SPLIT = (0.7, 0.1, 0.2)

_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo("METR-LA", 207, 34272, "speed", _DCRNN_SPLIT, "Los Angeles highway speeds, Mar-Jun 2012 (DCRNN)"),
    DatasetInfo("PEMS-BAY", 325, 52116, "speed", _DCRNN_SPLIT, "Bay Area highway speeds, Jan-May 2017 (DCRNN)"),
    DatasetInfo("PEMS03", 358, 26208, "flow", _PEMS_SPLIT, "Caltrans District 3 flow, Sep-Nov 2018 (STSGCN)"),
    DatasetInfo("PEMS04", 307, 16992, "flow", _PEMS_SPLIT, "Caltrans District 4 flow, Jan-Feb 2018 (ASTGCN)"),
    DatasetInfo("PEMS07", 883, 28224, "flow", _PEMS_SPLIT, "Caltrans District 7 flow, May-Aug 2017 (STSGCN)"),
    DatasetInfo("PEMS08", 170, 17856, "flow", _PEMS_SPLIT, "Caltrans District 8 flow, Jul-Aug 2016 (ASTGCN)"),
    DatasetInfo("SD", 716, LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST San Diego flow, 2019"),
    DatasetInfo("GBA", 2352, LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST Greater Bay Area flow, 2019"),
    DatasetInfo("GLA", 3834, LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST Greater Los Angeles flow, 2019"),
    DatasetInfo("CA", 8600, LARGEST_STEPS, "flow", _PEMS_SPLIT, "LargeST California flow, 2019"),
    DatasetInfo(
        SYNTHETIC,
        SYNTHETIC_NODES,
        SYNTHETIC_DAYS * STEPS_PER_DAY,
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
