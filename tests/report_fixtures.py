"""Hand-made campaign folders (the layout of results/README.md) for the report tests: no Ray,
no training, only the files a campaign leaves behind: the manifest and one trial record per
trial (written through harness.records, exactly as trials write them)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.records import TrialRecord, write_record

HORIZONS = ("", "_h3", "_h6", "_h12")
DATASET_FACTS = {
    "PEMS03": {"signal": "flow", "interval_minutes": 5},
    "PEMS04": {"signal": "flow", "interval_minutes": 5}, "PEMS08": {"signal": "flow", "interval_minutes": 5},
    "METR-LA": {"signal": "speed", "interval_minutes": 5}, "PEMS-BAY": {"signal": "speed", "interval_minutes": 5},
}
METRIC_COLUMNS = [f"test_{m}{h}" for h in HORIZONS for m in ("mae", "rmse", "mape")]
TRIAL_COLUMNS = [
    "trial_id", "campaign", "model", "dataset", "variant", "variant_display", "seed",
    "status", "error", "cached", "teacher", "epochs", "best_epoch",
    "val_mae", "val_rmse", "val_mape", *METRIC_COLUMNS,
    "parameters", "train_s_per_iter", "infer_ms", "peak_mem_mb", "wall_s",
]


def trial_row(trial_id: str, dataset: str, mae: float | None, *, status: str = "ok", **fields: Any) -> dict[str, Any]:
    """One trials.csv row; `mae` sets every MAE-like column (RMSE = 1.6 MAE, MAPE = 3 MAE) unless given.

    A trial that did not finish (status other than ok, or mae None) has empty metrics.
    """
    row: dict[str, Any] = {c: math.nan for c in TRIAL_COLUMNS}
    row.update(trial_id=trial_id, campaign="fixture", model="hephaestus", dataset=dataset, variant="full",
               variant_display="Full", seed=0, status=status, error="", cached=False, teacher="none",
               epochs=5, best_epoch=4, parameters=716_000, train_s_per_iter=0.098, infer_ms=31.0, peak_mem_mb=5475.0,
               wall_s=60.0, device="cpu")
    if mae is not None and status == "ok":
        for horizon in HORIZONS:
            row.update({f"test_mae{horizon}": mae, f"test_rmse{horizon}": 1.6 * mae, f"test_mape{horizon}": 3.0 * mae})
        row.update(val_mae=mae * 0.95, val_rmse=1.6 * mae * 0.95, val_mape=3.0 * mae * 0.95)
    if status != "ok":
        row.update(error=fields.pop("error", f"{status} at epoch 2"), epochs=2, parameters=math.nan,
                   train_s_per_iter=math.nan, infer_ms=math.nan, peak_mem_mb=math.nan)
    row.update(fields)
    return row


def _number(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def record_from_row(row: Mapping[str, Any], curve: Sequence[Mapping[str, Any]] = ()) -> TrialRecord:
    """The trial record a trials.csv-shaped row describes."""
    measures = ("mae", "rmse", "mape")
    test = {("overall" if h == "" else h.removeprefix("_")): {m: _number(row.get(f"test_{m}{h}")) for m in measures} for h in HORIZONS}
    settings = {k.removeprefix("config."): (json.loads(v) if isinstance(v, str) and v.startswith("[") else v)
                for k, v in row.items() if k.startswith("config.")}
    return TrialRecord(
        campaign=row["campaign"], trial_id=row["trial_id"], model=row["model"], dataset=row["dataset"], variant=row["variant"],
        variant_display=row["variant_display"], seed=row["seed"], status=row["status"], reason=row["error"] or "",
        epochs=row["epochs"], best_epoch=_number(row["best_epoch"]), val={m: _number(row.get(f"val_{m}")) for m in measures},
        test=test if row["status"] == "ok" else {}, parameters=_number(row["parameters"]),
        train_s_per_iter=_number(row["train_s_per_iter"]), infer_ms=_number(row["infer_ms"]),
        peak_mem_mb=_number(row["peak_mem_mb"]), wall_s=_number(row["wall_s"]), settings=settings,
        cached=bool(row["cached"]), teacher=row["teacher"], device=row.get("device") or "",
        started=row.get("started") or f"2026-01-01T00:{len(curve):02d}:00+00:00", cell=row.get("cell") or "",
        curve=[{k: v for k, v in point.items() if k != "trial_id"} for point in curve],
    )


def write_campaign(folder: Path, manifest: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                   curves: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Write manifest.json and one record per row (with its curve, when given) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    by_trial: dict[str, list] = {}
    for point in curves or []:
        by_trial.setdefault(point["trial_id"], []).append(point)
    for row in rows:
        write_record(folder, record_from_row(row, by_trial.get(row["trial_id"], [])))
    return folder


def write_v1_campaign(folder: Path, manifest: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Path:
    """A folder of version one of the harness: manifest.json and trials.csv, no records/."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    pd.DataFrame(list(rows)).to_csv(folder / "trials.csv", index=False)
    return folder


