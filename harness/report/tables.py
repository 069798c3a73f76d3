"""The report's tables: the ablation table (HEPHAESTUS Table 3 layout), the efficiency table
(HEPHAESTUS Table 4, with LightST's speed-up over its teacher), a sweep's best trials and Pareto
set, and the list of trials that did not finish.

Each function is a report section: it writes its files into ctx.out and returns their entries,
or raises Skipped with the reason it has nothing to show.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.report.context import Entry, ReportContext, Skipped
from harness.report.load import (
    MEASURES,
    METRIC_DESCRIPTIONS,
    PAPER_METRIC,
    STATUS_OK,
    Campaign,
    column_horizon,
    column_label,
    dataset_key,
    rank,
)
from harness.report.oat_points import setting_label
from harness.report.references import attach_published, variant_keys
from harness.report.render import (
    MISSING,
    SIGNIFICANCE_MARK,
    Cell,
    Table,
    decimals_of,
    format_number,
    signed_percent,
    write_table,
)
from harness.report.space import searched_space
from harness.report.stats import ALPHA, TEST_NAME, ablation_cells, non_dominated

MEASURE_LABELS = {"MAE": "MAE", "RMSE": "RMSE", "MAPE": "MAPE (%)"}
HORIZON_LABELS = {"overall": "average", "h3": "horizon 3", "h6": "horizon 6", "h12": "horizon 12"}


def ablation_numbers(ctx: ReportContext) -> pd.DataFrame:
    """ablation_cells of the finished trials, each dataset at its shown horizon, with the
    published numbers (PUBLISHED_COLUMNS) attached; Skipped when no trial finished."""
    campaign = ctx.campaign
    if campaign.ok.empty:
        raise Skipped("no trial finished")
    columns = {d: ctx.columns(d) for d in campaign.datasets()}
    cells = ablation_cells(campaign.ok, campaign.variants(), columns, ctx.reference)
    cells["horizon"] = cells["column"].map(column_horizon)
    references = ctx.references[ctx.references["parameter"] == ""]  # not a sensitivity study's points
    cells["variant_key"] = cells["variant"].map(variant_keys(campaign.trials, references))
    return attach_published(cells, references, {"variant_key": "variant_key"})


def ablation_table(ctx: ReportContext) -> list[Entry]:
    """Rows: variants (spec order), each followed by its published numbers where the paper has
    them; columns: datasets x MAE / RMSE / MAPE; mean ± std, change, mark."""
    campaign = ctx.campaign
    cells = ablation_numbers(ctx)
    variants, datasets = campaign.variants(), campaign.datasets()
    by_key = cells.set_index(["variant", "dataset", "measure"])
    rows = []
    for variant in variants:
        label = f"{variant} (reference)" if variant == ctx.reference else variant
        rows.append([label] + [_ablation_cell(by_key.loc[(variant, d, m)]) for d in datasets for m in MEASURES])
        published = cells[(cells["variant"] == variant) & cells["published"].notna()]
        if len(published):
            tables = ", ".join(dict.fromkeys(published["published_table"]))
            rows.append([f"{variant}: published ({tables})"]
                        + [_published_cell(by_key.loc[(variant, d, m)]) for d in datasets for m in MEASURES])
    mixed = ctx.mixed_horizons(datasets)
    table = Table(
        title=f"Ablation of {campaign.model}: test {' / '.join(MEASURES)}, {ctx.metric_description()}",
        columns=["Variant"] + [MEASURE_LABELS[m] for _ in datasets for m in MEASURES],
        rows=rows,
        notes=_ablation_notes(ctx, cells),
        groups=[(f"{d} ({HORIZON_LABELS[ctx.horizon(d)]})" if mixed else d, len(MEASURES)) for d in datasets],
    )
    files = write_table(ctx.out, "ablation", table, cells.drop(columns="variant_key"))
    caption = (f"variants x datasets, mean ± std over seeds, change against {ctx.reference or 'no reference'}, "
               f"{SIGNIFICANCE_MARK} = p < {ALPHA} ({TEST_NAME})")
    if cells["published"].notna().any():
        caption += ", published numbers with the gap to them"
    return [Entry("tables", "Ablation table", files, caption)]


def _ablation_cell(row: pd.Series) -> Cell:
    """'mean' (bold when best) then '± std (+x.x%)' and the significance mark."""
    detail = []
    if row["n"] >= 2:
        detail.append(f"± {format_number(row['std'], decimals_of(row['mean']))}")
    if pd.notna(row["change_pct"]):
        detail.append(f"({signed_percent(row['change_pct'])})")
    return Cell(format_number(row["mean"]), " ".join(detail), bold=bool(row["best"]), mark=bool(row["significant"]))


def _published_cell(row: pd.Series) -> Cell:
    """The published number, then the gap of the reproduced mean to it, or the other horizon it is at."""
    if pd.isna(row["published"]):
        return Cell(MISSING)
    if pd.notna(row["gap_pct"]):
        return Cell(format_number(row["published"]), f"({signed_percent(row['gap_pct'])})")
    if row["published_horizon"] != row["horizon"]:
        return Cell(format_number(row["published"]), f"(at {HORIZON_LABELS[row['published_horizon']]})")
    return Cell(format_number(row["published"]))


def _ablation_notes(ctx: ReportContext, cells: pd.DataFrame) -> list[str]:
    """Footnotes: what the numbers are, which test with how many seeds, and what is missing."""
    reference = ctx.reference
    notes = [
        "Mean ± sample std over seeds of the finished trials; in parentheses the change of the mean "
        f"against the reference variant {reference} (positive: a higher error); bold: the lowest mean of each column."
        if reference else "Mean ± sample std over seeds of the finished trials; bold: the lowest mean of each column. "
        "No reference variant: no change and no test.",
    ]
    compared = cells[(cells["variant"] != reference) & cells["n"].gt(0)]
    tested = compared[compared["test_note"] == ""]
    if not tested.empty:
        low, high = int(tested["n_pairs"].min()), int(tested["n_pairs"].max())
        n_text = f"n = {low} seeds" if low == high else f"n = {low} to {high} seeds, per cell in ablation.csv"
        notes.append(f"{SIGNIFICANCE_MARK} p < {ALPHA} in a {TEST_NAME} matched by dataset and seed "
                     f"(scipy.stats.ttest_rel, {n_text}; not corrected for multiple comparisons).")
    if len(compared) > len(tested):
        reasons = sorted(set(compared.loc[compared["test_note"] != "", "test_note"]))
        notes.append(f"No test where {'; '.join(reasons)}.")
    if reference and cells.loc[cells["variant"] == reference, "n"].eq(0).all():
        notes.append(f"The reference variant {reference} has no finished trial: no change and no test.")
    if cells["n"].eq(1).any():
        notes.append("A mean over one seed has no std and no test.")
    if cells["n"].eq(0).any():
        notes.append(f"{MISSING}: no finished trial.")
    notes += published_notes(ctx, cells)
    notes += _unfinished_notes(ctx.campaign)
    return notes


def published_notes(ctx: ReportContext, numbers: pd.DataFrame) -> list[str]:
    """What the published numbers are, and where they are at another horizon than the one shown."""
    published = numbers[numbers["published"].notna()]
    if published.empty:
        return []
    sources = "; ".join(dict.fromkeys(ctx.references.loc[ctx.references["table"].isin(published["published_table"]), "source"]))
    notes = [f"Published: the paper's numbers ({sources}); in parentheses the gap of the reproduced mean to them, "
             "(reproduced - published) / published (positive: a higher error here)."]
    elsewhere = published[published["published_horizon"] != published["horizon"]]
    for dataset, group in elsewhere.groupby("dataset", sort=False):
        quoted, shown = group["published_horizon"].iloc[0], group["horizon"].iloc[0]
        notes.append(f"{dataset}: the published numbers are at {METRIC_DESCRIPTIONS[quoted]}, the reproduced ones "
                     f"shown at {METRIC_DESCRIPTIONS[shown]}: not compared (--metric {PAPER_METRIC} or {quoted} compares them).")
    return notes


def _unfinished_notes(campaign: Campaign) -> list[str]:
    """'w/o PTA on PEMS04: 2 of 3 trials finished (1 failed)' for every incomplete cell."""
    notes = []
    for (variant, dataset), group in campaign.trials.groupby(["variant_display", "dataset"], sort=False):
        counts = group["status"].value_counts()
        finished = int(counts.get(STATUS_OK, 0))
        if finished < len(group):
            others = ", ".join(f"{n} {status}" for status, n in counts.items() if status != STATUS_OK)
            notes.append(f"{variant} on {dataset}: {finished} of {len(group)} trials finished ({others}); see failures.md.")
    return notes


COST_COLUMNS = {
    "parameters": "#Params",
    "train_ms_per_iter": "Train (ms/iter)",
    "epoch_s": "Epoch (s)",
    "infer_ms": "Inference (ms/batch)",
    "peak_mem_mb": "Peak memory (MB)",
}


def efficiency_table(ctx: ReportContext) -> list[Entry]:
    """Parameters, train ms/iter, inference ms/batch and peak memory per (dataset, variant, best
    trial or setting), with the published costs of the campaign's datasets under them."""
    campaign = ctx.campaign
    groups = _efficiency_groups(ctx)
    if not groups:
        raise Skipped("no trial finished")
    epoch_s = _mean_epoch_seconds(campaign)
    records = []
    for dataset, label, trials in groups:
        records.append({
            "dataset": dataset, "row": label, "n": len(trials),
            "parameters": trials["parameters"].mean(),
            "train_ms_per_iter": trials["train_s_per_iter"].mean() * 1000.0,
            "epoch_s": trials["trial_id"].map(epoch_s).mean(),
            "infer_ms": trials["infer_ms"].mean(),
            "peak_mem_mb": trials["peak_mem_mb"].mean(),
            "is_reference": bool(_is_speed_reference(trials, campaign.speed_reference).any()),
        })
    numbers = pd.DataFrame(records)
    if numbers[list(COST_COLUMNS)].isna().all().all():
        raise Skipped("no finished trial recorded its cost (parameters, timings, memory)")
    row_kind = {"ablation": "Variant", "sensitivity": "Setting"}.get(campaign.kind, "Trial")
    columns = ["Dataset", row_kind, "n", *COST_COLUMNS.values()]
    with_speedup = _add_speedup(ctx, numbers)
    reference = campaign.speed_reference
    if with_speedup:
        columns.append(f"Speed-up vs {reference}")
    published = _published_costs(ctx)
    numbers = _interleave(numbers, published, campaign.datasets())
    rows = []
    for record in numbers.to_dict("records"):
        row = [record["dataset"], record["row"], MISSING if pd.isna(record["n"]) else str(int(record["n"])),
               _format_parameters(record["parameters"])]
        row += [format_number(record[c], 1) for c in ("train_ms_per_iter", "epoch_s", "infer_ms")]
        row.append(format_number(record["peak_mem_mb"], 0))
        if with_speedup:
            row.append(f"({reference})" if record["is_reference"] else
                       MISSING if pd.isna(record["speedup"]) else f"{record['speedup']:.1f}×")
        rows.append(row)
    devices = sorted(set(campaign.ok.get("device", pd.Series(dtype=object)).dropna().astype(str)) - {""})
    notes = [
        "Mean over the n finished trials of each row. Train: seconds per optimiser step x 1000; epoch: mean epoch_s of "
        "curves.csv; inference: one forward pass of a training-size batch (median of 5 passes); peak memory: the trial's "
        "own peak (CUDA allocator peak on a GPU; on a CPU, the rise of the process's peak resident set over its level at "
        f"the trial's start) (device: {', '.join(devices) or 'not recorded'}).",
    ]
    if with_speedup:
        notes.append(f"Speed-up vs {reference}: the {reference} variant's mean inference time over the row's, on the same dataset.")
    if len(published):
        sources = "; ".join(dict.fromkeys(published["source"]))
        notes.append(f"Published rows: as the paper measured them ({sources}); its batch size and device may differ "
                     "from this campaign's, so only the parameter count compares directly.")
    title = f"Efficiency of {campaign.model}" + (" (best trial per dataset)" if campaign.kind == "sweep" else "")
    files = write_table(ctx.out, "efficiency", Table(title, columns, rows, notes, stub=2), numbers.drop(columns="is_reference"))
    caption = "parameters, train ms/iteration, inference ms/batch, peak memory" + (f", speed-up over {reference}" if with_speedup else "")
    if len(published):
        caption += ", and the published costs"
    return [Entry("tables", "Efficiency table", files, caption)]


