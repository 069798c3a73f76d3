"""The one runner behind `harness.sweep` and `harness.ablate`.

Flow: validated Campaign -> datasets loaded once in the driver -> Ray (local or a cluster) ->
Tuner(s) running `harness.trial.run_trial` -> tidy records in the campaign folder -> report.
A sweep runs one Optuna study per dataset; an ablation runs its variants x datasets x seeds
grid in one Tuner. Every trial's record is written whatever its fate (ok, failed, diverged,
pruned), so one bad trial never costs the rest of the campaign.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy
import optuna
import pandas as pd
import ray
import torch
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from harness.cli import UsageError
from harness.data import PreparedData, load_series, prepare
from harness.experiment import plan_run
from harness.records import atomic_write_text, write_json
from harness.space import DefineByRun, make_sampler, study_from_records
from harness.spec import Campaign, Resources, parse_ablation, parse_sweep
from harness.trial import RECOVERED, TrialContext, resolve_trial_config, run_trial

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRESS_EVERY_S = 15.0


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that are not part of the campaign file."""

    address: str | None = None
    storage: str | None = None
    resume: bool = False
    dry_run: bool = False
    use_cache: bool = True
    report: bool = True


# --------------------------------------------------------------------------------------------
# Provenance.


def code_version() -> str:
    """Hash of the project's source (harness/ and models/): part of every trial's identity."""
    digest = hashlib.sha256()
    for path in sorted(PROJECT_ROOT.glob("harness/**/*.py")) + sorted(PROJECT_ROOT.glob("models/**/*.py")):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def git_sha() -> str | None:
    """The checkout's commit (with '+dirty' for local changes), or None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide the numbers."""
    return {"python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__, "optuna": optuna.__version__, "numpy": numpy.__version__, "pandas": pd.__version__}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Plan.


def ablation_cells(campaign: Campaign) -> list[dict[str, Any]]:
    """Every (variant, dataset, seed) of an ablation, in table order."""
    return [
        {"dataset": dataset, "display": display, "seed": seed, "overrides": dict(overrides)}
        for display, overrides in campaign.variants.items()
        for dataset in campaign.datasets
        for seed in campaign.seeds
    ]


def describe_plan(campaign: Campaign) -> str:
    """What the campaign will run, for --dry-run and the start banner."""
    lines = [f"{campaign.kind} {campaign.name}: model {campaign.model} on {', '.join(campaign.datasets)}"]
    if campaign.kind == "sweep":
        objective = ", ".join(f"{o.mode} {o.metric}" for o in campaign.objectives)
        lines.append(f"  {campaign.num_samples} trials per dataset, sampler {campaign.sampler} (seed {campaign.search_seed}), scheduler {campaign.scheduler.type}, objective {objective}")
        lines.append(f"  fixed: {json.dumps(dict(campaign.fixed))}")
        for p in campaign.space:
            lines.append(f"  search {p.name}: {json.dumps(p.as_dict())}")
    else:
        cells = ablation_cells(campaign)
        lines.append(f"  {len(cells)} trials = {len(campaign.variants)} variants x {len(campaign.datasets)} datasets x {len(campaign.seeds)} seeds; reference {campaign.reference!r}")
        lines.append(f"  base: {json.dumps(dict(campaign.base))}")
        for display, overrides in campaign.variants.items():
            lines.append(f"  variant {display}: {json.dumps(dict(overrides))}")
    lines.append(f"  per trial: {campaign.resources.cpu:g} cpu, {campaign.resources.gpu:g} gpu; at most {campaign.max_concurrent} at once; {campaign.max_failures} retries")
    return "\n".join(lines)


def load_datasets(campaign: Campaign, log: Callable[[str], None]) -> dict[str, PreparedData]:
    """Load and prepare every dataset once, in the driver (DataError before Ray starts)."""
    prepared = {}
    for name in campaign.datasets:
        started = time.perf_counter()
        series = load_series(name, campaign.data_dir, campaign.data_options if name == "synthetic" else None)
        prepared[name] = prepare(series)
        counts = prepared[name].num_samples()
        log(f"dataset {name}: {series.values.shape[1]} nodes x {series.values.shape[0]} steps ({series.source}); "
            f"samples {counts['train']}/{counts['val']}/{counts['test']}; {time.perf_counter() - started:.1f}s")
    return prepared


# --------------------------------------------------------------------------------------------
# Ray.


def start_ray(address: str | None) -> None:
    """Join a cluster (--address / RAY_ADDRESS) or start a quiet local Ray sized to the machine."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's legacy output, silent at verbose=0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as error:
            raise UsageError(f"--address {address}: cannot join the Ray cluster ({_one_line(error)})") from None
    else:
        ray.init(num_cpus=os.cpu_count(), **kwargs)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes of Ray's retries, when HOST:PORT does not answer."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UsageError(f"--address {address}: cannot join the Ray cluster ({error.strerror or error})") from None


def check_cluster_fits(campaign: Campaign) -> None:
    """Fail early when no node could ever run one trial (it would wait forever)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    fits = any(
        n["Resources"].get("CPU", 0) >= campaign.resources.cpu and n["Resources"].get("GPU", 0) >= campaign.resources.gpu for n in nodes
    )
    if not fits:
        biggest = max((n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes)
        raise UsageError(
            f"{campaign.source}: resources: a trial asks for {campaign.resources.cpu:g} cpu and {campaign.resources.gpu:g} gpu, "
            f"but the largest node has {biggest[0]:g} cpu and {biggest[1]:g} gpu"
        )


class Progress(tune.Callback):
    """Concise progress lines instead of Ray's tables: done / running / failed, best so far."""

    def __init__(self, campaign: Campaign, total: int, log: Callable[[str], None]):
        self.campaign, self.total, self.log = campaign, total, log
        self.metric = campaign.objectives[0].metric if campaign.objectives else "val_mae"
        self.sign = -1.0 if campaign.objectives and campaign.objectives[0].mode == "max" else 1.0
        self.done = self.failed = self.pruned = 0
        self.running: set[str] = set()
        self.best: tuple[float, str] | None = None
        self.last_print = 0.0

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.running.add(trial.trial_id)
        value = result.get(self.metric)
        if result.get("final") and result.get("status") == "ok" and value is not None and math.isfinite(value):
            if self.best is None or self.sign * value < self.sign * self.best[0]:
                self.best = (value, trial.trial_id)
        self.maybe_print()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.done += 1
        self.pruned += 0 if trial.last_result.get("final") else 1
        self.maybe_print(force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.done += 1
        self.failed += 1
        self.maybe_print(force=True)

    def maybe_print(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_print < PROGRESS_EVERY_S:
            return
        self.last_print = time.monotonic()
        best = f"; best {self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        self.log(f"[{self.campaign.name}] {self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed, {self.pruned} pruned{best}")


def _trainable(campaign: Campaign, context: TrialContext, datasets: dict[str, PreparedData]):
    from ray import tune

    resources = {"cpu": campaign.resources.cpu, "gpu": campaign.resources.gpu}
    return tune.with_resources(tune.with_parameters(run_trial, context=context, datasets=datasets), resources)


def _run_config(campaign: Campaign, label: str, ray_dir: Path, progress: Progress) -> tune.RunConfig:
    """Where Tune keeps a Tuner's state, its retries, checkpoints and (our) progress output."""
    return tune.RunConfig(
        name=label,
        storage_path=str(ray_dir),
        failure_config=tune.FailureConfig(max_failures=campaign.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[progress],
        verbose=0,
    )


# What Tune says when a trial's snapshot names a checkpoint that a kill caught mid-rotation.
LOST_CHECKPOINT = "does not exist on storage anymore"


def run_tuner(campaign: Campaign, label: str, trainable: Any, ray_dir: Path, options: RunOptions, progress: Progress, log: Callable[[str], None]) -> list[Any]:
    """Run (or with --resume, continue) one Tuner and return its results.

    Tune deletes a trial's previous checkpoint before its experiment snapshot names the new
    one, so a driver killed in between leaves a snapshot naming a deleted checkpoint, and the
    resumed trial fails. Such trials are run again from the start, with the same settings, in
    a small recovery Tuner (no searcher: the sweep's study is rebuilt from the records).
    """
    path = str(ray_dir / label)
    if options.resume and tune.Tuner.can_restore(path):
        grid = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True).fit()
        lost = [r for r in grid if r.error is not None and LOST_CHECKPOINT in str(r.error)]
        if not lost:
            return list(grid)
        log(f"[{campaign.name}] {len(lost)} trial(s) lost their newest checkpoint when the driver died; running them again from the start")
        recovery = tune.Tuner(
            trainable,
            param_space={RECOVERED: tune.grid_search([r.config for r in lost])},
            tune_config=tune.TuneConfig(max_concurrent_trials=campaign.max_concurrent, reuse_actors=True),
            run_config=_run_config(campaign, f"{label}-recovered", ray_dir, progress),
        )
        lost_ids = {id(r) for r in lost}
        return [r for r in grid if id(r) not in lost_ids] + list(recovery.fit())
    if campaign.kind == "ablation":
        tune_config = tune.TuneConfig(max_concurrent_trials=campaign.max_concurrent, reuse_actors=True)
        param_space = {"cell": tune.grid_search(ablation_cells(campaign))}
    else:
        tune_config, param_space = _sweep_tune_config(campaign, label), {}
    return list(tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=_run_config(campaign, label, ray_dir, progress)).fit())


def _sweep_tune_config(campaign: Campaign, dataset: str):
    metrics = [o.metric for o in campaign.objectives]
    modes = [o.mode for o in campaign.objectives]
    # The live study stays in memory: it is saved with Tune's searcher state, so --resume finds
    # it consistent with the trials Tune knows. The journal file is written from the records.
    searcher = OptunaSearch(
        space=DefineByRun(campaign.space, {"dataset": dataset}),
        metric=metrics[0] if len(metrics) == 1 else metrics,
        mode=modes[0] if len(modes) == 1 else modes,
        sampler=make_sampler(campaign),
        study_name=f"{campaign.name}/{dataset}",
    )
    scheduler = None
    if campaign.scheduler.type == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            metric=metrics[0],
            mode=modes[0],
            max_t=10_000,  # never the limit: max_epochs is; a trial's final report must not be cut
            grace_period=campaign.scheduler.grace_period,
            reduction_factor=campaign.scheduler.reduction_factor,
        )
    return tune.TuneConfig(
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=campaign.num_samples,
        max_concurrent_trials=campaign.max_concurrent,
        reuse_actors=True,  # no new process (and torch import) per trial
    )


# --------------------------------------------------------------------------------------------
# Records.

IDENTITY_COLUMNS = ["trial_id", "campaign", "model", "dataset", "variant", "variant_display", "seed"]
OUTCOME_COLUMNS = ["status", "error", "cached", "teacher", "node", "epochs", "best_epoch"]
METRIC_COLUMNS = ["val_mae", "val_rmse", "val_mape", "test_mae", "test_rmse", "test_mape"] + [
    f"test_{m}_h{h}" for h in (3, 6, 12) for m in ("mae", "rmse", "mape")
]
COST_COLUMNS = ["parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb", "wall_s"]
CURVE_COLUMNS = ["trial_id", "epoch", "train_loss", "val_mae", "val_rmse", "val_mape", "lr", "epoch_s"]


def _one_line(error: BaseException | None) -> str:
    text = str(error or "").strip().splitlines()
    return next((line.strip() for line in reversed(text) if line.strip()), type(error).__name__ if error else "")


def trial_row(campaign: Campaign, context: TrialContext, result: Any) -> dict[str, Any]:
    """One trials.csv row from a Tune Result, whatever the trial's fate."""
    metrics = dict(result.metrics or {})
    dataset, display, settings = resolve_trial_config(result.config, context)
    plan = plan_run(campaign.model, settings)
    row: dict[str, Any] = {
        "trial_id": metrics.get("trial_id") or Path(result.path).name,
        "campaign": campaign.name,
        "model": plan.entry.name,
        "dataset": dataset,
        "variant": plan.variant,
        "variant_display": display or plan.entry.variant(plan.variant).display,
        "seed": plan.train_config.seed,
    }
    if result.error is not None:
        row.update(status="failed", error=_one_line(result.error))
    elif metrics.get("final"):
        row.update(status=metrics.get("status", "ok"), error=metrics.get("reason") or "")
    else:
        row.update(status="pruned", error="stopped early by the scheduler")
    finished = metrics.get("final") and row["status"] == "ok"
    row.update(cached=bool(metrics.get("cached", False)), teacher=metrics.get("teacher", ""), node=metrics.get("node", ""))
    row["epochs"] = metrics.get("epochs") if metrics.get("final") else metrics.get("epoch")
    row["best_epoch"] = metrics.get("best_epoch")
    for column in METRIC_COLUMNS + COST_COLUMNS:
        keep = finished or (row["status"] == "pruned" and column.startswith("val_"))
        row[column] = metrics.get(column) if keep else None
    for key, value in plan.settings().items():
        row[f"config.{key}"] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return row


def curve_rows(row: dict[str, Any], result: Any) -> list[dict[str, Any]]:
    """Per-epoch rows of one trial (the reports that a trial made before its final one)."""
    frame = result.metrics_dataframe
    if frame is None or frame.empty or "epoch" not in frame:
        return []
    frame = frame[frame.get("final", False) != True]  # noqa: E712  (a column of booleans)
    columns = [c for c in frame.columns if c in CURVE_COLUMNS or c.startswith("loss_")]
    return [{"trial_id": row["trial_id"], **record} for record in frame[columns].to_dict("records")]


def write_csv(path: Path, rows: list[dict[str, Any]], leading: list[str]) -> None:
    """Rows as CSV (columns: `leading` first, then any others in first-seen order), atomically."""
    frame = pd.DataFrame(rows)
    ordered = [c for c in leading if c in frame.columns] + [c for c in frame.columns if c not in leading]
    atomic_write_text(path, frame.reindex(columns=ordered or leading).to_csv(index=False))


def best_config(campaign: Campaign, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """best.yaml: the best finished trial per dataset on the first objective."""
    objective = campaign.objectives[0]
    per_dataset = {}
    for dataset in campaign.datasets:
        done = [r for r in rows if r["dataset"] == dataset and r["status"] == "ok" and r.get(objective.metric) is not None]
        if not done:
            continue
        best = (min if objective.mode == "min" else max)(done, key=lambda r: r[objective.metric])
        searched = {p.name: _plain(best[f"config.{p.name}"]) for p in campaign.space}
        per_dataset[dataset] = {"trial_id": best["trial_id"], "value": best[objective.metric], "config": {**dict(campaign.fixed), **searched}}
    if not per_dataset:
        return None
    first = next(iter(per_dataset.values()))
    config = {k: v for k, v in first["config"].items() if k != "seed"}
    return {"model": campaign.model, "objective": {"metric": objective.metric, "mode": objective.mode}, "config": config, "per_dataset": per_dataset}


def write_journal(campaign: Campaign, rows: list[dict[str, Any]], path: Path) -> None:
    """The sweep's studies (one per dataset) as an Optuna journal: `optuna-dashboard PATH`."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp)))
    objectives = [(o.metric, o.mode) for o in campaign.objectives]
    for dataset in campaign.datasets:
        records = [{**r, **{p.name: _plain(r[f"config.{p.name}"]) for p in campaign.space}} for r in rows if r["dataset"] == dataset]
        study_from_records(campaign.space, objectives, records, storage=storage, study_name=f"{campaign.name}/{dataset}")
    tmp.replace(path)


def _plain(value: Any) -> Any:
    """A config.<name> cell back to its value (lists were stored as JSON text)."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------------------------
# The campaign.


def run_campaign(campaign: Campaign, options: RunOptions, log: Callable[[str], None] = print) -> int:
    """Run a validated campaign end to end; returns the exit code (0 when every trial is ok)."""
    log(describe_plan(campaign))
    if options.storage and "://" in options.storage:
        raise UsageError(f"--storage {options.storage}: URI storage is not supported yet; mount it (e.g. NFS, s3fs) and pass the folder")
    root = Path(options.storage or "results").expanduser().resolve()
    campaign_dir = root / campaign.name
    manifest_path = campaign_dir / "manifest.json"
    if options.resume and not manifest_path.is_file():
        raise UsageError(f"--resume: nothing to resume at {campaign_dir} (no manifest.json)")
    if campaign.kind == "sweep" and manifest_path.is_file() and not options.resume and not options.dry_run:
        raise UsageError(f"{campaign.source}: name: {campaign_dir} already holds this sweep; use --resume to continue it, or another name")
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address and not options.dry_run:
        check_reachable(address)  # before the datasets load: a wrong address fails in seconds
    datasets = load_datasets(campaign, log)
    if options.dry_run:
        log("dry run: the campaign file and its datasets are valid; nothing was started")
        return 0

    import ray

    start_ray(options.address)
    try:
        check_cluster_fits(campaign)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        log(f"ray: {len(nodes)} node(s), {ray.cluster_resources().get('CPU', 0):g} cpu, {ray.cluster_resources().get('GPU', 0):g} gpu; results in {campaign_dir}")
        campaign_dir.mkdir(parents=True, exist_ok=True)
        previous = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        manifest = {
            "campaign": campaign.name,
            "kind": campaign.kind,
            "spec": campaign.raw,
            "spec_file": str(Path(campaign.source).resolve()),
            "resolved": {"fixed": dict(campaign.fixed), "base": dict(campaign.base), "datasets": list(campaign.datasets), "seeds": list(campaign.seeds), "data_options": dict(campaign.data_options)},
            "versions": versions(),
            "git_sha": git_sha(),
            "code_version": code_version(),
            "datasets": {
                name: {"fingerprint": d.fingerprint, "nodes": d.meta().num_nodes, "steps": int(d.raw.shape[0]), "samples": d.num_samples()}
                for name, d in datasets.items()
            },
            "ray": {"address": options.address or os.environ.get("RAY_ADDRESS") or "local", "nodes": len(nodes)},
            "started": previous.get("started", now()),
            "resumed": [*previous.get("resumed", []), now()] if options.resume else [],
            "finished": None,
            "command": " ".join(sys.argv),
        }
        write_json(manifest_path, manifest)
        context = TrialContext(
            campaign=campaign.name,
            model=campaign.model,
            fixed=dict(campaign.fixed if campaign.kind == "sweep" else campaign.base),
            campaign_dir=str(campaign_dir),
            storage_root=str(root),
            code_version=manifest["code_version"],
            use_cache=options.use_cache,
        )
        total = campaign.num_samples * len(campaign.datasets) if campaign.kind == "sweep" else len(ablation_cells(campaign))
        progress = Progress(campaign, total, log)
        trainable = _trainable(campaign, context, datasets)  # the datasets enter the object store once
        results = []
        for label in campaign.datasets if campaign.kind == "sweep" else ["grid"]:  # a study per dataset
            results.extend(run_tuner(campaign, label, trainable, campaign_dir / "ray", options, progress, log))
    finally:
        ray.shutdown()

    rows = [trial_row(campaign, context, result) for result in results]
    curves = [c for row, result in zip(rows, results) for c in curve_rows(row, result)]
    write_csv(campaign_dir / "trials.csv", rows, IDENTITY_COLUMNS + OUTCOME_COLUMNS + METRIC_COLUMNS + COST_COLUMNS)
    write_csv(campaign_dir / "curves.csv", curves, CURVE_COLUMNS)
    if campaign.kind == "sweep":
        best = best_config(campaign, rows)
        if best is not None:
            atomic_write_text(campaign_dir / "best.yaml", yaml.safe_dump(best, sort_keys=False))
        write_journal(campaign, rows, campaign_dir / "optuna_journal.log")
    manifest["finished"] = now()
    write_json(manifest_path, manifest)
    return summarise(campaign, campaign_dir, rows, options, log)


def summarise(campaign: Campaign, campaign_dir: Path, rows: list[dict[str, Any]], options: RunOptions, log: Callable[[str], None]) -> int:
    """Build the report and print the closing summary.

    Exit code 0 when the campaign ran to its end with at least one finished trial (failed or
    diverged trials are listed and recorded), 1 when no trial finished.
    """
    counts = pd.Series([r["status"] for r in rows]).value_counts().to_dict() if rows else {}
    cached = sum(1 for r in rows if r["cached"])
    log(f"[{campaign.name}] finished: {len(rows)} trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + (f" ({cached} from the cache)" if cached else ""))
    for row in rows:
        if row["status"] in ("failed", "diverged"):
            log(f"  {row['trial_id']} {row['status']}: {row['error']}")
    metric = campaign.objectives[0].metric if campaign.objectives else "val_mae"
    ok = [r for r in rows if r["status"] == "ok" and r.get(metric) is not None]
    if ok:
        best = (max if campaign.objectives and campaign.objectives[0].mode == "max" else min)(ok, key=lambda r: r[metric])
        log(f"  best {metric} {best[metric]:.4f}: trial {best['trial_id']} ({best['dataset']}, {best['variant_display']}, test MAE {best['test_mae']:.4f})")
    log(f"  records: {campaign_dir}/trials.csv, curves.csv, manifest.json" + (", best.yaml" if (campaign_dir / "best.yaml").exists() else ""))
    if options.report:
        from harness.report import build_report

        report_dir = build_report(campaign_dir)
        log(f"  report: {report_dir}/index.md")
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------
# Command line (shared by `python -m harness.sweep` and `python -m harness.ablate`).


def parse_command(kind: str, argv: Sequence[str] | None) -> tuple[Campaign, RunOptions]:
    """Parse the shared command line and the campaign file, applying the flag overrides."""
    what = "sweep (search_spaces/*.yaml)" if kind == "sweep" else "ablation campaign (ablations/*.yaml)"
    parser = argparse.ArgumentParser(prog=f"python -m harness.{'sweep' if kind == 'sweep' else 'ablate'}", description=f"Run a {what} on local Ray or a Ray cluster.")
    parser.add_argument("file", help="the campaign file")
    parser.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--storage", help="folder for results on shared storage (default: ./results); every node must see it")
    parser.add_argument("--data-dir", help="folder with one sub-folder per dataset (overrides the file's data_dir)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted campaign (finished trials are not re-run)")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic data, 2 short epochs, few trials: the whole path in minutes")
    parser.add_argument("--no-cache", action="store_true", help="re-run trials even when an identical finished one is cached")
    parser.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    if kind == "sweep":
        parser.add_argument("--num-samples", type=int, help="trials per dataset")
    parser.add_argument("--max-concurrent", type=int, help="trials running at once")
    parser.add_argument("--cpus-per-trial", type=float)
    parser.add_argument("--gpus-per-trial", type=float, help="fractions allowed: 0.25 puts 4 trials on one GPU")
    args = parser.parse_args(argv)
    campaign = (parse_sweep if kind == "sweep" else parse_ablation)(args.file, smoke=args.smoke)
    changes: dict[str, Any] = {}
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    if getattr(args, "num_samples", None) is not None:
        changes["num_samples"] = _positive(args.num_samples, "--num-samples")
    if args.max_concurrent is not None:
        changes["max_concurrent"] = _positive(args.max_concurrent, "--max-concurrent")
    if args.cpus_per_trial is not None or args.gpus_per_trial is not None:
        cpu = campaign.resources.cpu if args.cpus_per_trial is None else _non_negative(args.cpus_per_trial, "--cpus-per-trial")
        gpu = campaign.resources.gpu if args.gpus_per_trial is None else _non_negative(args.gpus_per_trial, "--gpus-per-trial")
        changes["resources"] = Resources(cpu, gpu)
    options = RunOptions(address=args.address, storage=args.storage, resume=args.resume, dry_run=args.dry_run, use_cache=not args.no_cache, report=not args.no_report)
    return dataclasses.replace(campaign, **changes), options


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise UsageError(f"{flag}: must be >= 1, got {value}")
    return value


def _non_negative(value: float, flag: str) -> float:
    if value < 0:
        raise UsageError(f"{flag}: must be >= 0, got {value}")
    return value


def command(kind: str) -> Callable[[Sequence[str] | None], int]:
    """The main() of `python -m harness.sweep` (kind "sweep") or `harness.ablate` ("ablation")."""

    def main(argv: Sequence[str] | None = None) -> int:
        campaign, options = parse_command(kind, argv)
        return run_campaign(campaign, options)

    return main