def started_at(index: int) -> str:
    """The start time of the index-th trial of a fixture (one a minute)."""
    return f"2026-01-01T{index // 60:02d}:{index % 60:02d}:00+00:00"


def curves_for(rows: Iterable[Mapping[str, Any]], epochs: int = 6) -> list[dict[str, Any]]:
    """Per-epoch curves decaying to each finished trial's validation MAE; a pruned trial's curve
    stops at its epochs, at the value its row says it reached."""
    curves = []
    for row in rows:
        if row["status"] == "ok":
            last = epochs
        elif row["status"] == "pruned" and not math.isnan(row["val_mae"]):
            last = row["epochs"]
        else:
            continue
        for epoch in range(1, last + 1):
            val = row["val_mae"] * (1 + 0.5 / epoch) / (1 + 0.5 / last)
            curves.append({"trial_id": row["trial_id"], "epoch": epoch, "train_loss": val * 1.1, "loss_aux": 0.01,
                           "val_mae": val, "val_rmse": 1.6 * val, "val_mape": 3 * val, "lr": 1e-3, "epoch_s": 1.0})
    return curves


def write_routing(folder: Path, trial_id: str, experts: Sequence[int] = (1, 2, 3, 6), seed: int = 0) -> None:
    """artifacts/<trial_id>/routing.npz: one day (288 windows) of rush-hour-shaped routing."""
    rng = np.random.default_rng(seed)
    hours = np.arange(288) / 12.0
    rush = np.exp(-((hours - 8) ** 2) / 2) + np.exp(-((hours - 17.5) ** 2) / 3)
    target = 300 + 250 * rush + rng.normal(0, 10, 288)
    logits = np.stack([rush * (len(experts) - k) - k * 0.3 for k in range(len(experts))], axis=1)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    path = folder / "artifacts" / trial_id
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "routing.npz", gate_probs=probs.astype(np.float32), hour=hours, target=target.astype(np.float32),
             patch_sizes=np.asarray(experts))


ABLATION_VARIANTS = {
    "Full": ("full", {}),
    "w/o AMS-MoE": ("wo_ams_moe", {"patch_sizes": [3]}),
    "w/o PTA": ("wo_pta", {"temporal_attn": "vanilla"}),
}


def ablation_manifest(datasets: Sequence[str], seeds: Sequence[int], model: str = "hephaestus",
                      variants: Mapping[str, tuple[str, dict]] = ABLATION_VARIANTS, reference: str = "Full") -> dict:
    return {
        "campaign": "fixture-ablation", "kind": "ablation",
        "spec": {"model": model, "datasets": list(datasets), "seeds": list(seeds), "reference": reference,
                 "variants": {display: overrides for display, (_, overrides) in variants.items()}},
        "git_sha": "0123abc", "versions": {"torch": "2.13", "optuna": "5.0.0"}, "status": "finished",
        "datasets": {d: DATASET_FACTS.get(d, {}) for d in datasets},
        "model": {"speed_reference": "teacher" if model == "lightst" else None},
    }


def realistic_ablation(folder: Path) -> Path:
    """HEPHAESTUS ablation on PEMS04 and PEMS08 over 3 seeds: w/o AMS-MoE is consistently worse,
    w/o PTA only noisily; one w/o PTA trial failed. Curves for every trial, routing for Full."""
    base = {"PEMS04": 18.2, "PEMS08": 13.6}
    effect = {"Full": [0.0, 0.0, 0.0], "w/o AMS-MoE": [0.9, 1.0, 0.95], "w/o PTA": [0.4, -0.3, 0.1]}
    noise = [0.0, 0.05, -0.04]
    rows = []
    for dataset, level in base.items():
        for display, (name, _) in ABLATION_VARIANTS.items():
            for seed in range(3):
                trial_id = f"{name}_{dataset}_{seed}".lower()
                failed = display == "w/o PTA" and dataset == "PEMS08" and seed == 2
                mae = level + effect[display][seed] + noise[seed]
                rows.append(trial_row(trial_id, dataset, None if failed else mae, status="failed" if failed else "ok",
                                      variant=name, variant_display=display, seed=seed,
                                      error="CUDA out of memory" if failed else "",
                                      parameters=716_000 if name == "full" else 650_000))
    write_campaign(folder, ablation_manifest(list(base), [0, 1, 2]), rows, curves_for(rows))
    for row in rows:
        if row["variant"] == "full":
            write_routing(folder, row["trial_id"], seed=int(row["seed"]))
    return folder


