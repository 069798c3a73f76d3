"""What the harness costs on top of plain training, when trials are many and short.

The same N trainings (STID on synthetic data, the same settings, seeds drawn by Optuna's random
sampler) run twice, one at a time, with one torch thread:

- bare: a script (a fresh `python` process: imports, the data, then an Optuna study's
  optimize() loop calling `harness.experiment.run_planned`: training, validation and test
  scoring, inference timing, the trial's own work);
- harness: `python -m harness.sweep` (a fresh process: imports, the data, Ray start, Tune,
  records, the result cache, the live journal, Ray shutdown; --no-report, as the script has none).
Both are timed as a user times a command: from start to exit.

It prints both wall times, their ratio and the overhead per trial; the last line ends with the
ratio. Targets: <= 1.15x at 1-second trials (100 of them), <= 1.03x at 1-minute trials.

    python bench/overhead.py                         # 100 trials of about 1 s
    python bench/overhead.py --trials 3 --trial-seconds 60
    python bench/overhead.py --memory                # also: 2 concurrent trials vs 1, PEMS07-size data
"""

from __future__ import annotations

import argparse
import math
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

DATA = {"nodes": 20, "days": 7, "seed": 0}
SETTINGS = {"max_epochs": 4, "batch_size": 32, "device": "cpu", "patience": 4}
MEMORY_DATA = {"nodes": 883, "steps": 28224, "seed": 0}
MEMORY_SETTINGS = {"max_epochs": 1, "max_batches_per_epoch": 20, "batch_size": 16, "device": "cpu"}


def calibrate(data, seconds: float) -> dict:
    """Settings whose one training takes about `seconds` here: batches per epoch scaled, and more
    epochs where the training split has fewer batches than that needs."""
    probe = {**SETTINGS, "max_batches_per_epoch": 10}
    run_planned(plan_run("stid", probe), data)  # warm-up
    started = time.perf_counter()
    run_planned(plan_run("stid", probe), data)
    per_batch = (time.perf_counter() - started) / (10 * SETTINGS["max_epochs"])
    needed = max(1, round(seconds / per_batch))
    in_split = math.ceil(len(data.split("train")) / SETTINGS["batch_size"])
    epochs = max(SETTINGS["max_epochs"], math.ceil(needed / in_split))
    return {**SETTINGS, "max_epochs": epochs, "patience": epochs, "max_batches_per_epoch": min(in_split, math.ceil(needed / epochs))}


BARE_SCRIPT = """
import sys, torch, optuna
sys.path.insert(0, {root!r})
from harness.data import load_series, prepare
from harness.experiment import run_planned
from harness.plan import plan_run
torch.set_num_threads(1)
data = prepare(load_series("synthetic", options={data!r}))
def objective(trial):
    seed = trial.suggest_int("seed", 0, 1_000_000)
    return run_planned(plan_run("stid", {{**{settings!r}, "seed": seed}}), data).fields["val"]["mae"]
optuna.logging.set_verbosity(optuna.logging.WARNING)
optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).optimize(objective, n_trials={trials})
"""


def bare_loop(settings: dict, trials: int) -> float:
    """Seconds of a plain script that runs `trials` trainings in Optuna's own loop, one at a time."""
    script = BARE_SCRIPT.format(root=str(ROOT), data=DATA, settings=settings, trials=trials)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - started


def sweep_file(folder: Path, name: str, trials: int, concurrent: int, data: dict, settings: dict) -> Path:
    """A sweep over seeds only, so that every trial does the same work."""
    inline = lambda mapping: ", ".join(f"{k}: {v}" for k, v in mapping.items())  # noqa: E731
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nmodel: stid\ndatasets: [synthetic]\ndata_options: {{{inline(data)}}}\nfixed: {{{inline(settings)}}}\n"
        f"space: {{seed: {{type: int, low: 0, high: 1000000}}}}\nsearch: {{sampler: random, num_samples: {trials}, seed: 0}}\n"
        f"max_concurrent: {concurrent}\nresources: {{cpu: 1, gpu: 0}}\n"
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


def run_sweep(spec: Path, storage: Path) -> tuple[float, float]:
    """(wall seconds of `python -m harness.sweep`, peak summed PSS in MiB of it and its processes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness.sweep", str(spec), "--storage", str(storage), "--no-report", "--no-cache"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=storage, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], sum(pss_kib(p) for p in descendants(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.stdout.read()
    process.wait()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit("the sweep failed:\n" + output[-3000:])
    return time.perf_counter() - started, peak[0] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trainings on each side (default 100)")
    parser.add_argument("--trial-seconds", type=float, default=1.0, help="length of one training (default 1 s)")
    parser.add_argument("--memory", action="store_true", help="also compare 2 concurrent trials with 1 on PEMS07-size data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = prepare(load_series("synthetic", options=DATA))
    settings = calibrate(data, args.trial_seconds)
    print(f"trials: STID on synthetic data ({DATA['nodes']} nodes, {DATA['days']} days), {settings['max_epochs']} epochs of "
          f"{settings['max_batches_per_epoch']} batches: about {args.trial_seconds:g} s each, 1 torch thread, one at a time")
    bare = bare_loop(settings, args.trials)
    print(f"bare:    a script with {args.trials} trainings in an Optuna loop: {bare:.1f} s ({bare / args.trials:.2f} s a trial)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        swept, _ = run_sweep(sweep_file(folder, "overhead", args.trials, 1, DATA, settings), folder)
        print(f"harness: the same trainings through python -m harness.sweep: {swept:.1f} s "
              f"(+{(swept - bare) / args.trials * 1000:.0f} ms a trial, start and end included)")
        if args.memory:
            peaks = {n: run_sweep(sweep_file(folder, f"memory{n}", 2, n, MEMORY_DATA, MEMORY_SETTINGS), folder)[1] for n in (1, 2)}
            print(f"memory: peak PSS of 2 concurrent trials / 1 on PEMS07-size data: {peaks[2]:.0f} / {peaks[1]:.0f} MiB "
                  f"= {peaks[2] / peaks[1]:.2f}x (target <= 1.25; the dataset is shared through Ray's object store)")
    print(f"overhead: harness/bare wall time at {bare / args.trials:.1f}-second trials ({args.trials} trials, bare mean; "
          f"asked for {args.trial_seconds:g} s): {swept / bare:.2f}x")


if __name__ == "__main__":
    main()
