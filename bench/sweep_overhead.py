"""What the sweep machinery costs on top of plain training.

1. Wall time of the same N trainings run by `harness.sweep` (one at a time, local Ray started
   by the command) versus a bare loop over `run_planned` in one process, with the same number
   of torch threads on both sides (--threads; a trial gets one thread per cpu it reserves).
   Target: <= 1.10x. On a 2-core machine, 2 threads per training make every op wait for a
   thread that Ray's own processes deschedule, so compare at 1 thread there.
2. Peak memory of 2 concurrent trials versus 1 on PEMS07-size synthetic data (883 x 28224).
   Memory is the summed proportional set size (PSS: shared pages split between the processes
   that map them) of the sweep command and every process it starts (Ray, trial workers),
   sampled every 0.1 s from the moment Ray is up (the driver has loaded the data by then).
   Target: <= 1.25x (the dataset is shared through the object store, not copied per trial).

    python bench/sweep_overhead.py [--trials 3] [--model hephaestus] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.data import load_series, prepare  # noqa: E402
from harness.experiment import run_planned  # noqa: E402
from harness.plan import plan_run  # noqa: E402

TIMING_DATA = {"nodes": 40, "days": 21, "seed": 0}
TIMING_SETTINGS = {"max_epochs": 2, "max_batches_per_epoch": 30, "batch_size": 32, "device": "cpu"}
MEMORY_DATA = {"nodes": 883, "steps": 28224, "seed": 0}
MEMORY_SETTINGS = {"max_epochs": 1, "max_batches_per_epoch": 20, "batch_size": 16, "device": "cpu"}


def sweep_file(folder: Path, name: str, trials: int, concurrent: int, cpus: int, data: dict, settings: dict, model: str) -> Path:
    """A sweep over seeds only, so every trial does the same amount of work."""
    data_yaml = ", ".join(f"{k}: {v}" for k, v in data.items())
    fixed_yaml = ", ".join(f"{k}: {v}" for k, v in settings.items())
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nmodel: {model}\ndatasets: [synthetic]\ndata_options: {{{data_yaml}}}\nfixed: {{{fixed_yaml}}}\n"
        f"space: {{seed: {{type: int, low: 0, high: 1000000}}}}\nsearch: {{sampler: random, num_samples: {trials}, seed: 0}}\n"
        f"max_concurrent: {concurrent}\nresources: {{cpu: {cpus}, gpu: 0}}\n"
    )
    return path


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def run_sweep(spec: Path, storage: Path) -> tuple[float, float, float]:
    """(wall seconds, summed PSS in MiB when Ray is up, peak summed PSS in MiB afterwards)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "harness.sweep", str(spec), "--storage", str(storage), "--no-report"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=storage, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[int] = []
    ray_up = threading.Event()
    stop = threading.Event()

    def sample() -> None:
        ray_up.wait()
        while not stop.is_set():
            samples.append(sum(pss_kib(p) for p in descendants(process.pid)))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("ray:"):
            ray_up.set()
    process.wait()
    stop.set()
    ray_up.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit("sweep failed:\n" + "".join(output)[-3000:])
    samples = samples or [0]
    return time.perf_counter() - started, samples[0] / 1024, max(samples) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="trainings in the wall-time comparison")
    parser.add_argument("--model", default="hephaestus")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training, on both sides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = prepare(load_series("synthetic", options=TIMING_DATA))
        started = time.perf_counter()
        for seed in range(args.trials):
            run_planned(plan_run(args.model, {**TIMING_SETTINGS, "seed": seed}), data)
        bare = time.perf_counter() - started
        print(f"bare loop: {args.trials} x {args.model} trainings in one process, {args.threads} thread(s): {bare:.1f} s")
        spec = sweep_file(folder, "timing", args.trials, 1, args.threads, TIMING_DATA, TIMING_SETTINGS, args.model)
        swept, _, _ = run_sweep(spec, folder)
        print(f"sweep:     the same {args.trials} trainings through harness.sweep (Ray start and records included): {swept:.1f} s")
        time_ratio = swept / bare

        peaks = {}
        for concurrent in (1, 2):
            spec = sweep_file(folder, f"memory{concurrent}", 2, concurrent, 1, MEMORY_DATA, MEMORY_SETTINGS, "stid")
            _, baseline, peaks[concurrent] = run_sweep(spec, folder)
            print(f"memory (PSS), PEMS07-size data, {concurrent} concurrent trial(s): {baseline:.0f} MiB when Ray is up, peak {peaks[concurrent]:.0f} MiB (+{peaks[concurrent] - baseline:.0f})")
        memory_ratio = peaks[2] / peaks[1]
    print(f"ratios: sweep/bare wall time {time_ratio:.2f}x (target <= 1.10); 2/1 concurrent peak memory {memory_ratio:.2f}x (target <= 1.25)")


if __name__ == "__main__":
    main()