def _efficiency_groups(ctx: ReportContext) -> list[tuple[str, str, pd.DataFrame]]:
    """(dataset, row label, finished trials) per row: variants for ablations, the best trial for
    sweeps, each setting (and the base) for sensitivity studies."""
    campaign = ctx.campaign
    ok = campaign.ok
    groups = []
    for dataset in campaign.datasets():
        in_dataset = ok[ok["dataset"] == dataset]
        if campaign.kind == "sweep":
            best = rank(in_dataset, ctx.selection(dataset)).head(1)
            groups += [(dataset, str(best["trial_id"].iloc[0]), best)] if len(best) else []
            continue
        labels = in_dataset["cell"].map(setting_label) if campaign.kind == "sensitivity" else in_dataset["variant_display"]
        order = list(dict.fromkeys(labels)) if campaign.kind == "sensitivity" else campaign.variants()
        groups += [(dataset, label, in_dataset[labels == label]) for label in order if (labels == label).any()]
    return groups


def _published_costs(ctx: ReportContext) -> pd.DataFrame:
    """One row per (dataset, variant, table) of the published costs of the campaign's datasets."""
    datasets = {dataset_key(d): d for d in ctx.campaign.datasets()}
    costs = ctx.references[ctx.references["metric"].isin(COST_COLUMNS) & ctx.references["dataset_key"].isin(datasets)]
    rows = []
    for (key, variant, table), group in costs.groupby(["dataset_key", "variant", "table"], sort=False):
        rows.append({"dataset": datasets[key], "row": f"published: {variant} ({table})", "n": math.nan,
                     **dict(zip(group["metric"], group["number"])), "is_reference": False, "source": group["source"].iloc[0]})
    return pd.DataFrame(rows, columns=["dataset", "row", "n", *COST_COLUMNS, "is_reference", "source"])


