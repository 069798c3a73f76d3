"""Sensor-graph readers: the PEMS edge list (csv + optional id file) and the DCRNN pickle.

Graph pickles come from strangers (dataset mirrors, --data-option graph=x.pkl), and unpickling can
run any code a pickle names. They are read with `GraphUnpickler`, which builds only plain
containers, strings, numbers and numpy arrays.
"""

from __future__ import annotations

import builtins
import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.data.errors import DataError
from harness.data.reading import one_line


def _numpy_pickle_functions() -> dict[str, Any]:
    """numpy's array and scalar rebuilders, as pickles of this numpy version name them (their
    module moved from numpy.core to numpy._core in numpy 2; the objects are the same)."""
    array, scalar = np.zeros(1), np.float64(0)
    return {
        "_reconstruct": array.__reduce__()[0],  # protocols 0-4
        "_frombuffer": array.__reduce_ex__(5)[0],  # protocol 5
        "scalar": scalar.__reduce__()[0],
    }


_NUMPY_FUNCTIONS = _numpy_pickle_functions()
_NUMPY_FUNCTION_MODULES = (
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
)
# (module, name) -> object: everything a pickle of containers, strings, numbers and arrays needs.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, name): function for module in _NUMPY_FUNCTION_MODULES for name, function in _NUMPY_FUNCTIONS.items()},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol 2 pickles written by Python 3
    **{
        (module, name): getattr(builtins, name)
        for module in ("builtins", "__builtin__")  # __builtin__: Python 2 pickles
        for name in ("set", "frozenset")
    },
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global outside _ALLOWED_GLOBALS (args[0]: "module.name")."""


class GraphUnpickler(pickle.Unpickler):
    """An unpickler that resolves only _ALLOWED_GLOBALS: any other function or class a pickle names
    (os.system, eval, a class with side effects) is refused before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def load_graph_pickle(path: Path) -> object:
    """The content of a graph pickle (Python 2 strings decoded as latin1), through GraphUnpickler."""
    try:
        return GraphUnpickler(io.BytesIO(Path(path).read_bytes()), encoding="latin1").load()
    except RefusedGlobal as refused:
        raise DataError(
            f"{path}: refused to unpickle {refused.args[0]}; graph pickles may hold only containers, strings, "
            "numbers and numpy arrays"
        ) from None
    except Exception as error:  # unpickling a corrupt file can raise almost anything (see the pickle docs)
        raise DataError(f"{path}: unreadable pickle ({one_line(error)})") from None


def read_pems_graph(csv_path: Path, num_nodes: int | None = None, id_path: Path | None = None) -> np.ndarray:
    """Binary symmetric adjacency from a PEMS edge list `from,to,cost` (zero diagonal).

    Sensor ids are row indices unless `id_path` (one sensor id per line, as PEMS03.txt) maps
    them to rows. `num_nodes` is the data's node count; None takes it from the id file or from
    the largest id + 1.
    """
    csv_path = Path(csv_path)
    edges = _read_edge_list(csv_path)
    if id_path is None:
        rows, num_nodes = _ids_as_rows(edges, csv_path, num_nodes)
    else:
        rows, num_nodes = _ids_through_id_file(edges, csv_path, Path(id_path), num_nodes)
    adjacency = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    adjacency[rows[:, 0], rows[:, 1]] = 1.0
    adjacency[rows[:, 1], rows[:, 0]] = 1.0
    np.fill_diagonal(adjacency, 0.0)
    return adjacency


