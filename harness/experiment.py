"""One experiment: a model with its settings, trained and scored on one prepared dataset.

`plan_run` resolves and validates every setting without touching data (so bad settings fail
before any expensive work); `run_planned` builds the model (and obtains a LightST teacher from
the cache when the model needs one), trains it, scores it and measures its cost. The command
line (`python -m harness.train`) and the Ray trials of sweeps and ablations both use these.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import PreparedData
from harness.metrics import table_view
from harness.train import TRAIN_FIELDS, FitResult, TrainConfig, TrainState, evaluate, fit, make_train_config, resolve_device, seed_everything
from models.base import ConfigError, ForecastModel
from models.config import as_dict, field_names
from models.registry import ModelEntry, get_model

# Settings of the run itself that a teacher shares with its student (never lr or batch size:
# a sweep over those must keep reusing one teacher).
TEACHER_SHARED_TRAIN_FIELDS = ("max_epochs", "patience", "seed", "device", "max_batches_per_epoch")
INFERENCE_TIMING_PASSES = 5


@dataclass(frozen=True)
class RunPlan:
    """A fully resolved run: the model's config and the training loop's config."""

    entry: ModelEntry
    model_config: Any
    train_config: TrainConfig

    @property
    def variant(self) -> str:
        return self.model_config.variant

    def settings(self) -> dict[str, Any]:
        """Every resolved setting, model and training loop together (for records)."""
        return {**as_dict(self.model_config), **as_dict(self.train_config)}


def plan_run(model: str, overrides: Mapping[str, Any] | None = None) -> RunPlan:
    """Resolve `overrides` into the model's config and the training config, validating both.

    A name that is neither a hyperparameter of the model nor a training setting raises
    ConfigError listing the valid names of both.
    """
    entry = get_model(model)
    overrides = dict(overrides or {})
    model_fields = set(field_names(entry.config_cls))
    unknown = [k for k in overrides if k not in model_fields and k not in TRAIN_FIELDS]
    if unknown:
        raise ConfigError(
            unknown[0],
            f"not a setting of model {entry.name} or of the training loop; model: {', '.join(field_names(entry.config_cls))}; "
            f"training: {', '.join(TRAIN_FIELDS)}",
        )
    model_config = entry.make_config({k: v for k, v in overrides.items() if k in model_fields})
    train_config = make_train_config(dict(entry.train_defaults), {k: v for k, v in overrides.items() if k in TRAIN_FIELDS})
    return RunPlan(entry, model_config, train_config)


def teacher_plan(plan: RunPlan) -> RunPlan | None:
    """The plan of the teacher this run's model needs, or None when it needs none."""
    link = plan.entry.teacher
    overrides = link.config(plan.model_config) if link is not None else None
    if link is None or overrides is None:
        return None
    shared = {k: getattr(plan.train_config, k) for k in TEACHER_SHARED_TRAIN_FIELDS}
    return plan_run(link.model, {**overrides, **shared})


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


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement (a process may run several trials in turn)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the process's peak resident set (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since reset_peak_memory: the CUDA allocator's peak on a GPU, else the
    process's peak resident set (VmHWM on Linux, ru_maxrss elsewhere)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class RunResult:
    """What one run leaves: its record (the metrics.json content), the trained model, the fit."""

    record: dict[str, Any]
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
    reset_peak_memory(device)
    teacher, teacher_status = None, "none"
    needed = teacher_plan(plan)
    if needed is not None:
        from harness.teachers import obtain_teacher  # imported here: only LightST needs it

        cache = teacher_cache or Path("results") / "teachers"
        teacher, teacher_status = obtain_teacher(
            needed.entry.name, as_dict(needed.model_config), data, needed.train_config, cache, log=log or (lambda _: None)
        )
    model = plan.entry.instantiate(plan.model_config, data.meta(), teacher)
    parameters = model.inference_parameters()
    if log is not None:
        log(f"{plan.entry.name} ({plan.variant}) on {data.name}: {parameters:,} parameters, device {device}")
    result = fit(model, data, plan.train_config, on_epoch_end=on_epoch_end, resume=resume, log=log)

    record: dict[str, Any] = {
        "model": plan.entry.name,
        "dataset": data.name,
        "variant": plan.variant,
        "seed": plan.train_config.seed,
        "status": result.status,
        "reason": result.reason,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "samples": data.num_samples(),
        "parameters": parameters,
        "teacher": teacher_status,
        "config": plan.settings(),
        "dataset_fingerprint": data.fingerprint,
    }
    if result.status == "ok":
        record["val"] = table_view(evaluate(model, data, "val", plan.train_config))
        record["test"] = table_view(evaluate(model, data, "test", plan.train_config))
        record["infer_ms"] = inference_ms(model, data, plan.train_config.batch_size, device)
    record["train_s_per_iter"] = result.train_s_per_iter if math.isfinite(result.train_s_per_iter) else None
    record["peak_mem_mb"] = peak_memory_mb(device)
    record["wall_s"] = time.perf_counter() - started
    return RunResult(record=record, model=model, fit=result)
