"""Masked forecasting metrics under the BasicTS conventions (shared/specs/protocol.md).

A reading equal to the null value (0.0) is missing and excluded: mask = |y - null| > 5e-5.
Evaluation metrics are pooled exactly over a whole split by accumulating sums, never as a mean
of batch means. MAPE is in percent. A split with no valid reading has undefined metrics (NaN).
"""

from __future__ import annotations

import math

import torch

from harness.records import REPORTED_HORIZONS, horizon_key

NULL_VALUE = 0.0
MASK_TOLERANCE = 5e-5


def valid_mask(target: torch.Tensor, null_value: float = NULL_VALUE) -> torch.Tensor:
    """1.0 where the target is a real reading, 0.0 where it equals the null value."""
    return ((target - null_value).abs() > MASK_TOLERANCE).to(target.dtype)


def _masked_mean(errors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # With no valid reading the loss is 0 (and so is its gradient), not NaN.
    return (errors * mask).sum() / mask.sum().clamp_min(1.0)


def masked_mae(prediction: torch.Tensor, target: torch.Tensor, null_value: float = NULL_VALUE) -> torch.Tensor:
    """Mean absolute error over valid readings (the training loss)."""
    return _masked_mean((prediction - target).abs(), valid_mask(target, null_value))


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, null_value: float = NULL_VALUE) -> torch.Tensor:
    """Mean squared error over valid readings."""
    return _masked_mean((prediction - target) ** 2, valid_mask(target, null_value))


SUPERVISED_LOSSES = {"masked_mae": masked_mae, "masked_mse": masked_mse}


class MetricAccumulator:
    """Pools MAE / RMSE / MAPE over any number of batches, per horizon step.

    update() takes de-normalised (B, F, N) predictions and targets; result() returns
    {"overall": {...}, "horizon_1": {...}, ..., "horizon_F": {...}} with keys mae, rmse, mape.
    """

    def __init__(self, horizon: int, null_value: float = NULL_VALUE):
        self.horizon = horizon
        self.null_value = null_value
        self.abs_sum = torch.zeros(horizon, dtype=torch.float64)
        self.sq_sum = torch.zeros(horizon, dtype=torch.float64)
        self.pct_sum = torch.zeros(horizon, dtype=torch.float64)
        self.count = torch.zeros(horizon, dtype=torch.float64)

    @torch.no_grad()
    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch; prediction and target are (B, F, N) in raw units."""
        if prediction.shape != target.shape or prediction.shape[1] != self.horizon:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must both be (B, {self.horizon}, N)")
        p, y = prediction.double(), target.double()
        mask = valid_mask(y, self.null_value)
        err = (p - y).abs() * mask
        dims = (0, 2)
        self.abs_sum += err.sum(dims).cpu()
        self.sq_sum += (err**2).sum(dims).cpu()
        self.pct_sum += (err / y.abs().clamp_min(MASK_TOLERANCE)).sum(dims).cpu()
        self.count += mask.sum(dims).cpu()

    @staticmethod
    def _summary(abs_sum: float, sq_sum: float, pct_sum: float, count: float) -> dict[str, float]:
        if count == 0:
            return {"mae": math.nan, "rmse": math.nan, "mape": math.nan}
        return {"mae": abs_sum / count, "rmse": math.sqrt(sq_sum / count), "mape": 100.0 * pct_sum / count}

    def result(self) -> dict[str, dict[str, float]]:
        """Pooled metrics overall and for each horizon step (1-based)."""
        out = {"overall": self._summary(self.abs_sum.sum().item(), self.sq_sum.sum().item(), self.pct_sum.sum().item(), self.count.sum().item())}
        for h in range(self.horizon):
            out[f"horizon_{h + 1}"] = self._summary(self.abs_sum[h].item(), self.sq_sum[h].item(), self.pct_sum[h].item(), self.count[h].item())
        return out


def table_view(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The subset the papers' tables quote, keyed as trial records are: "overall", "h3", "h6", "h12"."""
    view = {horizon_key(None): metrics["overall"]}
    view.update({horizon_key(h): metrics[f"horizon_{h}"] for h in REPORTED_HORIZONS if f"horizon_{h}" in metrics})
    return view