def _interleave(numbers: pd.DataFrame, published: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """The measured rows with each dataset's published rows after its own."""
    if published.empty:
        return numbers
    both = pd.concat([numbers, published.drop(columns="source")], ignore_index=True)
    order = {d: i for i, d in enumerate(datasets)}
    return both.sort_values("dataset", key=lambda column: column.map(order), kind="stable").reset_index(drop=True)


def _mean_epoch_seconds(campaign: Campaign) -> pd.Series:
    """Each trial's mean seconds per epoch from curves.csv (empty when it has no epoch_s)."""
    curves = campaign.curves
    if curves is None or "epoch_s" not in curves:
        return pd.Series(dtype=float)
    return pd.to_numeric(curves["epoch_s"], errors="coerce").groupby(curves["trial_id"]).mean()


def _is_speed_reference(trials: pd.DataFrame, reference: str | None) -> pd.Series:
    variant = trials.get("config.variant", trials["variant"]).fillna(trials["variant"])
    return variant.astype(str) == str(reference)


def _add_speedup(ctx: ReportContext, numbers: pd.DataFrame) -> bool:
    """Add the speed-up column (the model's speed-reference variant's infer_ms / the row's, e.g.
    LightST's teacher over its student); False when the model names no reference."""
    reference = ctx.campaign.speed_reference
    if not reference or ctx.campaign.kind != "ablation":
        return False
    if not numbers["is_reference"].any():
        ctx.note(f"speed-up over the {reference} variant: the campaign has no finished {reference!r} variant")
        return False
    reference_ms = numbers[numbers["is_reference"]].groupby("dataset")["infer_ms"].mean()
    numbers["speedup"] = numbers["dataset"].map(reference_ms) / numbers["infer_ms"]
    numbers.loc[numbers["is_reference"], "speedup"] = float("nan")
    return True


def _format_parameters(count: float) -> str:
    if pd.isna(count):
        return MISSING
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}K"


