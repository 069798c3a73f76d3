"""One Ray Tune trial: resolve its settings, train with per-epoch reports and checkpoints,
leave its artifacts, and reuse an identical finished trial from the result cache.

A trial's config is either a sweep's sampled hyperparameters plus {"dataset": name}, or an
ablation's {"cell": {"dataset", "display", "seed", "overrides"}}, or either of these under
{"recovered": ...} when a crash cost a trial its checkpoint. Everything else comes from
the `TrialContext` the campaign binds with `tune.with_parameters`, together with the prepared
datasets (put into the object store once by the driver and shared zero-copy by all trials).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import ray
from ray import tune

from harness.data import PreparedData
from harness.experiment import RunPlan, plan_run, run_planned
from harness.records import write_json
from harness.train import TrainState
from models.base import ForecastModel
from models.hephaestus import Hephaestus, routing_probabilities

CHECKPOINT_FILE = "train_state.pt"
RECOVERED = "recovered"  # config key of a trial re-run with the settings of one lost in a crash
ROUTING_WINDOWS = 288  # one day of 5-minute test windows


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a campaign shares (small, picklable)."""

    campaign: str
    model: str
    fixed: dict[str, Any]
    campaign_dir: str
    storage_root: str
    code_version: str
    use_cache: bool = True


def identity_key(model: str, settings: dict[str, Any], data: PreparedData, code_version: str) -> str:
    """A trial's full identity: model, resolved settings (seed included), data content, code."""
    settings = {k: v for k, v in settings.items() if k != "device"}
    payload = {"model": model, "settings": settings, "data": data.fingerprint, "segments": data.segments, "code": code_version}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """The nested record of run_planned as the flat metrics trials.csv and Tune use."""
    flat: dict[str, Any] = {
        key: record.get(key)
        for key in ("status", "reason", "teacher", "epochs", "best_epoch", "parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb", "wall_s")
    }
    for split in ("val", "test"):
        metrics = record.get(split) or {}
        for name in ("mae", "rmse", "mape"):
            flat[f"{split}_{name}"] = metrics.get("overall", {}).get(name, math.nan)
            if split == "test":
                for h in (3, 6, 12):
                    flat[f"test_{name}_h{h}"] = metrics.get(f"horizon_{h}", {}).get(name, math.nan)
    return flat


def routing_artifact(model: ForecastModel, data: PreparedData, batch_size: int) -> dict[str, np.ndarray] | None:
    """Router probabilities over one day of test windows (HEPHAESTUS' routing case study)."""
    if not isinstance(model, Hephaestus):
        return None
    split = data.split("test")
    windows = np.arange(min(ROUTING_WINDOWS, len(split)))
    history, target = split.batch(windows)
    probabilities, tod = routing_probabilities(model, history, batch_size)
    return {
        "gate_probs": probabilities,  # (S, M)
        "tod": tod,  # time of day (0..287) of each window's last input step
        "target": target[:, 0, :].mean(axis=1),  # the next reading, averaged over sensors
        "patch_sizes": np.asarray(model.patch_sizes, dtype=np.int64),
    }


def resolve_trial_config(config: dict[str, Any], context: TrialContext) -> tuple[str, str, dict[str, Any]]:
    """(dataset, display name, settings) of a trial's Tune config."""
    config = config.get(RECOVERED, config)  # a trial run again after a crash carries its config
    if "cell" in config:
        cell = config["cell"]
        return cell["dataset"], cell["display"], {**context.fixed, **cell["overrides"], "seed": cell["seed"]}
    sampled = {k: v for k, v in config.items() if k != "dataset"}
    return config["dataset"], "", {**context.fixed, **sampled}


