"""Does TPE + ASHA find what a full grid finds, for less compute?

1. The full grid of a small space (STID on synthetic data: lr x num_layers x embed_dim) is
   trained once through `python -m harness.sweep` with the grid sampler; every trial's
   per-epoch validation curve lands in its record. A rerun takes the grid from the result cache.
2. Each search method then runs as the harness runs it (its searcher: one Optuna study per
   dataset with the sampler the harness builds; its scheduler: ASHA per dataset, or FIFO), on a
   trainable that replays the grid's recorded curves instead of training again: a tabular
   benchmark, so that many search seeds cost seconds and every method sees the same objective.
3. For each method and search seed: the epochs consumed (in the order results reached the
   driver) until a trial that ran to its end has a validation MAE within 2% of the grid's best,
   as a fraction of the grid's total epochs; the median over seeds is printed.

Target: TPE + ASHA within 2% of the grid's best at <= 30% of the grid's epoch budget. The last
line ends with TPE + ASHA's fraction.

    python bench/search_efficiency.py [--seeds 10] [--storage results/bench]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402

from harness.records import read_records  # noqa: E402
from harness.spec import Overrides, Scheduler, parse_sweep  # noqa: E402
from harness.search import PerDatasetScheduler, dataset_studies  # noqa: E402

GRID = """\
name: bench-grid
model: stid
datasets: [synthetic]
data_options: {nodes: 16, days: 10, seed: 0}
fixed: {max_epochs: 10, patience: 10, batch_size: 32}
space:
  lr: {type: categorical, choices: [0.0003, 0.001, 0.003, 0.01, 0.03]}
  num_layers: {type: int, low: 1, high: 3}
  embed_dim: {type: categorical, choices: [8, 16, 32, 64]}
objective: {metric: val_mae, mode: min}
search: {sampler: grid, num_samples: 60, seed: 0}
resources: {cpu: 1, gpu: 0}
max_concurrent: 2
"""
PARAMS = ("lr", "num_layers", "embed_dim")
WITHIN = 0.02
METHODS = {  # name -> (sampler, scheduler)
    "TPE + ASHA": ("tpe", "asha"),
    "random + ASHA": ("random", "asha"),
    "random + FIFO": ("random", "fifo"),
}
ASHA = Scheduler("asha", grace_period=2, reduction_factor=3)


def train_grid(storage: Path) -> Path:
    """Train (or take from the cache) every point of the grid; returns the campaign folder."""
    spec_file = storage / "bench-grid.yaml"
    spec_file.write_text(GRID)
    fresh = ["--fresh"] if (storage / "bench-grid" / "manifest.json").exists() else []
    command = [sys.executable, "-m", "harness.sweep", str(spec_file), "--storage", str(storage), "--no-report", *fresh]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    print("grid: " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return storage / "bench-grid"


def grid_curves(campaign: Path) -> dict[tuple, list[float]]:
    """Each grid point's validation MAE per epoch, from the records."""
    records, _ = read_records(campaign)
    return {tuple(r.varied[p] for p in PARAMS): [row["val_mae"] for row in r.curve] for r in records if r.status == "ok"}


def replay(config: dict, curves: dict[tuple, list[float]]) -> None:
    """A trial that 'trains' by reporting the grid's recorded curve of its configuration."""
    curve = curves[tuple(config[p] for p in PARAMS)]
    for epoch, val in enumerate(curve, start=1):
        tune.report({"epoch": epoch, "val_mae": val, "final": False, "last": epoch == len(curve)})
    tune.report({"epoch": len(curve), "val_mae": min(curve), "status": "ok", "final": True})


class Ledger(tune.Callback):
    """The results in the order they reached the driver: epochs consumed, finished values."""

    def __init__(self):
        self.events: list[tuple[int, float | None]] = []  # (epochs consumed so far, a finished trial's value or None)
        self.epochs = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("final"):
            self.events.append((self.epochs, result["val_mae"]))
        else:
            self.epochs += 1
            self.events.append((self.epochs, None))


def search(method: str, seed: int, curves: dict, grid_spec_file: Path, total: int) -> tuple[int, float]:
    """One search with the harness's searcher and scheduler on the replayed grid; returns
    (epochs until within WITHIN of the grid's best, or the epochs consumed when it never got
    there, as a negative number; the best value found)."""
    sampler, scheduler_type = METHODS[method]
    spec = parse_sweep(grid_spec_file, Overrides(num_samples=total))
    spec = dataclasses.replace(spec, sampler=sampler, search_seed=seed, scheduler=ASHA if scheduler_type == "asha" else Scheduler())
    best = min(min(c) for c in curves.values())
    ledger = Ledger()
    with tempfile.TemporaryDirectory() as folder:
        searcher = dataset_studies(spec, Path(folder), {"synthetic": total}, {})
        scheduler = PerDatasetScheduler(ASHA.grace_period, ASHA.reduction_factor, "val_mae", "min") if scheduler_type == "asha" else None
        tune.Tuner(
            tune.with_parameters(replay, curves=curves),
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=total, max_concurrent_trials=2, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=folder, callbacks=[ledger], verbose=0),
        ).fit()
    found = min((v for _, v in ledger.events if v is not None), default=float("inf"))
    for epochs, value in ledger.events:
        if value is not None and value <= best * (1 + WITHIN):
            return epochs, found
    return -ledger.epochs, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="search seeds per method (default 10)")
    parser.add_argument("--storage", type=Path, default=ROOT / "results" / "bench", help="where the grid and its cache live")
    args = parser.parse_args()
    args.storage.mkdir(parents=True, exist_ok=True)
    curves = grid_curves(train_grid(args.storage))
    budget = sum(len(c) for c in curves.values())
    best = min(min(c) for c in curves.values())
    print(f"grid: {len(curves)} configurations, {budget} epochs; best validation MAE {best:.3f}")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(address="local", include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1", logging_level="ERROR")
    medians = {}
    for method in METHODS:
        results = [search(method, seed, curves, args.storage / "bench-grid.yaml", len(curves)) for seed in range(args.seeds)]
        reached = [epochs for epochs, _ in results if epochs >= 0]
        fractions = [epochs / budget if epochs >= 0 else float("inf") for epochs, _ in results]
        medians[method] = statistics.median(fractions)
        median_text = f"{medians[method]:.0%}" if medians[method] != float("inf") else "not reached by half the seeds"
        print(f"{method:14s}: within {WITHIN:.0%} of the grid's best in {len(reached)}/{args.seeds} seeds; "
              f"median budget {median_text} of the grid's (per seed: {', '.join(f'{f:.0%}' if f != float('inf') else '-' for f in fractions)})")
    ray.shutdown()
    tpe = medians["TPE + ASHA"]
    print(f"search efficiency: TPE + ASHA reaches {WITHIN:.0%} of the grid's best at "
          f"{'never' if tpe == float('inf') else f'{tpe:.0%}'} of the grid's epoch budget (median of {args.seeds} seeds; target <= 30%)")


if __name__ == "__main__":
    main()