def best_trials_table(ctx: ReportContext) -> list[Entry]:
    """A sweep's best trial per dataset: its objective(s), test metrics and hyperparameters."""
    campaign = ctx.campaign
    objective = campaign.objectives()[0]
    best = [rank(campaign.ok[campaign.ok["dataset"] == d], objective).head(1) for d in campaign.datasets()]
    best = [b for b in best if len(b)]
    if not best:
        raise Skipped(f"no finished trial has a value of {objective.metric}")
    frame = pd.concat(best)
    table, numbers = _trial_listing(ctx, frame, f"Best trial per dataset by {objective.metric} ({objective.mode})")
    files = write_table(ctx.out, "best_trials", table, numbers, latex=False)
    return [Entry("tables", "Best trials", files, f"the best trial of each dataset by {objective.metric}, with its settings")]


def pareto_table(ctx: ReportContext) -> list[Entry]:
    """The non-dominated trials of a multi-objective sweep, per dataset."""
    trials = pareto_trials(ctx)
    frame = trials[trials["pareto"]]
    names = " vs ".join(o.metric for o in ctx.campaign.objectives())
    table, numbers = _trial_listing(ctx, frame, f"Pareto-optimal trials ({names})")
    files = write_table(ctx.out, "pareto", table, numbers, latex=False)
    return [Entry("tables", "Pareto set", files, f"the non-dominated trials over {names}, per dataset")]


