"""Masked metrics: hand-computed cases, pooling over a whole split, missing readings."""

import math

import pytest
import torch

from harness.metrics import MetricAccumulator, masked_mae, masked_mse, table_view


def test_masked_mae_ignores_missing_readings():
    target = torch.tensor([[10.0, 0.0, 20.0]])
    prediction = torch.tensor([[12.0, 99.0, 17.0]])
    assert masked_mae(prediction, target).item() == pytest.approx((2 + 3) / 2)
    assert masked_mse(prediction, target).item() == pytest.approx((4 + 9) / 2)


def test_all_missing_batch_gives_zero_loss_and_finite_gradient():
    target = torch.zeros(2, 3)
    prediction = torch.ones(2, 3, requires_grad=True)
    loss = masked_mae(prediction, target)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(prediction.grad).all()


def test_accumulator_matches_hand_computed_metrics_per_horizon():
    # one sample, horizon 2, two nodes; node 1 at step 2 is missing.
    target = torch.tensor([[[10.0, 20.0], [40.0, 0.0]]])
    prediction = torch.tensor([[[11.0, 18.0], [36.0, 5.0]]])
    acc = MetricAccumulator(horizon=2)
    acc.update(prediction, target)
    out = acc.result()
    # errors 1, 2, 4 over valid readings; relative errors 0.1, 0.1, 0.1
    assert out["overall"]["mae"] == pytest.approx(7 / 3)
    assert out["overall"]["rmse"] == pytest.approx(math.sqrt((1 + 4 + 16) / 3))
    assert out["overall"]["mape"] == pytest.approx(10.0)
    assert out["horizon_1"]["mae"] == pytest.approx(1.5)
    assert out["horizon_2"]["mae"] == pytest.approx(4.0)
    assert out["horizon_2"]["rmse"] == pytest.approx(4.0)


def test_pooled_over_split_equals_one_big_batch_not_mean_of_batch_means():
    torch.manual_seed(0)
    target = torch.rand(10, 12, 5) * 100
    target[target < 20] = 0.0  # some missing readings, unevenly spread over batches
    prediction = target + torch.randn_like(target) * 5
    whole = MetricAccumulator(12)
    whole.update(prediction, target)
    batched = MetricAccumulator(12)
    batch_means = []
    for start in (0, 3, 4, 9):
        end = {0: 3, 3: 4, 4: 9, 9: 10}[start]
        batched.update(prediction[start:end], target[start:end])
        batch_means.append(masked_mae(prediction[start:end], target[start:end]).item())
    for key in ("overall", "horizon_3", "horizon_12"):
        for metric in ("mae", "rmse", "mape"):
            assert batched.result()[key][metric] == pytest.approx(whole.result()[key][metric], rel=1e-9)
    assert whole.result()["overall"]["mae"] == pytest.approx(masked_mae(prediction, target).item(), rel=1e-5)
    assert sum(batch_means) / len(batch_means) != pytest.approx(whole.result()["overall"]["mae"], rel=1e-6)


def test_all_masked_split_reports_nan_not_zero():
    acc = MetricAccumulator(3)
    acc.update(torch.ones(4, 3, 2), torch.zeros(4, 3, 2))
    result = acc.result()
    assert all(math.isnan(v) for v in result["overall"].values())


def test_accumulator_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        MetricAccumulator(12).update(torch.zeros(2, 12, 3), torch.zeros(2, 12, 4))


def test_table_view_keeps_overall_and_horizons_3_6_12():
    acc = MetricAccumulator(12)
    acc.update(torch.ones(1, 12, 1), torch.full((1, 12, 1), 2.0))
    assert list(table_view(acc.result())) == ["overall", "h3", "h6", "h12"]