SWEEP_SPACE = {
    "num_experts": {"type": "int", "low": 2, "high": 5},
    "top_k": {"type": "int", "low": 1, "high": "num_experts"},
    "rank": {"type": "categorical", "choices": [4, 8, 16, 32]},
    "patch_sizes": {"type": "categorical", "choices": [[1, 2, 3, 6], [1, 3, 6, 12]]},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
}
MULTI_OBJECTIVE = [{"metric": "val_mae", "mode": "min"}, {"metric": "infer_ms", "mode": "min"}]


def sweep_manifest(objective: Any = MULTI_OBJECTIVE, space: Mapping | None = SWEEP_SPACE,
                   datasets: Sequence[str] = ("METR-LA", "PEMS08")) -> dict:
    spec: dict[str, Any] = {"model": "hephaestus", "datasets": list(datasets), "objective": objective}
    if space is not None:
        spec["space"] = dict(space)
    return {"campaign": "fixture-sweep", "kind": "sweep", "spec": spec, "status": "finished",
            "datasets": {d: DATASET_FACTS.get(d, {}) for d in datasets}}


def realistic_sweep(folder: Path, trials_per_dataset: int = 30, objective: Any = MULTI_OBJECTIVE,
                    space: Mapping | None = SWEEP_SPACE) -> Path:
    """A HEPHAESTUS sweep over SWEEP_SPACE on METR-LA and PEMS08: the MAE depends mostly on lr and
    num_experts, inference time on num_experts and top_k; a few trials failed, diverged or were
    pruned (after 2 epochs, at a value they reached; one of them without val metrics in its record,
    so only its curve says what it reached). The trials start in an order unlike their ids'."""
    rng = np.random.default_rng(0)
    levels = {"METR-LA": 3.36, "PEMS08": 13.56}
    rows, unrecorded = [], []
    starts = rng.permutation(len(levels) * trials_per_dataset)
    for dataset, level in levels.items():
        for i in range(trials_per_dataset):
            experts = int(rng.integers(2, 6))
            settings = {
                "config.num_experts": experts, "config.top_k": int(rng.integers(1, experts + 1)),
                "config.rank": int(rng.choice([4, 8, 16, 32])),
                "config.patch_sizes": json.dumps([[1, 2, 3, 6], [1, 3, 6, 12]][int(rng.integers(0, 2))]),
                "config.lr": float(10 ** rng.uniform(-4, -2)), "config.dropout": float(rng.uniform(0, 0.3)),
                "config.seed": 0,
            }
            mae = level * (1 + 0.04 * (np.log10(settings["config.lr"]) + 3) ** 2 + 0.01 * abs(experts - 4)
                           + rng.normal(0, 0.004))
            status = {3: "failed", 7: "diverged", 11: "pruned", 19: "pruned"}.get(i, "ok")
            infer_ms = 10 + 4 * settings["config.top_k"] + experts + rng.normal(0, 0.3)
            row = trial_row(f"{dataset.lower()}_{i:03d}", dataset, mae, status=status, variant="full",
                            infer_ms=infer_ms if status == "ok" else math.nan,
                            started=started_at(int(starts[len(rows)])), **settings)
            if status == "pruned":
                row["val_mae"] = mae * 1.02 if i == 11 else math.nan
            if status == "pruned" and i != 11:  # its record lacks val metrics; its curve says what it reached
                unrecorded += [{"trial_id": row["trial_id"], "epoch": 1, "val_mae": mae * 1.3},
                               {"trial_id": row["trial_id"], "epoch": 2, "val_mae": mae * 1.04}]
            rows.append(row)
    write_campaign(folder, sweep_manifest(objective, space, list(levels)), rows, curves_for(rows) + unrecorded)
    for dataset in levels:
        finished = [r for r in rows if r["dataset"] == dataset and r["status"] == "ok"]
        write_routing(folder, min(finished, key=lambda r: r["val_mae"])["trial_id"])
    return folder


