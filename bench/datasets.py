"""A sweep over two datasets keeps both workers busy: one command against one per dataset.

The same sweep (STID, N trials per dataset, 2 trials at a time) over two datasets runs
(a) as one command, where one Tuner serves both datasets' Optuna studies and their trials share
the workers, and (b) as two commands, one dataset after the other. The second dataset is
synthetic data written in the PEMS08 (ASTGCN) layout, so that no real data is needed. With an
odd number of trials per dataset, one command fills the slot that a lone last trial of a dataset
leaves idle, and starts Ray and Tune once. The last line ends with the ratio (one / two).

    python bench/datasets.py [--trials 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.data import generate_synthetic, write_astgcn  # noqa: E402

SWEEP = """\
name: {name}
model: stid
datasets: [synthetic, pems08]
data_options: {{nodes: 20, days: 10, seed: 0}}
fixed: {{max_epochs: 5, patience: 5, batch_size: 32, max_batches_per_epoch: 40}}
space: {{seed: {{type: int, low: 0, high: 1000000}}}}
search: {{sampler: random, num_samples: {trials}, seed: 0}}
resources: {{cpu: 1, gpu: 0}}
max_concurrent: 2
"""


def sweep(spec: Path, storage: Path, data_dir: Path, *extra: str) -> float:
    """Wall seconds of one `python -m harness.sweep` command."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness.sweep", str(spec), "--storage", str(storage), "--data-dir", str(data_dir),
               "--no-report", "--no-cache", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per dataset (default 5: odd, so a dataset's last trial runs alone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_astgcn(generate_synthetic(num_nodes=20, num_steps=288 * 10, seed=1), folder / "PEMS08", "PEMS08")
        together = folder / "together.yaml"
        together.write_text(SWEEP.format(name="together", trials=args.trials))
        one = sweep(together, folder, folder)
        print(f"one command, both datasets' trials sharing 2 workers: {one:.1f} s")
        apart = folder / "apart.yaml"
        apart.write_text(SWEEP.format(name="apart", trials=args.trials))
        two = sweep(apart, folder, folder, "--datasets", "synthetic") + sweep(apart, folder, folder, "--datasets", "pems08", "--fresh")
        print(f"one command per dataset, one after the other:          {two:.1f} s")
    print(f"datasets: 2 datasets x {args.trials} trials on 2 workers, one command / one per dataset: {one / two:.2f}x")


if __name__ == "__main__":
    main()
