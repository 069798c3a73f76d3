"""`python -m harness.train`: one training run, no Ray.

    python -m harness.train --model stid --dataset synthetic
    python -m harness.train --model hephaestus --dataset pems04 --data-dir ~/data --set top_k=1 --out runs/k1
    python -m harness.train --model hephaestus --dataset pems04 --describe
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.cli import parse_assignments, run_command
from harness.data import get_dataset_info, load_series, prepare, steps_per_day
from harness.experiment import run_planned
from harness.plan import plan_run, teacher_plan
from harness.records import horizon_key, write_json
from models import model_names
from models.base import DatasetMeta


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.train", description="Train and evaluate one model on one dataset (no Ray).")
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(model_names())}")
    parser.add_argument("--dataset", required=True, help="a dataset name (synthetic, pems04, metr-la, ...)")
    parser.add_argument("--data-dir", help="folder with one sub-folder per dataset (default: $HARNESS_DATA_DIR)")
    parser.add_argument("--data-option", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="synthetic data options, e.g. --data-option nodes=40 days=14 (also: mode, seed, graph, ...)")
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="model or training settings, e.g. --set lr=1e-3 top_k=1")
    parser.add_argument("--out", type=Path, help="write DIR/metrics.json")
    parser.add_argument("--teacher-cache", type=Path, help="where LightST teachers are cached (default results/teachers)")
    parser.add_argument("--describe", action="store_true", help="print the model and its parameter count, then exit (needs no data files)")
    return parser.parse_args(argv)


def describe(args: argparse.Namespace, overrides: dict) -> int:
    """Print the model and its parameter count for the dataset's node count, without data."""
    plan = plan_run(args.model, overrides)
    info = get_dataset_info(args.dataset)
    options = parse_assignments(args.data_option, "--data-option")
    num_nodes = int(options.get("nodes", info.num_nodes))
    per_day = steps_per_day(int(options.get("interval", info.interval_minutes)))  # sizes time-of-day tables
    # The adjacency's values do not change the parameter count.
    meta = DatasetMeta(info.name, num_nodes, steps_per_day=per_day, adjacency=np.eye(num_nodes, dtype=np.float32))
    needed = teacher_plan(plan)
    teacher = needed.entry.instantiate(needed.model_config, meta) if needed is not None else None
    model = plan.entry.instantiate(plan.model_config, meta, teacher)
    print(model)
    print(f"model: {plan.entry.name}  variant: {plan.variant}  dataset: {info.name} ({num_nodes} nodes)")
    if teacher is not None:
        print(f"teacher parameters: {teacher.inference_parameters()}")
    print(f"parameters: {model.inference_parameters()}")
    return 0


def format_table(test: dict) -> str:
    """The final metrics as a small fixed-width table."""
    lines = [f"{'test':<10}{'MAE':>10}{'RMSE':>10}{'MAPE %':>10}"]
    for key, row in test.items():
        label = key if key == horizon_key(None) else f"horizon {key.removeprefix('h')}"
        lines.append(f"{label:<10}{row['mae']:>10.3f}{row['rmse']:>10.3f}{row['mape']:>10.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = parse_assignments(args.set, "--set")
    if args.describe:
        return describe(args, overrides)
    plan = plan_run(args.model, overrides)  # settings are checked before any data is read
    series = load_series(args.dataset, args.data_dir, parse_assignments(args.data_option, "--data-option"))
    data = prepare(series)
    counts = data.num_samples()
    print(f"{data.name}: {series.values.shape[1]} nodes x {series.values.shape[0]} steps from {series.source}; "
          f"samples train/val/test {counts['train']}/{counts['val']}/{counts['test']}")
    result = run_planned(plan, data, teacher_cache=args.teacher_cache, log=print)
    record = {"model": plan.entry.name, "dataset": data.name, "variant": plan.variant, "seed": plan.train_config.seed,
              "samples": counts, "dataset_fingerprint": data.fingerprint, **result.fields}
    if record["status"] != "ok":
        print(f"run {record['status']}: {record['reason']}", file=sys.stderr)
    else:
        print(format_table(record["test"]))
        print(f"best epoch {record['best_epoch']} of {record['epochs']}; inference {record['infer_ms']:.1f} ms/batch; "
              f"parameters {record['parameters']:,}")
    if args.out is not None:
        write_json(args.out / "metrics.json", record)
        print(f"wrote {args.out / 'metrics.json'}")
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(run_command(main))
