"""Benchmark of the data package at PEMS07 size (883 sensors x 28224 steps).

Prints how long the synthetic generator takes, and what prepare() and the window views cost in
memory (bytes traced by tracemalloc, which numpy reports to) against the bytes the windows would
take if they were materialised as copies. Run: python bench/data.py
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from harness.data import SPLITS, generate_synthetic, prepare

NODES, STEPS = 883, 28224  # PEMS07
BATCH = 64


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:8.3f} GiB"


def _traced(action):
    """(result, bytes still allocated afterwards, peak bytes during) of calling `action`."""
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    result = action()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, after - before, peak - before


def main() -> None:
    start, cpu_start = time.perf_counter(), time.process_time()
    series = generate_synthetic(num_nodes=NODES, num_steps=STEPS, seed=0)
    generate_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        f"synthetic generation, {NODES} x {STEPS} ({series.values.size / 1e6:.1f} M readings): "
        f"{generate_seconds:.2f} s wall, {cpu_seconds:.2f} s CPU ({series.values.size / generate_seconds / 1e6:.1f} "
        "M readings/s)"
    )

    data, prepare_kept, prepare_peak = _traced(lambda: prepare(series))
    splits, views_kept, _ = _traced(lambda: [data.split(name) for name in SPLITS])
    materialised = sum(split.inputs.nbytes + split.targets.nbytes for split in splits)
    raw = series.values.nbytes
    print(f"raw series (T, N) float32:                  {_gib(raw)}")
    print(
        f"prepare() allocated and kept:               {_gib(prepare_kept)}  ({prepare_kept / raw:.2f} x raw; "
        f"peak {_gib(prepare_peak).strip()})"
    )
    print(f"window views of train/val/test allocated:   {_gib(views_kept)}  ({views_kept} bytes)")
    for split in splits:
        print(
            f"  {split.name:5s} {len(split):6d} samples; as copies: inputs {_gib(split.inputs.nbytes)}, "
            f"targets {_gib(split.targets.nbytes)}"
        )
    print(f"windows if materialised as copies:          {_gib(materialised)}  ({materialised / raw:.1f} x raw)")

    train = splits[0]
    indices = np.random.default_rng(0).permutation(len(train))[:BATCH]
    start = time.perf_counter()
    repeats = 50
    for _ in range(repeats):
        train.batch(indices)
    batch_ms = (time.perf_counter() - start) / repeats * 1e3
    print(f"batch({BATCH}) copy from the views: {batch_ms:.2f} ms")
    print(
        f"summary: generation {generate_seconds:.1f} s at PEMS07 size; "
        f"prepare() keeps {prepare_kept / raw:.2f} x raw; "
        f"the windows take {views_kept / 1024:.0f} KiB as views vs {materialised / 2**30:.2f} GiB "
        f"({materialised / raw:.0f} x raw) as copies"
    )


if __name__ == "__main__":
    main()
