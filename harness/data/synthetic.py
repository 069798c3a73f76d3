"""The embedded default dataset: seeded synthetic traffic on a road-like graph.

How a reading comes about (vectorised over time x sensors):
  1. Road graph: directed corridors (chains of sensors, numbered upstream first) joined by
     interchanges, or a given real adjacency. Each sensor gets a travel delay from the graph's
     entry points (corridor heads) along the directed edges.
  2. Demand, as a ratio of the sensor's capacity: a profile per sensor and day of week (night
     floor, daytime plateau, morning and evening rush peaks whose size and timing differ by
     sensor, a midday hump at weekends), shifted by the travel delay; times a slow fluctuation
     shared along each corridor and seen downstream after the travel delay; times a small
     per-sensor fluctuation.
  3. Incidents cut the capacity of a sensor and, hop by hop with a lag and a decay, of its
     neighbours; the cut lasts a while, then recovers exponentially.
  4. Observation: flow = capacity x served ratio, which falls once demand exceeds the remaining
     capacity (congestion); speed = free-flow speed lowered by congestion; noise.
  5. Readings: at the native 5-minute resolution, or, for a longer interval (LargeST's 15
     minutes), the mean of the 5-minute readings each interval spans; then sensor gaps
     (whole-sensor outages of hours plus scattered single readings) recorded as 0.
All time constants below are in native 5-minute steps.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra

from harness.data.errors import DataError
from harness.data.registry import (
    DEFAULT_INTERVAL_MINUTES,
    MINUTES_PER_DAY,
    SYNTHETIC,
    SYNTHETIC_DAYS,
    SYNTHETIC_NODES,
    get_dataset_info,
    steps_per_day,
)
from harness.data.series import Series
from models.base import DAYS_PER_WEEK

NATIVE_STEPS_PER_DAY = steps_per_day(DEFAULT_INTERVAL_MINUTES)  # the generator simulates 5-minute steps
DEFAULT_NODES = SYNTHETIC_NODES
DEFAULT_STEPS = SYNTHETIC_DAYS * NATIVE_STEPS_PER_DAY
DEFAULT_MISSING_RATE = 0.02  # fraction of readings recorded as 0
DEFAULT_INCIDENT_RATE = 0.02  # incidents per sensor per day
MODES = ("flow", "speed")

_SENSORS_PER_CORRIDOR = 12
_HOP_DELAY_STEPS = (0.3, 0.9)  # travel time between neighbouring sensors, in 5-minute steps
_MAX_DELAY_STEPS = 24
_SHARED_AR, _SHARED_STD = 0.9, 0.12  # corridor-wide demand fluctuation (about an hour long)
_LOCAL_AR, _LOCAL_STD = 0.9, 0.05  # per-sensor fluctuation
_DAY_LEVEL = (1.0, 1.02, 1.02, 1.03, 1.06, 0.85, 0.72)  # Monday .. Sunday demand level
_INCIDENT_HOPS = 2
_INCIDENT_SPREAD_STEPS = 3  # lag before the next hop feels an incident
_INCIDENT_HOP_DECAY = 0.5
_INCIDENT_DURATION = (6, 36)  # steps at full severity
_INCIDENT_SEVERITY = (0.4, 0.85)  # fraction of capacity lost
_RECOVERY_STEPS = 6  # e-folding time of the recovery
_MAX_CAPACITY_CUT = 0.9
_FLOW_CAPACITY = (300.0, 560.0)  # veh / 5 min
_FREE_SPEED = (58.0, 70.0)  # mph
_MAX_SPEED = 70.0
_SPEED_NOISE = 1.5
_OUTAGE_STEPS = (12, 144)  # whole-sensor outages of 1 to 12 hours


def generate_synthetic(
    num_nodes: int | None = None,
    num_steps: int | None = None,
    seed: int = 0,
    mode: str = "flow",
    adjacency: np.ndarray | None = None,
    missing_rate: float = DEFAULT_MISSING_RATE,
    incident_rate: float = DEFAULT_INCIDENT_RATE,
    graph_name: str = "given",
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
) -> Series:
    """Seeded synthetic traffic: the same arguments always give the same series.

    num_nodes defaults to DEFAULT_NODES on a generated corridor graph; with a real `adjacency`
    (N, N) the sensor count is N and `graph_name` (e.g. its file) is recorded in `source`.
    num_steps readings (default SYNTHETIC_DAYS days) every interval_minutes, a multiple of 5
    that divides a day (15 for LargeST-like data). mode "flow" gives PEMS-like counts (about
    0..600 vehicles per 5 minutes), "speed" METR-LA-like speeds (0..70 mph). missing_rate is the
    fraction of readings recorded as 0; incident_rate counts incidents per sensor per day. The
    series starts on a Monday at midnight.
    """
    readings_per_day = _check_interval(interval_minutes)
    num_steps = SYNTHETIC_DAYS * readings_per_day if num_steps is None else num_steps
    _check_arguments(num_nodes, num_steps, seed, mode, adjacency, missing_rate, incident_rate)
    native_per_reading = NATIVE_STEPS_PER_DAY // readings_per_day
    rng = np.random.default_rng(seed)
    if adjacency is None:
        adjacency, directed = _corridor_graph(num_nodes or DEFAULT_NODES, rng)
        graph = "corridors"
    else:
        adjacency = np.asarray(adjacency, dtype=np.float32)
        edges = adjacency != 0
        np.fill_diagonal(edges, False)
        directed = sparse.csr_array(edges)
        graph = graph_name
    delays, corridor = _travel_delays(directed, rng)
    native_steps = num_steps * native_per_reading
    tod, dow = _time_indices(native_steps, NATIVE_STEPS_PER_DAY)
    demand = _demand_profiles(delays, rng)[dow * NATIVE_STEPS_PER_DAY + tod]
    fluctuation = _delayed_fluctuation(delays, corridor, native_steps, rng)
    fluctuation += _ar1(rng, fluctuation.shape, _LOCAL_AR, _LOCAL_STD)
    demand *= 1 + fluctuation
    capacity = _capacity_after_incidents(adjacency, native_steps, incident_rate, rng)
    observe = _observe_flow if mode == "flow" else _observe_speed
    native = observe(np.maximum(demand, 0) / capacity, capacity, rng)
    values = native.reshape(num_steps, native_per_reading, -1).mean(axis=1)
    values[_sensor_gaps(values.shape, missing_rate, native_per_reading, rng)] = 0.0
    num_nodes = values.shape[1]
    info = replace(
        get_dataset_info(SYNTHETIC),
        num_nodes=num_nodes,
        num_steps=num_steps,
        signal=mode,
        interval_minutes=interval_minutes,
    )
    source = (
        f"synthetic(nodes={num_nodes}, steps={num_steps}, interval_minutes={interval_minutes}, seed={seed}, "
        f"mode={mode}, graph={graph}, missing_rate={missing_rate}, incident_rate={incident_rate})"
    )
    return Series(SYNTHETIC, info, values, *_time_indices(num_steps, readings_per_day), adjacency, source)


def _check_interval(interval_minutes: int) -> int:
    """Readings per day at `interval_minutes`; DataError unless it is a whole number of native steps."""
    if (
        isinstance(interval_minutes, (int, np.integer))
        and not isinstance(interval_minutes, bool)
        and interval_minutes > 0
        and interval_minutes % DEFAULT_INTERVAL_MINUTES == 0
        and MINUTES_PER_DAY % interval_minutes == 0
    ):
        return steps_per_day(interval_minutes)
    raise DataError(
        f"synthetic interval_minutes: expected a multiple of {DEFAULT_INTERVAL_MINUTES} that divides "
        f"{MINUTES_PER_DAY}, got {interval_minutes!r}"
    )


def _time_indices(num_steps: int, per_day: int) -> tuple[np.ndarray, np.ndarray]:
    """(tod, dow) indices of steps 0 .. num_steps - 1 at `per_day` steps a day, step 0 = Monday 00:00."""
    steps = np.arange(num_steps)
    return steps % per_day, (steps // per_day) % DAYS_PER_WEEK


def _check_arguments(
    num_nodes: int | None,
    num_steps: int,
    seed: int,
    mode: str,
    adjacency: np.ndarray | None,
    missing_rate: float,
    incident_rate: float,
) -> None:
    """DataError naming the first unusable argument."""
    if num_nodes is not None and (not isinstance(num_nodes, (int, np.integer)) or num_nodes < 2):
        raise DataError(f"synthetic num_nodes: expected an integer >= 2, got {num_nodes!r}")
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise DataError(f"synthetic num_steps: expected a positive integer, got {num_steps!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"synthetic seed: expected an integer >= 0, got {seed!r}")
    if mode not in MODES:
        raise DataError(f"synthetic mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if not 0 <= missing_rate < 1:
        raise DataError(f"synthetic missing_rate: expected a number in [0, 1), got {missing_rate!r}")
    if not incident_rate >= 0:
        raise DataError(f"synthetic incident_rate (option 'incidents'): expected a number >= 0, got {incident_rate!r}")
    if adjacency is not None:
        shape = np.shape(adjacency)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
            raise DataError(f"synthetic adjacency: expected an (N, N) matrix with N >= 2, got shape {shape}")
        if num_nodes is not None and num_nodes != shape[0]:
            raise DataError(f"synthetic num_nodes: {num_nodes} differs from the graph's {shape[0]} nodes")


def _corridor_graph(num_nodes: int, rng: np.random.Generator) -> tuple[np.ndarray, sparse.csr_array]:
    """Chains of about _SENSORS_PER_CORRIDOR sensors plus one-way interchanges into later corridors.

    Returns the binary symmetric adjacency (PEMS style) and the directed graph of traffic flow.
    Corridor c holds consecutive node numbers, its head (upstream end) first.
    """
    corridors = np.array_split(np.arange(num_nodes), -(-num_nodes // _SENSORS_PER_CORRIDOR))
    upstream = [corridor[:-1] for corridor in corridors]
    downstream = [corridor[1:] for corridor in corridors]
    for index in range(1, len(corridors)):  # each corridor feeds the next, and now and then another
        feeders = rng.integers(0, index, size=1 + rng.poisson(0.5))
        upstream.append(np.array([rng.choice(corridors[feeder]) for feeder in feeders]))
        downstream.append(rng.choice(corridors[index][1:], size=len(feeders)))
    sources, targets = np.concatenate(upstream), np.concatenate(downstream)
    directed = sparse.csr_array((np.ones(len(sources), dtype=bool), (sources, targets)), shape=(num_nodes, num_nodes))
    adjacency = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    adjacency[sources, targets] = adjacency[targets, sources] = 1.0
    return adjacency, directed


def _travel_delays(directed: sparse.csr_array, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per sensor: travel time (steps) from the nearest entry point, and that entry point's number.

    Entry points are the sensors nothing flows into (corridor heads); a component without one
    gets a random sensor. Sensors not reachable along the edges fall back to undirected paths.
    """
    num_nodes = directed.shape[0]
    hop_cost = rng.uniform(*_HOP_DELAY_STEPS, size=num_nodes)  # reaching sensor j from upstream
    weighted = sparse.csr_array(directed.astype(np.float64) * hop_cost[None, :])
    _, component = connected_components(directed, directed=True, connection="weak")
    is_entry = np.asarray(directed.sum(axis=0)).ravel() == 0
    shuffled = rng.permutation(num_nodes)
    _, first = np.unique(component[shuffled], return_index=True)
    representative = shuffled[first]  # one random sensor per component, in component order
    has_entry = np.bincount(component[is_entry], minlength=len(representative)) > 0
    is_entry[representative[~has_entry]] = True
    entries = np.flatnonzero(is_entry)
    delays, _, nearest = dijkstra(weighted, indices=entries, return_predecessors=True, min_only=True)
    unreached = np.isinf(delays)
    if unreached.any():
        undirected_delays, _, undirected_nearest = dijkstra(
            weighted, directed=False, indices=entries, return_predecessors=True, min_only=True
        )
        delays[unreached], nearest[unreached] = undirected_delays[unreached], undirected_nearest[unreached]
    return np.minimum(delays, _MAX_DELAY_STEPS), np.searchsorted(entries, nearest)