def read_adjacency_pickle(path: Path, num_nodes: int | None = None) -> np.ndarray:
    """The weighted (N, N) adjacency of a DCRNN pickle [sensor_ids, id_to_index, adj] or of a plain array pickle."""
    path = Path(path)
    content = load_graph_pickle(path)
    if isinstance(content, (list, tuple)) and len(content) == 3:
        content = content[2]
    if not isinstance(content, np.ndarray) or content.ndim != 2 or content.shape[0] != content.shape[1]:
        raise DataError(f"{path}: expected [sensor_ids, id_to_index, adj] or an (N, N) array, got {_describe(content)}")
    adjacency = content
    if not np.issubdtype(adjacency.dtype, np.number) or not np.isfinite(adjacency).all():
        raise DataError(f"{path}: adjacency has non-numeric or non-finite entries")
    if num_nodes is not None and adjacency.shape[0] != num_nodes:
        raise DataError(f"{path}: adjacency has {adjacency.shape[0]} nodes, but the data has {num_nodes}")
    return adjacency.astype(np.float32)


def read_graph(path: Path, num_nodes: int | None = None) -> np.ndarray:
    """Adjacency from a PEMS edge-list .csv (with NAME.txt beside it when present) or a DCRNN .pkl."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: graph file not found")
    if path.suffix.lower() == ".csv":
        id_path = path.with_suffix(".txt")
        return read_pems_graph(path, num_nodes, id_path if id_path.is_file() else None)
    if path.suffix.lower() == ".pkl":
        return read_adjacency_pickle(path, num_nodes)
    raise DataError(f"{path}: unknown graph format {path.suffix!r}; expected a PEMS .csv edge list or a DCRNN .pkl")


def _read_edge_list(path: Path) -> np.ndarray:
    """(E, 2) int64 sensor-id pairs from the first two columns of an edge-list csv with a header."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable csv ({type(error).__name__}: {error})") from None
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected columns from,to,cost; found {list(frame.columns)}")
    pairs = frame.iloc[:, :2]
    if pairs.empty:
        return np.empty((0, 2), dtype=np.int64)
    if not all(pd.api.types.is_integer_dtype(dtype) for dtype in pairs.dtypes):
        raise DataError(f"{path}: columns {list(pairs.columns)} must hold integer sensor ids")
    return pairs.to_numpy(dtype=np.int64)


def _ids_as_rows(edges: np.ndarray, csv_path: Path, num_nodes: int | None) -> tuple[np.ndarray, int]:
    """Edges whose sensor ids are already row indices, checked against the node count."""
    largest = int(edges.max()) if edges.size else -1
    if num_nodes is None:
        num_nodes = largest + 1
    smallest = int(edges.min()) if edges.size else 0
    if smallest < 0 or largest >= num_nodes:
        raise DataError(
            f"{csv_path}: sensor id {smallest if smallest < 0 else largest} is not a row index 0..{num_nodes - 1} "
            f"of the {num_nodes}-node data (ids that are not row indices need an id file NAME.txt beside the csv)"
        )
    return edges, num_nodes


def _ids_through_id_file(
    edges: np.ndarray, csv_path: Path, id_path: Path, num_nodes: int | None
) -> tuple[np.ndarray, int]:
    """Edges mapped from sensor ids to rows through an id file (one id per line, in row order)."""
    try:
        sensor_ids = [int(token) for token in id_path.read_text().split()]
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{id_path}: unreadable sensor id file ({type(error).__name__}: {error})") from None
    if num_nodes is not None and len(sensor_ids) != num_nodes:
        raise DataError(f"{id_path}: lists {len(sensor_ids)} sensor ids, but the data has {num_nodes} nodes")
    row_of = {sensor: row for row, sensor in enumerate(sensor_ids)}
    try:
        rows = [row_of[sensor] for sensor in edges.ravel().tolist()]
    except KeyError as error:
        raise DataError(f"{csv_path}: edge sensor id {error.args[0]} is not listed in the id file {id_path}") from None
    return np.array(rows, dtype=np.int64).reshape(-1, 2), len(sensor_ids)


def _describe(content: object) -> str:
    """A short description of an unexpected pickle payload."""
    shape = getattr(content, "shape", None)
    return f"{type(content).__name__} of shape {shape}" if shape is not None else type(content).__name__
