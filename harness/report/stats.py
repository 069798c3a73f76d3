"""The numbers behind the tables and figures: ablation cells (mean, std, change against the
reference, paired test over seeds), Pareto dominance, and a kernel-smoothed trend.

Significance is a two-sided paired t-test (scipy.stats.ttest_rel) over the seeds that both the
variant and the reference finished on the same dataset. With fewer than two such seeds there is
no test (and no mark); a Wilcoxon signed-rank test is not used because with the 3-5 seeds of an
ablation it cannot reach p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
TEST_NAME = "two-sided paired t-test over seeds"


@dataclass(frozen=True)
class PairedTest:
    """The outcome of comparing a variant with the reference on one dataset and measure."""

    n_pairs: int
    p_value: float  # NaN when no test was possible
    reason: str  # why there is no test; empty when there is one

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_value) and self.p_value < ALPHA


def seed_key(trials: pd.DataFrame) -> pd.Series:
    """What pairs trials across variants: their seed; a trial without a seed pairs with nothing."""
    return pd.Series(
        [f"trial {tid}" if pd.isna(seed) else f"seed {int(seed)}" for tid, seed in zip(trials["trial_id"], trials["seed"])],
        index=trials.index,
        dtype=object,
    )


def per_seed(trials: pd.DataFrame, column: str) -> pd.Series:
    """The finite values of `column`, one per seed (repeated runs of a seed are averaged)."""
    values = trials[[column]].assign(key=seed_key(trials)).dropna(subset=[column])
    return values.groupby("key")[column].mean()


def paired_t_test(variant: pd.Series, reference: pd.Series) -> PairedTest:
    """Paired t-test of two per-seed series over the seeds they share."""
    common = variant.index.intersection(reference.index)
    n_pairs = len(common)
    if n_pairs < 2:
        return PairedTest(n_pairs, math.nan, "fewer than two seeds are shared with the reference")
    differences = (variant[common] - reference[common]).to_numpy()
    if np.ptp(differences) == 0:
        return PairedTest(n_pairs, math.nan, "the difference is the same on every seed (t is undefined)")
    return PairedTest(n_pairs, float(stats.ttest_rel(variant[common], reference[common]).pvalue), "")


def ablation_cells(
    ok: pd.DataFrame,
    variants: Sequence[str],
    columns: Mapping[str, Mapping[str, str]],
    reference: str | None,
) -> pd.DataFrame:
    """One row per (variant, dataset, measure) of the finished trials `ok`.

    `columns` maps each dataset (in order) to its test columns ({"MAE": "test_mae_h12", ...}).
    Columns: variant, dataset, measure, column, n (seeds), mean, std (sample std, NaN below two
    seeds), change_pct (relative change of the mean against the reference's, in percent),
    n_pairs, p_value, significant (p < ALPHA), test_note (why there is no test), best (lowest
    mean of its dataset and measure).
    """
    rows = []
    for dataset, dataset_columns in columns.items():
        in_dataset = ok[ok["dataset"] == dataset]
        for measure, column in dataset_columns.items():
            values = {v: per_seed(in_dataset[in_dataset["variant_display"] == v], column) for v in variants}
            reference_values = values.get(reference) if reference is not None else None
            reference_mean = reference_values.mean() if reference_values is not None and len(reference_values) else math.nan
            for variant, seeds in values.items():
                mean = float(seeds.mean()) if len(seeds) else math.nan
                if variant == reference or reference_values is None:
                    test = PairedTest(0, math.nan, "it is the reference" if variant == reference else "there is no reference variant")
                else:
                    test = paired_t_test(seeds, reference_values)
                rows.append({
                    "variant": variant, "dataset": dataset, "measure": measure, "column": column,
                    "n": len(seeds), "mean": mean,
                    "std": float(seeds.std(ddof=1)) if len(seeds) >= 2 else math.nan,
                    "change_pct": _relative_change(mean, reference_mean) if variant != reference else math.nan,
                    "n_pairs": test.n_pairs, "p_value": test.p_value, "significant": test.significant,
                    "test_note": test.reason,
                })
    cells = pd.DataFrame(rows, columns=[
        "variant", "dataset", "measure", "column", "n", "mean", "std", "change_pct",
        "n_pairs", "p_value", "significant", "test_note",
    ])
    lowest = cells.groupby(["dataset", "measure"])["mean"].transform("min")
    cells["best"] = cells["mean"].notna() & (cells["mean"] == lowest)
    return cells


def _relative_change(value: float, reference: float) -> float:
    """(value - reference) / reference in percent; NaN when either is missing or reference is 0."""
    if math.isnan(value) or math.isnan(reference) or reference == 0:
        return math.nan
    return (value - reference) / abs(reference) * 100.0


def non_dominated(values: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the rows of `values` (trials x objectives) that no other row dominates."""
    signed = np.where(np.asarray(maximise), -values, values)  # everything to minimise
    n = len(signed)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = np.all(signed <= signed[i], axis=1)
        better = np.any(signed < signed[i], axis=1)
        mask[i] = not np.any(no_worse & better)
    return mask


def kernel_trend(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Nadaraya-Watson (Gaussian kernel, Silverman bandwidth) smooth of y(x) on `grid`.

    None when x has fewer than four distinct values (too few to draw a trend through).
    """
    if len(np.unique(x)) < 4:
        return None
    spread = min(np.std(x), stats.iqr(x) / 1.34) or np.std(x)
    bandwidth = 1.06 * spread * len(x) ** -0.2
    weights = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / bandwidth) ** 2)
    return (weights @ y) / weights.sum(axis=1)