HEPHAESTUS_STUDY = {"num_experts": [2, 3, 4, 5], "top_k": [1, 2, 3, 4, 5], "rank": [4, 8, 16, 32]}
HEPHAESTUS_BASE = {"num_experts": 4, "top_k": 2, "rank": 16}
LIGHTST_STUDY = {"layers": [1, 2, 3, 4, 5], "batch_size": [8, 16, 32, 64, 128],
                 "lambda1": [0.1, 1.0, 10.0, 100.0], "lambda2": [0.01, 0.1, 1.0, 10.0]}
LIGHTST_BASE = {"layers": 3, "batch_size": 32, "lambda1": 10.0, "lambda2": 1.0}
H12_OVER_AVERAGE = 1.15  # a fixture's error at horizon 12 over its 12-step average


def study_manifest(model: str, vary: Mapping[str, list], base: Mapping[str, Any], datasets: Sequence[str],
                   seeds: Sequence[int], skipped: Sequence[Mapping[str, Any]] = ()) -> dict:
    return {
        "campaign": f"fixture-{model}-study", "kind": "sensitivity", "status": "finished",
        "spec": {"model": model, "datasets": list(datasets), "seeds": list(seeds),
                 "vary": {k: list(v) for k, v in vary.items()}, "base": dict(base)},
        "skipped": [dict(s) for s in skipped],
        "datasets": {d: DATASET_FACTS.get(d, {}) for d in datasets},
    }


def study_campaign(folder: Path, model: str, vary: Mapping[str, list], base: Mapping[str, Any],
                   levels: Mapping[str, float], seeds: Sequence[int] = (0, 1, 2),
                   skipped: Sequence[Mapping[str, Any]] = (), failed: Sequence[str] = ()) -> Path:
    """A one-at-a-time study as the runner writes it: a base record per (dataset, seed), shared
    by every parameter, and one record per other value. The MAE grows with the distance from
    the base on a log scale; horizon 12 is H12_OVER_AVERAGE times the 12-step average. Trials
    whose cell starts with one of `failed` failed."""
    rows = []
    skip = [(s["parameter"], s["value"]) for s in skipped]
    points = [("base", dict(base))] + [(f"{p}={json.dumps(v) if isinstance(v, list) else v}", {**base, p: v})
                                       for p, values in vary.items() for v in values if v != base[p] and (p, v) not in skip]
    for dataset, level in levels.items():
        for label, settings in points:
            for seed in seeds:
                distance = sum(_distance(settings[p], base[p]) for p in vary)
                mae = level * (1 + 0.006 * distance + 0.002 * (seed - 1))
                status = "failed" if label.startswith(tuple(failed)) and seed == seeds[-1] else "ok"
                trial_id = "".join(ch for ch in f"{dataset}_{label}_{seed}".lower().replace(".", "p")
                                   if ch.isalnum() or ch == "_")
                row = trial_row(trial_id, dataset, mae, status=status, model=model, variant="full", seed=seed,
                                cell=f"{label} | {dataset} | seed {seed}", started=started_at(len(rows)),
                                **{f"config.{k}": json.dumps(v) if isinstance(v, list) else v for k, v in settings.items()},
                                **{"config.seed": seed})
                if status == "ok":
                    row.update({f"test_{m}_h12": row[f"test_{m}"] * H12_OVER_AVERAGE for m in ("mae", "rmse", "mape")})
                rows.append(row)
    write_campaign(folder, study_manifest(model, vary, base, list(levels), seeds, skipped), rows, curves_for(rows))
    return folder