def pareto_trials(ctx: ReportContext) -> pd.DataFrame:
    """Finished trials with every objective, plus a boolean column 'pareto'; Skipped if not multi-objective."""
    campaign = ctx.campaign
    objectives = campaign.objectives()
    if len(objectives) < 2:
        raise Skipped("the sweep has one objective")
    missing = [o.metric for o in objectives if o.metric not in campaign.ok]
    if missing:
        raise Skipped(f"trials.csv has no column {', '.join(missing)}")
    columns = [o.metric for o in objectives]
    finished = campaign.ok.dropna(subset=columns)
    if finished.empty:
        raise Skipped("no finished trial has every objective")
    parts = []
    for _, group in finished.groupby("dataset", sort=False):
        mask = non_dominated(group[columns].to_numpy(dtype=float), [o.maximise for o in objectives])
        parts.append(group.assign(pareto=mask))
    return pd.concat(parts).sort_values(["dataset", columns[0]], kind="stable")


def _trial_listing(ctx: ReportContext, frame: pd.DataFrame, title: str) -> tuple[Table, pd.DataFrame]:
    """A table of trials (dataset, id, objectives, test metrics, hyperparameters) and its numbers."""
    objectives = [o.metric for o in ctx.campaign.objectives()]
    shown = [c for d in dict.fromkeys(frame["dataset"]) for c in ctx.columns(d).values()]
    metrics = [m for m in dict.fromkeys(objectives + shown) if m in frame]
    params = [p for p in searched_space(ctx.campaign)[0] if p.column in frame]
    columns = ["Dataset", "Trial", *(column_label(m) for m in metrics), *(p.name for p in params)]
    rows = []
    for record in frame.to_dict("records"):
        rows.append([str(record["dataset"]), str(record["trial_id"])]
                    + [format_number(record[m]) for m in metrics]
                    + [_format_setting(record[p.column]) for p in params])
    numbers = frame[["dataset", "trial_id", *metrics, *(p.column for p in params)]]
    return Table(title, columns, rows, stub=2), numbers


def _format_setting(value: object) -> str:
    if isinstance(value, float):
        return MISSING if pd.isna(value) else f"{value:.4g}"
    return str(value)


def failures_table(ctx: ReportContext) -> list[Entry]:
    """Every trial that did not finish (failed, diverged, pruned), with its reason."""
    unfinished = ctx.campaign.unfinished
    if unfinished.empty:
        return []
    point = ("cell", "Cell") if ctx.campaign.kind == "sensitivity" else ("variant_display", "Variant")
    columns = ["trial_id", "dataset", point[0], "seed", "status", "error", "epochs", "val_mae"]
    rows = [[_format_setting(record[c]) if c != "val_mae" else format_number(record[c]) for c in columns]
            for record in unfinished[columns].to_dict("records")]
    counts = ", ".join(f"{n} {status}" for status, n in unfinished["status"].value_counts().items())
    title = f"Trials that did not finish: {counts} of {len(ctx.campaign.trials)}"
    table = Table(title, ["Trial", "Dataset", point[1], "Seed", "Status", "Reason", "Epochs", "Val MAE reached"], rows,
                  notes=["They are left out of every mean; they are listed here so that none is dropped silently."], stub=6)
    files = write_table(ctx.out, "failures", table, unfinished[columns], latex=False)
    return [Entry("tables", "Unfinished trials", files, f"{counts}: each with its status and reason")]
