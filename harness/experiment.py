"""One experiment: a planned model (harness.plan) trained and scored on one prepared dataset.

`run_planned` builds the model (and obtains a LightST teacher from the cache when the model
needs one), trains it, scores it and measures its cost. The command line
(`python -m harness.train`) and the Ray trials of campaigns both use it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import PreparedData
from harness.memory import TrialMemory
from harness.metrics import table_view
from harness.plan import RunPlan, teacher_plan
from harness.loop import FitResult, TrainState, evaluate, fit, device_label, resolve_device, seed_everything, train_epoch
from models.base import ForecastModel
from models.config import as_dict

INFERENCE_TIMING_PASSES = 5


@torch.inference_mode()
def inference_ms(model: ForecastModel, data: PreparedData, batch_size: int, device: torch.device) -> float:
    """Median wall time of one forward pass on a test batch (eval mode, data on device)."""
    split = data.split("test")
    x, _ = split.batch(np.arange(min(batch_size, len(split))))
    history = torch.from_numpy(x).to(device)
    was_training = model.training
    model.eval()
    times = []
    for _ in range(INFERENCE_TIMING_PASSES + 1):  # the first pass is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(history)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    model.train(was_training)
    return 1000.0 * float(np.median(times[1:]))


_WARMED_UP: set[str] = set()


def warm_up(plan: RunPlan, data: PreparedData, teacher: ForecastModel | None, device: torch.device) -> None:
    """Pay a process's one-time costs for a model (library and kernel initialisation: about
    100 MB on the CPU) with one training step on two windows, once per process and model, so
    that the memory of the trial after it does not depend on what the process ran before.
    The random state is left as it was: the trial's weights do not change."""
    if plan.entry.name in _WARMED_UP:
        return
    _WARMED_UP.add(plan.entry.name)
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = plan.entry.instantiate(plan.model_config, data.meta(), teacher).to(device)
        x, _ = data.split("train").batch(np.arange(2))
        output = model(torch.from_numpy(x).to(device))
        if getattr(model, "trainable", True):
            loss = output.prediction.mean() + (output.aux_loss if output.aux_loss is not None else 0.0)
            loss.backward()
            torch.optim.Adam(model.parameters()).step()
    np.random.set_state(state)


@dataclass
class RunResult:
    """What one run leaves: the fields of its trial record, the trained model, the fit.

    `fields` holds exactly the `harness.records.TrialRecord` fields a run decides: status,
    reason, epochs, best_epoch, val, test, parameters, train_s_per_iter, infer_ms, peak_mem_mb,
    wall_s, teacher, settings, device and curve.
    """

    fields: dict[str, Any]
    model: ForecastModel
    fit: FitResult


def run_planned(
    plan: RunPlan,
    data: PreparedData,
    *,
    teacher_cache: Path | None = None,
    on_epoch_end: Callable[[dict[str, Any], TrainState], None] | None = None,
    resume: TrainState | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Build, train, score and measure one planned run on prepared data."""
    started = time.perf_counter()
    seed_everything(plan.train_config.seed)  # before building: initial weights depend on it
    device = resolve_device(plan.train_config.device)
    teacher, teacher_status = None, "none"
    needed = teacher_plan(plan)
    if needed is not None:
        from harness.teachers import obtain_teacher  # imported here: only LightST needs it

        cache = teacher_cache or Path("results") / "teachers"
        teacher, teacher_status = obtain_teacher(
            needed.entry.name, as_dict(needed.model_config), data, needed.train_config, cache, log=log or (lambda _: None)
        )
    warm_up(plan, data, teacher, device)
    memory = TrialMemory(device)  # after the teacher: whoever trained it, the student's need is the same
    memory.start(shared_arrays=(data.raw, data.features))
    model = plan.entry.instantiate(plan.model_config, data.meta(), teacher)
    parameters = model.inference_parameters()
    if log is not None:
        log(f"{plan.entry.name} ({plan.variant}) on {data.name}: {parameters:,} parameters, device {device}")
    result = fit(model, data, plan.train_config, on_epoch_end=on_epoch_end, resume=resume, log=log)

    fields: dict[str, Any] = {
        "status": result.status,
        "reason": result.reason,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch or None,
        "val": {},
        "test": {},
        "parameters": parameters,
        "teacher": teacher_status,
        "settings": plan.settings(),
        "device": device_label(device),
        "curve": result.history,
        "infer_ms": None,
    }
    if result.status == "ok":
        fields["val"] = best_epoch_val(result)
        fields["test"] = table_view(evaluate(model, data, "test", plan.train_config))
        fields["infer_ms"] = inference_ms(model, data, plan.train_config.batch_size, device)
    fields["train_s_per_iter"] = result.train_s_per_iter if math.isfinite(result.train_s_per_iter) else None
    fields["peak_mem_mb"] = memory.peak_mb()
    fields["wall_s"] = time.perf_counter() - started
    return RunResult(fields=fields, model=model, fit=result)


def best_epoch_val(result: FitResult) -> dict[str, float]:
    """Validation metrics of the best epoch, as fit() measured them on the weights it restored
    (the numbers the searcher and the scheduler saw; no second pass over the split)."""
    best = next(row for row in result.history if row["epoch"] == result.best_epoch)
    return {measure: best[f"val_{measure}"] for measure in ("mae", "rmse", "mape")}


def probe_epoch_seconds(plan: RunPlan, data: PreparedData, steps: int = 3) -> float:
    """Roughly how long one epoch of this plan takes here: `steps` optimiser steps and one
    validation batch timed (after a warm-up step), scaled to the epoch's training and validation
    batches. A LightST student is timed with an untrained teacher (same cost)."""
    config = plan.train_config
    device = resolve_device(config.device)
    needed = teacher_plan(plan)
    teacher = needed.entry.instantiate(needed.model_config, data.meta()) if needed is not None else None
    model = plan.entry.instantiate(plan.model_config, data.meta(), teacher).to(device)
    if not getattr(model, "trainable", True):
        return 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(0)
    train_epoch(model, data, optimizer, dataclasses.replace(config, max_batches_per_epoch=1), device, rng)  # warm-up
    step_s = train_epoch(model, data, optimizer, dataclasses.replace(config, max_batches_per_epoch=steps), device, rng)["s_per_iter"]
    started = time.perf_counter()
    evaluate(model, data, "val", config, max_batches=1)
    eval_batch_s = time.perf_counter() - started
    eval_batch = config.eval_batch_size or 2 * config.batch_size
    train_batches = math.ceil(len(data.split("train")) / config.batch_size)
    if config.max_batches_per_epoch is not None:
        train_batches = min(train_batches, config.max_batches_per_epoch)
    return step_s * train_batches + eval_batch_s * math.ceil(len(data.split("val")) / eval_batch)
