"""The GPU check behind bench/gpu.sh: one table, in under 10 minutes on a GPU machine.

1. the test suite's CUDA tests (`-k cuda`);
2. HEPHAESTUS at PEMS04 size, batch 16: train and inference ms per step, peak GPU memory of a
   train step (paper Table 4: 98 ms / 31 ms / 5475 MB on an RTX 4090);
3. LightST: the student's inference speed-up over its teacher at N = 883 (target >= 10x);
4. a sweep of 4 HEPHAESTUS trials at 0.25 GPU each (4 at once on one GPU) against the same 4
   at 1 GPU each (one at a time): trials per minute, and the ratio.
Where torch sees no CUDA device it says so and exits 0 (`--device cpu` runs the same plumbing
on the CPU with small sizes, to check the script itself).

    bash bench/gpu.sh [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
SWEEP = """\
name: {name}
model: hephaestus
datasets: [synthetic]
data_options: {{nodes: {nodes}, days: 7, seed: 0}}
fixed: {{max_epochs: 2, patience: 2, batch_size: 32, max_batches_per_epoch: {batches}, device: {device}}}
space: {{seed: {{type: int, low: 0, high: 1000000}}}}
search: {{sampler: random, num_samples: 4, seed: 0}}
resources: {{cpu: 1, gpu: {gpu}}}
max_concurrent: {concurrent}
"""


def run(command: list[str], timeout: float = 300) -> str:
    """Run a command of the check; its output (a failure is reported, not raised)."""
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return f"FAILED ({done.returncode}): {(done.stdout + done.stderr).strip().splitlines()[-1:]}"
    return done.stdout


def number(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text`, or 'n/a'."""
    found = re.search(pattern, text)
    return found.group(1) if found else "n/a"


def sweep_throughput(device: str, gpu: float, concurrent: int, small: bool) -> float:
    """Trials per minute of a 4-trial sweep (Ray start to exit included)."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "gpu.yaml"
        spec.write_text(SWEEP.format(name="gpu", nodes=20 if small else 307, batches=5 if small else 40, device=device, gpu=gpu, concurrent=concurrent))
        started = time.perf_counter()
        output = run([sys.executable, "-m", "harness.sweep", str(spec), "--storage", folder, "--no-report", "--no-cache"], timeout=600)
        if output.startswith("FAILED"):
            return float("nan")
        return 4 / ((time.perf_counter() - started) / 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to check this script on a machine without a GPU")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu check: torch sees no CUDA device on this machine; nothing to measure (run it where there is a GPU)")
        return
    small = args.device == "cpu"
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    rows = []
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "tests"], timeout=600)
    rows.append(("CUDA tests (pytest -k cuda)", number(r"((?:\d+ (?:passed|failed|skipped)[, ]*)+)", tests) if not tests.startswith("FAILED") else tests, "all pass"))
    heph = run([sys.executable, "bench/hephaestus.py", "--device", args.device, "--batch", "16", "--steps", "2" if small else "20"])
    full = re.search(r"full \(hephaestus/full\)\s+[\d,]+\s+([\d.]+)\s+([\d.]+)", heph)
    rows.append(("HEPHAESTUS train ms/step, PEMS04 size, batch 16", full.group(1) if full else heph[:80], "98 (RTX 4090)"))
    rows.append(("HEPHAESTUS inference ms/step", full.group(2) if full else "n/a", "31 (RTX 4090)"))
    rows.append(("HEPHAESTUS peak GPU memory, train step (MB)", number(r"peak GPU memory of a full-model train step: (\d+) MB", heph), "5475 (RTX 4090)"))
    lightst = run([sys.executable, "bench/lightst.py", "--device", args.device])
    rows.append(("LightST student speed-up over teacher, N=883", number(r"at N=883, batch \d+: ([\d.]+x)", lightst), ">= 10x"))
    shared = sweep_throughput(args.device, 0.25 if not small else 0, 4, small)
    alone = sweep_throughput(args.device, 1.0 if not small else 0, 1, small)
    rows.append(("sweep, 4 trials at 0.25 GPU: trials/min", f"{shared:.1f}", ""))
    rows.append(("sweep, 4 trials at 1 GPU, one at a time: trials/min", f"{alone:.1f}", ""))
    rows.append(("throughput, 0.25 GPU / 1 GPU", f"{shared / alone:.2f}x", "> 1x"))
    width = max(len(r[0]) for r in rows)
    print(f"GPU check on {name}, torch {torch.__version__}")
    print(f"| {'check':<{width}} | {'measured':>22} | {'paper / target':>16} |")
    print(f"|{'-' * (width + 2)}|{'-' * 24}|{'-' * 18}|")
    for check, measured, target in rows:
        print(f"| {check:<{width}} | {str(measured)[:22]:>22} | {target:>16} |")


if __name__ == "__main__":
    main()
