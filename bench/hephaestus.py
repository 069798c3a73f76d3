"""HEPHAESTUS efficiency at PEMS04 size (N = 307), batch 16 as in the paper's Table 4.

Prints the parameter count of every variant, then the train-step and inference-step time of the
full model (sparse top-2 of 4 experts), Noisy-Routing Only (the same model run densely: all 4
experts on every sample) and STID, on random inputs with valid time channels. The models take
turns step by step; times are medians over the timed steps and the full / dense ratios are
medians of the ratios of steps timed back to back, so a load swing on a shared machine hits both
sides. The last line is the full / dense train-step time ratio: sparse dispatch should make it
about K / M = 0.5 (target <= 0.6).

    python bench/hephaestus.py [--steps 5] [--warmup 1] [--batch 16] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from models import DatasetMeta, ForecastModel, build_model, get_model  # noqa: E402
from models.base import DAYS_PER_WEEK, STEPS_PER_DAY, count_parameters  # noqa: E402

PEMS04 = DatasetMeta(name="PEMS04", num_nodes=307)
COMPARED = {"full": ("hephaestus", "full"), "dense": ("hephaestus", "noisy_routing_only"), "stid": ("stid", "full")}


def random_batch(batch: int, meta: DatasetMeta, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random z-scored history (B, H, N, 3) with valid time channels, and a (B, F, N, 1) target."""
    history = torch.randn(batch, meta.input_len, meta.num_nodes, 3, device=device)
    start = torch.randint(0, STEPS_PER_DAY * DAYS_PER_WEEK, (batch, 1), device=device)
    steps = start + torch.arange(meta.input_len, device=device)
    history[..., 1] = ((steps % STEPS_PER_DAY) / STEPS_PER_DAY)[..., None]
    history[..., 2] = (((steps // STEPS_PER_DAY) % DAYS_PER_WEEK) / DAYS_PER_WEEK)[..., None]
    target = torch.randn(batch, meta.output_len, meta.num_nodes, 1, device=device)
    return history, target


def timed(step: Callable[[], None], device: torch.device) -> float:
    """Seconds one call of `step` takes, with the device synchronised."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def train_step(
    model: ForecastModel, optimiser: torch.optim.Optimizer, history: torch.Tensor, target: torch.Tensor
) -> Callable[[], None]:
    """One optimisation step: forward, MAE + auxiliary loss, backward, Adam update."""

    def step() -> None:
        model.train()
        optimiser.zero_grad(set_to_none=True)
        out = model(history)
        loss = (out.prediction - target).abs().mean()
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        loss.backward()
        optimiser.step()

    return step


def inference_step(model: ForecastModel, history: torch.Tensor) -> Callable[[], None]:
    """One forward pass in eval mode without autograd."""

    def step() -> None:
        model.eval()
        with torch.inference_mode():
            model(history)

    return step


def step_times(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Milliseconds of each timed call of every step; the steps take turns round by round."""
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(warmup + repeats):
        for name, step in steps.items():
            seconds = timed(step, device)
            if round_index >= warmup:
                samples[name].append(seconds * 1000)
    return samples


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio of two steps timed back to back (robust to load swings)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's default)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"HEPHAESTUS parameters at PEMS04 size (N={PEMS04.num_nodes})")
    for variant in get_model("hephaestus").variants:
        model = build_model("hephaestus", PEMS04, {"variant": variant.name})
        print(f"  {variant.name:<20} {variant.display:<20} {count_parameters(model):>9,}")

    models = {
        name: build_model(model, PEMS04, {"variant": variant}).to(device) for name, (model, variant) in COMPARED.items()
    }
    history, target = random_batch(args.batch, PEMS04, device)
    train_steps = {
        name: train_step(model, torch.optim.Adam(model.parameters(), lr=1e-3), history, target)
        for name, model in models.items()
    }
    train_ms = step_times(train_steps, args.warmup, args.steps, device)
    inference_steps = {name: inference_step(model, history) for name, model in models.items()}
    inference_ms = step_times(inference_steps, args.warmup, args.steps, device)

    where = f"{device.type}, {torch.get_num_threads()} threads" if device.type == "cpu" else device.type
    print(f"\nStep times, batch {args.batch}, {where}, median of {args.steps} after {args.warmup} warm-up")
    print(f"  {'model':<38} {'params':>9} {'train ms':>10} {'infer ms':>10}")
    for name, (model_name, variant) in COMPARED.items():
        label = f"{name} ({model_name}/{variant})"
        train, infer = statistics.median(train_ms[name]), statistics.median(inference_ms[name])
        print(f"  {label:<38} {count_parameters(models[name]):>9,} {train:>10.1f} {infer:>10.1f}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        train_steps["full"]()
        print(f"peak GPU memory of a full-model train step: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB")
    print(f"inference-step time ratio full/dense: {paired_ratio(inference_ms['full'], inference_ms['dense']):.2f}")
    print(f"train-step time ratio full/dense: {paired_ratio(train_ms['full'], train_ms['dense']):.2f} (target <= 0.6)")


if __name__ == "__main__":
    main()
