"""LightST inference cost: the graph-less student against its GCN + TCN teacher.

Protocol of shared/specs/lightst.md section 8: the same device (CPU by default), eval mode and
torch.inference_mode, the input batch already in memory, warm-up passes, then the median of
>= 20 timed passes with nothing but the forward pass inside the timed region. Teacher and
student passes alternate, so machine noise hits both alike and their ratio is fair. Sizes
N = 170, 307, 358, 883 are PEMS08, PEMS04, PEMS03 and PEMS07, on their real road graphs when
shared/data/graphs is present (else on a synthetic corridor graph of the same size). Both
models are the defaults: teacher d=64 with 2 GCN + 2 TCN layers, student with 3 MLP blocks.

    python bench/lightst.py [--device cpu] [--passes 20] [--threads T]

(--threads sets torch's intra-op threads for this run; by default torch's own choice is kept.
On a machine shared with other jobs, 1 thread avoids OpenMP oversubscription stalls.)

The last line is the batch-64 speedup at N = 883.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.data.graphs import read_graph  # noqa: E402
from harness.data.synthetic import generate_synthetic  # noqa: E402
from models.base import DatasetMeta, ForecastModel  # noqa: E402
from models.registry import build_model  # noqa: E402

GRAPHS = Path(__file__).resolve().parents[2] / "shared" / "data" / "graphs"
DATASETS = {170: "PEMS08", 307: "PEMS04", 358: "PEMS03", 883: "PEMS07"}
BATCH = 64
WARMUP_PASSES = 3


def road_graph(num_nodes: int, dataset: str) -> tuple[np.ndarray, str]:
    """The dataset's real sensor graph when available, else a synthetic one of the same size."""
    path = GRAPHS / f"{dataset}.csv"
    if path.is_file():
        return read_graph(path, num_nodes), f"{dataset} graph"
    return generate_synthetic(num_nodes=num_nodes, num_steps=288, seed=0).adjacency, "synthetic graph"


def history_batch(batch: int, num_nodes: int, device: torch.device) -> torch.Tensor:
    """A (B, 12, N, 3) input batch: z-scored values and valid time-of-day / day-of-week channels."""
    generator = torch.Generator().manual_seed(0)
    history = torch.randn(batch, 12, num_nodes, 3, generator=generator)
    slots = torch.randint(0, 288 * 7 - 12, (batch,), generator=generator)[:, None] + torch.arange(12)
    history[..., 1] = ((slots % 288) / 288)[..., None]
    history[..., 2] = ((slots // 288) / 7)[..., None]
    return history.to(device)


def timed_pass(model: ForecastModel, history: torch.Tensor) -> float:
    """Seconds of one forward pass (synchronised on CUDA)."""
    if history.device.type == "cuda":
        torch.cuda.synchronize(history.device)
    start = time.perf_counter()
    model(history)
    if history.device.type == "cuda":
        torch.cuda.synchronize(history.device)
    return time.perf_counter() - start


@torch.inference_mode()
def median_seconds(models: dict[str, ForecastModel], history: torch.Tensor, passes: int) -> dict[str, float]:
    """Median forward time of each model, passes alternating between the models."""
    for model in models.values():
        for _ in range(WARMUP_PASSES):
            model(history)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(passes):
        for name, model in models.items():
            times[name].append(timed_pass(model, history))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.passes < 20:
        parser.error("--passes: the protocol asks for at least 20 timed passes")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"LightST inference, device {device}, {torch.get_num_threads()} threads, batch {BATCH}, median of {args.passes} passes")
    header = (
        f"{'N':>5} {'graph':<16} {'teacher ms':>11} {'student ms':>11} {'speedup':>8} "
        f"{'teacher samp/s':>15} {'student samp/s':>15} {'b1 teacher ms':>14} {'b1 student ms':>14} {'b1 speedup':>11} "
        f"{'teacher params':>15} {'student params':>15}"
    )
    print(header)
    speedup = float("nan")
    for num_nodes, dataset in DATASETS.items():
        adjacency, graph = road_graph(num_nodes, dataset)
        meta = DatasetMeta(dataset, num_nodes, adjacency=adjacency)
        torch.manual_seed(0)
        teacher = build_model("lightst_teacher", meta).to(device).eval()
        student = build_model("lightst", meta, teacher=teacher).to(device).eval()
        models = {"teacher": teacher, "student": student}
        batch = median_seconds(models, history_batch(BATCH, num_nodes, device), args.passes)
        single = median_seconds(models, history_batch(1, num_nodes, device), args.passes)
        speedup = batch["teacher"] / batch["student"]
        print(
            f"{num_nodes:>5} {graph:<16} {1e3 * batch['teacher']:>11.1f} {1e3 * batch['student']:>11.2f} {speedup:>7.1f}x "
            f"{BATCH / batch['teacher']:>15.0f} {BATCH / batch['student']:>15.0f} "
            f"{1e3 * single['teacher']:>14.2f} {1e3 * single['student']:>14.3f} {single['teacher'] / single['student']:>10.1f}x "
            f"{sum(p.numel() for p in teacher.parameters()):>15,} {student.inference_parameters():>15,}"
        )
    print(f"speedup of the student over the teacher at N=883, batch {BATCH}: {speedup:.1f}x (target >= 10)")


if __name__ == "__main__":
    main()