def _demand_profiles(delays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(7 * NATIVE_STEPS_PER_DAY, N) float32 demand/capacity ratio by (day of week, native step of day)."""
    num_nodes = len(delays)
    time = np.arange(NATIVE_STEPS_PER_DAY, dtype=np.float64)[:, None]
    shift = delays + rng.normal(0.0, 4.0, num_nodes)  # later downstream, plus each sensor's own timing
    inbound = rng.random(num_nodes)  # inbound sensors peak in the morning, outbound in the evening
    morning_peak = 96 + shift + rng.normal(0, 3, num_nodes)  # about 8:00
    evening_peak = 210 + shift + rng.normal(0, 3, num_nodes)  # about 17:30
    morning = (0.25 + 0.7 * inbound) * _bump(time, morning_peak, rng.uniform(8, 14, num_nodes))
    evening = (0.95 - 0.7 * inbound) * _bump(time, evening_peak, rng.uniform(10, 18, num_nodes))
    night, plateau = rng.uniform(0.05, 0.1, num_nodes), rng.uniform(0.35, 0.5, num_nodes)
    weekday = _daytime(time, night, plateau, 72 + shift, 258 + shift) + morning + evening
    weekend = (
        _daytime(time, night, 0.8 * plateau, 96 + shift, 264 + shift)
        + 0.35 * _bump(time, 162 + shift, 36.0)
        + 0.1 * (morning + evening)
    )
    days = [level * (weekday if day < 5 else weekend) for day, level in enumerate(_DAY_LEVEL)]
    return np.concatenate(days).astype(np.float32)


def _bump(time: np.ndarray, center: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """A Gaussian peak on the 24-hour circle (time and center in steps)."""
    distance = (time - center + NATIVE_STEPS_PER_DAY / 2) % NATIVE_STEPS_PER_DAY - NATIVE_STEPS_PER_DAY / 2
    return np.exp(-0.5 * (distance / width) ** 2)


def _daytime(time: np.ndarray, night: np.ndarray, day: np.ndarray, rise: np.ndarray, fall: np.ndarray) -> np.ndarray:
    """Night level, rising to the day level around `rise` and falling back around `fall`."""
    awake = 1 / (1 + np.exp(-(time - rise) / 6)) / (1 + np.exp(-(fall - time) / 8))
    return night + (day - night) * awake


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], coefficient: float, std: float) -> np.ndarray:
    """Float32 AR(1) noise along axis 0 with stationary standard deviation `std`."""
    innovations = rng.standard_normal(shape, dtype=np.float32) * np.float32(std * np.sqrt(1 - coefficient**2))
    innovations[0] /= np.float32(np.sqrt(1 - coefficient**2))  # start in the stationary state
    from scipy.signal import lfilter  # imported here: scipy.signal alone takes most of a second to import

    feedback = np.array([1.0, -coefficient], dtype=np.float32)  # float32 taps keep lfilter in float32
    return lfilter(np.ones(1, dtype=np.float32), feedback, innovations, axis=0)


def _delayed_fluctuation(
    delays: np.ndarray, corridor: np.ndarray, num_steps: int, rng: np.random.Generator
) -> np.ndarray:
    """(T, N): each corridor's slow demand fluctuation, seen by each sensor after its travel delay."""
    lags = np.rint(delays).astype(np.int64)
    history = _MAX_DELAY_STEPS
    shared = _ar1(rng, (num_steps + history, int(corridor.max()) + 1), _SHARED_AR, _SHARED_STD)
    rows = np.arange(num_steps)[:, None] + (history - lags)[None, :]
    return shared[rows, corridor[None, :]]


def _capacity_after_incidents(
    adjacency: np.ndarray, num_steps: int, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """(T, N) float32 fraction of capacity left after random incidents (`rate` per sensor per day)."""
    num_nodes = len(adjacency)
    count = rng.poisson(rate * num_nodes * num_steps / NATIVE_STEPS_PER_DAY)
    origin = rng.integers(0, num_nodes, count)
    start = rng.integers(0, num_steps, count)
    duration = rng.integers(*_INCIDENT_DURATION, count, endpoint=True)
    severity = rng.uniform(*_INCIDENT_SEVERITY, count)
    return 1 - _incident_cuts(adjacency, num_steps, origin, start, duration, severity)


def _incident_cuts(
    adjacency: np.ndarray,
    num_steps: int,
    origin: np.ndarray,
    start: np.ndarray,
    duration: np.ndarray,
    severity: np.ndarray,
) -> np.ndarray:
    """(T, N) float32 capacity cut by the given incidents.

    Incident e cuts `severity[e]` of its origin's capacity from `start[e]` for `duration[e]`
    steps, then recovers with e-folding time _RECOVERY_STEPS. A sensor k hops away feels the
    same shape _INCIDENT_SPREAD_STEPS * k steps later, scaled by _INCIDENT_HOP_DECAY ** k.
    """
    cut = np.zeros((num_steps, len(adjacency)), dtype=np.float32)
    incident, node, hops = _neighbourhoods(adjacency, origin)
    since_onset = np.arange(_INCIDENT_DURATION[1] + 3 * _RECOVERY_STEPS)[None, :]
    recovery = np.exp(-np.maximum(since_onset - duration[incident][:, None], 0) / _RECOVERY_STEPS)
    size = (severity[incident] * _INCIDENT_HOP_DECAY**hops)[:, None] * recovery
    time = (start[incident] + hops * _INCIDENT_SPREAD_STEPS)[:, None] + since_onset
    inside = time < num_steps
    np.add.at(cut, (time[inside], np.broadcast_to(node[:, None], time.shape)[inside]), size[inside])
    return np.minimum(cut, np.float32(_MAX_CAPACITY_CUT))


def _neighbourhoods(adjacency: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(incident, node, hops) for every node within _INCIDENT_HOPS undirected hops of each origin."""
    num_nodes = len(adjacency)
    linked = (adjacency != 0) | (adjacency.T != 0)
    step = sparse.csr_array(linked | np.eye(num_nodes, dtype=bool), dtype=np.float32)
    reached = sparse.csr_array(
        (np.ones(len(origins), dtype=np.float32), (np.arange(len(origins)), origins)), shape=(len(origins), num_nodes)
    )
    rows, cols = reached.nonzero()
    incident, node, hops = [rows], [cols], [np.zeros(len(rows), dtype=np.int64)]
    for hop in range(1, _INCIDENT_HOPS + 1):
        grown = (reached @ step).astype(bool).astype(np.float32)
        new_rows, new_cols = (grown - reached).nonzero()
        incident.append(new_rows)
        node.append(new_cols)
        hops.append(np.full(len(new_rows), hop))
        reached = grown
    return np.concatenate(incident), np.concatenate(node), np.concatenate(hops)


def _observe_flow(load: np.ndarray, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vehicles per 5 minutes: demand is served up to capacity, and less once congested; Poisson-like noise."""
    num_nodes: int = load.shape[1]
    served = np.where(load <= 1, load, 1 - 0.4 * np.tanh(load - 1)) * capacity
    flow = served * rng.uniform(*_FLOW_CAPACITY, size=num_nodes).astype(np.float32)
    flow += np.sqrt(flow) * rng.standard_normal(flow.shape, dtype=np.float32)
    return np.maximum(flow, 0, out=flow)


def _observe_speed(load: np.ndarray, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Miles per hour: free-flow speed, lowered by a sensor-specific amount as load nears capacity."""
    num_nodes: int = load.shape[1]
    free_speed = rng.uniform(*_FREE_SPEED, size=num_nodes).astype(np.float32)
    worst_drop = rng.uniform(0.4, 0.8, size=num_nodes).astype(np.float32)
    congestion = 1 / (1 + np.exp(-(load - 1) / np.float32(0.1)))
    speed = free_speed * (1 - worst_drop * congestion)
    speed += np.float32(_SPEED_NOISE) * rng.standard_normal(speed.shape, dtype=np.float32)
    return np.clip(speed, 0, _MAX_SPEED, out=speed)


def _sensor_gaps(shape: tuple[int, int], rate: float, native_per_reading: int, rng: np.random.Generator) -> np.ndarray:
    """(T, N) bool: half the rate as whole-sensor outages of hours, half as scattered single readings."""
    num_steps, num_nodes = shape
    outage_readings = tuple(max(steps // native_per_reading, 1) for steps in _OUTAGE_STEPS)
    gaps = rng.random(shape, dtype=np.float32) < rate / 2
    count = rng.poisson(rate / 2 * num_steps * num_nodes / np.mean(outage_readings))
    node, start = rng.integers(0, num_nodes, count), rng.integers(0, num_steps, count)
    end = np.minimum(start + rng.integers(*outage_readings, count, endpoint=True), num_steps)
    boundaries = np.zeros((num_steps + 1, num_nodes), dtype=np.int32)
    np.add.at(boundaries, (start, node), 1)
    np.add.at(boundaries, (end, node), -1)
    gaps |= np.cumsum(boundaries[:-1], axis=0, dtype=np.int32) > 0
    return gaps
