"""STID training throughput (samples/s) with the harness's loop and data path.

Trains STID for a fixed number of batches on synthetic data of PEMS04 and PEMS08 size and
prints samples per second for the whole training step (batch gathering from the window views,
forward, masked-MAE loss, backward, Adam step), plus inference throughput.

    python bench/stid.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.data import generate_synthetic, prepare  # noqa: E402
from harness.loop import TrainConfig, fit  # noqa: E402
from harness.loop import iterate_batches  # noqa: E402
from models import build_model  # noqa: E402

BATCHES = 100
BATCH_SIZE = 32  # BasicTS's STID setting


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH_SIZE}, {BATCHES} batches")
    for name, nodes, days in (("PEMS08-size", 170, 62), ("PEMS04-size", 307, 59)):
        data = prepare(generate_synthetic(num_nodes=nodes, num_steps=288 * days, seed=0))
        model = build_model("stid", data.meta())
        config = TrainConfig(lr=2e-3, batch_size=BATCH_SIZE, max_epochs=1, patience=1, device="cpu", max_batches_per_epoch=BATCHES)
        result = fit(model, data, config)
        train_rate = BATCH_SIZE / result.train_s_per_iter
        model.eval()
        batches = list(iterate_batches(data.split("test"), 64, torch.device("cpu"), max_batches=20))
        with torch.inference_mode():
            model(batches[0][0])
            started = time.perf_counter()
            for x, _ in batches:
                model(x)
            infer_rate = sum(len(x) for x, _ in batches) / (time.perf_counter() - started)
        print(f"{name} (N={nodes}): training {train_rate:,.0f} samples/s ({1000 * result.train_s_per_iter:.1f} ms/step); inference {infer_rate:,.0f} samples/s")
    print(f"summary: STID trains at {np.round(train_rate):,.0f} samples/s at PEMS04 size on this machine")


if __name__ == "__main__":
    main()