def _for_tune(metrics: dict[str, Any]) -> dict[str, Any]:
    """Tune wants numbers where our records say None (not measured)."""
    return {k: (math.nan if v is None else v) for k, v in metrics.items()}


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy a file so that no reader ever sees it half-written (temp file, then rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def _report_epoch(record: dict[str, Any], state: TrainState) -> None:
    # Tune checks that every reported result holds the objective metrics; the cost metrics a
    # multi-objective sweep may optimise are only measured at the end, so they are NaN here.
    metrics = {**record, "final": False, "parameters": math.nan, "infer_ms": math.nan, "train_s_per_iter": math.nan, "peak_mem_mb": math.nan}
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state.to_dict(), Path(folder) / CHECKPOINT_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _resume_state() -> TrainState | None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return TrainState.from_dict(torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True))


def _save_artifacts(result_model: ForecastModel, data: PreparedData, plan: RunPlan, campaign_dir: Path, trial_id: str, record: dict[str, Any]) -> list[Path]:
    """The trained weights and, for routed models, the routing case-study data."""
    paths = []
    weights = campaign_dir / "models" / f"{trial_id}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    torch.save({"model": plan.entry.name, "settings": plan.settings(), "state_dict": result_model.state_dict()}, tmp)
    tmp.replace(weights)
    paths.append(weights)
    routing = routing_artifact(result_model, data, plan.train_config.batch_size) if record["status"] == "ok" else None
    if routing is not None:
        target = campaign_dir / "artifacts" / trial_id / "routing.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target.with_suffix(".tmp.npz"), **routing)
        target.with_suffix(".tmp.npz").replace(target)
        paths.append(target)
    return paths


def _reuse_cached(entry_dir: Path, campaign_dir: Path, trial_id: str) -> dict[str, Any]:
    """Copy a cached trial's artifacts into this campaign and return its final metrics."""
    final = json.loads((entry_dir / "record.json").read_text())
    for source in entry_dir.glob("*"):
        if source.name == "model.pt":
            target = campaign_dir / "models" / f"{trial_id}.pt"
        elif source.name == "routing.npz":
            target = campaign_dir / "artifacts" / trial_id / "routing.npz"
        else:
            continue
        if not target.exists():  # a resumed trial may already have its own copy
            _atomic_copy(source, target)
    return {**_for_tune(final), "cached": True}


def _store_cached(entry_dir: Path, final: dict[str, Any], artifacts: list[Path]) -> None:
    """Publish a finished trial in the cache: files first, the record (the commit mark) last."""
    for path in artifacts:
        _atomic_copy(path, entry_dir / ("model.pt" if path.suffix == ".pt" else "routing.npz"))
    write_json(entry_dir / "record.json", final)


def run_trial(config: dict[str, Any], context: TrialContext, datasets: dict[str, PreparedData]) -> None:
    """The Ray Tune trainable of every campaign (sweeps and ablations alike)."""
    dataset, display, settings = resolve_trial_config(config, context)
    data = datasets[dataset]
    plan = plan_run(context.model, settings)
    trial_id = tune.get_context().get_trial_id()
    campaign_dir = Path(context.campaign_dir)
    key = identity_key(plan.entry.name, plan.settings(), data, context.code_version)
    entry_dir = Path(context.storage_root) / "cache" / key
    identity = {
        "dataset": dataset,
        "variant": plan.variant,
        "variant_display": display,
        "seed": plan.train_config.seed,
        "identity": key,
        "node": ray.get_runtime_context().get_node_id()[:12],
    }

    if context.use_cache and (entry_dir / "record.json").is_file():
        tune.report({**_reuse_cached(entry_dir, campaign_dir, trial_id), **identity, "final": True})
        return

    result = run_planned(
        plan,
        data,
        teacher_cache=Path(context.storage_root) / "teachers",
        on_epoch_end=_report_epoch,
        resume=_resume_state(),
    )
    final = {**flatten_record(result.record), **identity, "cached": False}
    artifacts = _save_artifacts(result.model, data, plan, campaign_dir, trial_id, result.record)
    if result.record["status"] == "ok":
        _store_cached(entry_dir, final, artifacts)
    tune.report({**_for_tune(final), "final": True})