def _distance(value: Any, base: Any) -> float:
    """How far a setting is from the base: octaves for numbers, 1 for any other change."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and base > 0:
        return abs(float(np.log2(value / base)))
    return float(value != base)


def hephaestus_study(folder: Path) -> Path:
    """HEPHAESTUS Figure 3's study on METR-LA and PEMS08: top_k = 5 skipped (K > M at the base),
    one rank=32 seed failed."""
    return study_campaign(folder, "hephaestus", HEPHAESTUS_STUDY, HEPHAESTUS_BASE, {"METR-LA": 3.0, "PEMS08": 13.6},
                          skipped=[{"parameter": "top_k", "value": 5, "reason": "top_k 5 > num_experts 4 at the base"}],
                          failed=["rank=32"])


def lightst_study(folder: Path) -> Path:
    """LightST Figure 4's study on PEMS08 and PEMS03: four parameters, batch size and the loss
    weights on log axes."""
    return study_campaign(folder, "lightst", LIGHTST_STUDY, LIGHTST_BASE, {"PEMS08": 15.4, "PEMS03": 15.1})


SMOKE_SPACE = {
    "num_experts": {"type": "categorical", "choices": [2, 3, 4, 5]},
    "top_k": {"type": "int", "low": 1, "high": "num_experts"},
    "aux_weight": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
}


def smoke_sweep(folder: Path, trials: int = 12, epochs: int = 2) -> Path:
    """A short sweep as --smoke leaves one: one dataset, 12 trials of 2 epochs, lr within a single
    decade (search_spaces/hephaestus.yaml's range), half of the trials pruned after one epoch."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(trials):
        experts = int(rng.choice([2, 3, 4, 5]))
        settings = {"config.num_experts": experts, "config.top_k": int(rng.integers(1, experts + 1)),
                    "config.aux_weight": float(10 ** rng.uniform(-3, -1)),
                    "config.lr": float(10 ** rng.uniform(np.log10(3e-4), np.log10(3e-3))),
                    "config.batch_size": int(rng.choice([16, 32, 64]))}
        if i < 2:  # the first two at the ends of the space's lr range
            settings["config.lr"] = SMOKE_SPACE["lr"]["high" if i else "low"]
        pruned = i % 2 == 1
        mae = 20.0 * (1 + 0.1 * abs(np.log10(settings["config.lr"]) + 3) + rng.normal(0, 0.01))
        row = trial_row(f"t{i:02d}", "PEMS04", mae, status="pruned" if pruned else "ok", started=started_at(i), **settings)
        if pruned:
            row.update(val_mae=mae * 1.1, epochs=1)
        rows.append(row)
    manifest = sweep_manifest(objective={"metric": "val_mae", "mode": "min"}, space=SMOKE_SPACE, datasets=["PEMS04"])
    return write_campaign(folder, manifest, rows, curves_for(rows, epochs=epochs))


TABLE3_VARIANTS = {
    "Full": ("full", {}), "w/o AMS-MoE": ("wo_ams_moe", {}), "w/o PTA": ("wo_pta", {}), "w/o HSA": ("wo_hsa", {}),
    "Fixed-Scale MoE": ("fixed_scale_moe", {}), "Noisy-Routing Only": ("noisy_routing_only", {}),
}
TABLE3_LEVELS = {"METR-LA": 3.0, "PEMS-BAY": 1.65, "PEMS04": 18.3, "PEMS08": 13.6}


def table3_ablation(folder: Path, epochs: int = 3, datasets: Sequence[str] = tuple(TABLE3_LEVELS)) -> Path:
    """HEPHAESTUS Table 3 as a campaign: six variants on METR-LA, PEMS-BAY, PEMS04 and PEMS08 (or
    the given ones of them), two seeds, short curves; horizon 12 is H12_OVER_AVERAGE times the average."""
    rows = []
    for dataset, level in ((d, TABLE3_LEVELS[d]) for d in datasets):
        for k, (display, (name, _)) in enumerate(TABLE3_VARIANTS.items()):
            for seed in range(2):
                mae = level * (1 + 0.01 * k + np.random.default_rng(10 * k + seed).normal(0, 0.003))
                row = trial_row(f"{name}_{dataset}_{seed}".lower(), dataset, mae, variant=name, variant_display=display,
                                seed=seed, started=started_at(len(rows)))
                row.update({f"test_{m}_h12": row[f"test_{m}"] * H12_OVER_AVERAGE for m in ("mae", "rmse", "mape")})
                rows.append(row)
    manifest = ablation_manifest(list(datasets), [0, 1], variants=TABLE3_VARIANTS)
    return write_campaign(folder, manifest, rows, curves_for(rows, epochs=epochs))


def categorical_study(folder: Path) -> Path:
    """A study of settings that are not numbers (patch sets, attention kinds) next to a linear
    one (dropout), on one dataset."""
    vary = {"patch_sizes": [[1, 3], [1, 3, 6], [1, 2, 3, 6], [1, 2, 3, 6, 12]], "temporal_attn": ["periodic", "vanilla"],
            "dropout": [0.0, 0.1, 0.2, 0.3]}
    base = {"patch_sizes": [1, 2, 3, 6], "temporal_attn": "periodic", "dropout": 0.1}
    return study_campaign(folder, "hephaestus", vary, base, {"PEMS04": 18.2}, seeds=(0, 1))
