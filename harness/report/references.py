"""Published numbers (the papers' tables and figures) to set beside the reproduced ones.

A reference file is a CSV with REFERENCE_COLUMNS, one number per row (columns and sources in
harness/report/references/README.md). The files shipped in harness/report/references/ are read
for the campaign's model; `--references FILE` adds others, which win where both give a number
for the same thing. Names are matched loosely: datasets as `dataset_key` compares them (PEMSD8 is
PEMS08), variants by display or registry name ('w/o PTA' is 'wo_pta'), setting values by their
canonical spelling (4 is 4.0).

A published number is compared with a reproduced one only at the same horizon: where the paper
quotes another horizon than the one shown, the number is attached with its horizon and no gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UsageError
from harness.report.load import METRIC_SUFFIXES, dataset_key
from harness.report.space import canonical

REFERENCE_COLUMNS = ("model", "table", "dataset", "variant", "parameter", "value", "metric", "horizon", "number", "source")
SHIPPED_FOLDER = Path(__file__).with_name("references")
ACCURACY_METRICS = ("mae", "rmse", "mape")
# Which published horizon stands for a dataset when several are given and none is the one shown.
HORIZON_PREFERENCE = ("overall", "h12", "h6", "h3")
PUBLISHED_COLUMNS = ("published", "published_horizon", "published_table", "gap_pct")


def name_key(name: object) -> str:
    """How variant and parameter names compare: 'w/o PTA', 'wo_pta' and 'WO-PTA' are one name."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def read_references(path: Path) -> pd.DataFrame:
    """One reference file (every column as text, `number` as float); UsageError when it is not one."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not a readable reference file ({str(error).splitlines()[0]})") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in frame]
    if missing:
        raise UsageError(f"{path}: a reference file needs the column(s) {', '.join(missing)}")
    numbers = pd.to_numeric(frame["number"], errors="coerce")
    if numbers.isna().any():
        row = int(np.flatnonzero(numbers.isna())[0]) + 2  # the header is line 1
        raise UsageError(f"{path}, line {row}: number {frame['number'].iloc[row - 2]!r} is not a number")
    horizons = set(frame["horizon"]) - set(METRIC_SUFFIXES) - {""}
    if horizons:
        raise UsageError(f"{path}: unknown horizon(s) {', '.join(sorted(horizons))}; valid: {', '.join(METRIC_SUFFIXES)}")
    return frame[list(REFERENCE_COLUMNS)].assign(number=numbers.astype(float), file=Path(path).name)


def load_references(model: str, extra: Sequence[Path] = ()) -> pd.DataFrame:
    """The reference rows of `model`: the extra files' first, then the shipped files', each
    number once (the first file that gives it wins), with the match keys added."""
    files = [*extra, *sorted(SHIPPED_FOLDER.glob("*.csv"))]
    frames = [read_references(Path(f)) for f in files]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*REFERENCE_COLUMNS, "file"])
    rows = rows[rows["model"].map(name_key) == name_key(model)].copy()
    rows["dataset_key"] = rows["dataset"].map(dataset_key)
    rows["variant_key"] = rows["variant"].map(name_key)
    rows["parameter_key"] = rows["parameter"].map(name_key)
    rows["value_key"] = rows["value"].map(lambda v: canonical(v) if v else "")
    identity = ["dataset_key", "variant_key", "parameter_key", "value_key", "metric", "horizon"]
    return rows.drop_duplicates(identity, keep="first").reset_index(drop=True)


def quoted_horizon(references: pd.DataFrame, dataset: str) -> str | None:
    """The horizon the published accuracy numbers of `dataset` are quoted at (None: there are none)."""
    quoted = set(references.loc[(references["dataset_key"] == dataset_key(dataset))
                                & references["metric"].isin(ACCURACY_METRICS), "horizon"])
    return next((h for h in HORIZON_PREFERENCE if h in quoted), None)


def attach_published(points: pd.DataFrame, references: pd.DataFrame, on: Mapping[str, str]) -> pd.DataFrame:
    """`points` with PUBLISHED_COLUMNS added: the published number of each row, where there is one.

    Args:
        points: rows with dataset, measure ('MAE', ...), horizon ('overall', 'h12', ...), mean,
            and the columns named by `on`'s keys, already spelled as the reference keys are.
        references: load_references' rows.
        on: point column -> reference key column that must match too (e.g. variant_key).

    A row's published number is the one at its own horizon (gap_pct = (mean - published) /
    published in percent, positive when the reproduced error is higher); failing that, the one at
    the preferred other horizon, with published_horizon saying which and no gap.
    """
    accuracy = references[references["metric"].isin(ACCURACY_METRICS)]
    rank = {h: i for i, h in enumerate(HORIZON_PREFERENCE)}
    candidates = accuracy.assign(
        _dataset=accuracy["dataset_key"], _measure=accuracy["metric"].str.upper(), _rank=accuracy["horizon"].map(rank),
    ).rename(columns={v: k for k, v in on.items()})
    keyed = points.assign(_row=np.arange(len(points)), _dataset=points["dataset"].map(dataset_key), _measure=points["measure"])
    merged = keyed.merge(
        candidates[["_dataset", "_measure", *on, "horizon", "number", "table", "_rank"]].rename(
            columns={"horizon": "published_horizon", "number": "published", "table": "published_table"}),
        on=["_dataset", "_measure", *on], how="left",
    )
    merged["_exact"] = merged["published_horizon"] == merged["horizon"]
    merged = merged.sort_values(["_row", "_exact", "_rank"], ascending=[True, False, True]).drop_duplicates("_row")
    merged["gap_pct"] = np.where(merged["_exact"], (merged["mean"] - merged["published"]) / merged["published"] * 100.0, np.nan)
    merged[["published_horizon", "published_table"]] = merged[["published_horizon", "published_table"]].fillna("")
    merged.index = points.index
    return merged.drop(columns=["_row", "_dataset", "_measure", "_rank", "_exact"])


def variant_keys(trials: pd.DataFrame, references: pd.DataFrame) -> dict[str, str]:
    """Each variant display name -> the reference key it matches (its registry name's or its own)."""
    known = set(references["variant_key"])
    keys = {}
    for display, group in trials.groupby("variant_display", sort=False):
        registry = [name_key(v) for v in group["variant"].dropna().unique()]
        keys[str(display)] = next((k for k in registry if k in known), name_key(display))
    return keys
