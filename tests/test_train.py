"""The training loop: determinism, early stopping, divergence (NaN/inf, finite blow-ups), auxiliary losses, resume."""

import math

import numpy as np
import pytest
import torch

from harness.data import generate_synthetic, prepare
from harness.experiment import run_planned
from harness.plan import plan_run
from harness.loop import MeanForecast, TrainConfig, TrainState, evaluate, fit, mean_forecast_mae
from models import build_model
from models.base import ConfigError, ForecastModel, ModelOutput


@pytest.fixture(scope="module")
def data():
    return prepare(generate_synthetic(num_nodes=10, num_steps=288 * 8, seed=3))


def quick(**changes) -> TrainConfig:
    settings = dict(lr=2e-3, batch_size=32, max_epochs=2, patience=5, seed=0, device="cpu", max_batches_per_epoch=12)
    settings.update(changes)
    return TrainConfig(**settings)


SETTINGS = dict(max_epochs=2, max_batches_per_epoch=12, device="cpu")


def test_two_runs_with_the_same_seed_give_identical_metrics(data):
    first = run_planned(plan_run("stid", {**SETTINGS, "seed": 4}), data).fields
    second = run_planned(plan_run("stid", {**SETTINGS, "seed": 4}), data).fields
    assert first["test"] == second["test"] and first["val"] == second["val"]


def test_different_seeds_give_different_models(data):
    first = run_planned(plan_run("stid", {**SETTINGS, "seed": 0}), data).fields
    second = run_planned(plan_run("stid", {**SETTINGS, "seed": 1}), data).fields
    assert first["test"]["overall"]["mae"] != second["test"]["overall"]["mae"]


def test_the_recorded_validation_metrics_are_the_best_epochs_and_those_of_the_final_weights(data):
    run = run_planned(plan_run("stid", {**SETTINGS, "max_epochs": 5, "lr": 2e-2}), data)
    assert run.fit.best_epoch < run.fit.epochs  # a later epoch was worse: the best is not the last
    best = run.fit.history[run.fit.best_epoch - 1]
    assert run.fields["val"] == {"mae": best["val_mae"], "rmse": best["val_rmse"], "mape": best["val_mape"]}
    again = evaluate(run.model, data, "val", quick())["overall"]
    assert again == pytest.approx(run.fields["val"], rel=1e-6)


def test_best_weights_are_restored_after_training(data):
    torch.manual_seed(0)  # the initial weights, whatever ran before
    model = build_model("stid", data.meta())
    result = fit(model, data, quick(max_epochs=4, lr=2e-2))
    assert result.status == "ok"
    assert evaluate(model, data, "val", quick())["overall"]["mae"] == pytest.approx(result.best_val_mae, rel=1e-6)
    assert result.best_val_mae == min(r["val_mae"] for r in result.history)


def test_early_stopping_stops_after_patience_epochs_without_improvement(data):
    model = build_model("persistence", data.meta())  # constant: never improves after epoch 1

    class Constant(ForecastModel):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(()))

        def forward(self, history):
            # the gradient is zero: validation MAE never changes after the first epoch
            return ModelOutput(prediction=model(history).prediction + 0 * self.bias)

    result = fit(Constant(), data, quick(max_epochs=50, patience=3))
    assert result.epochs == 4 and result.best_epoch == 1


def test_nan_loss_stops_the_run_as_diverged(data):
    class Exploding(ForecastModel):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(()))

        def forward(self, history):
            return ModelOutput(prediction=history[:, :, :, :1] * self.weight * math.nan)

    result = fit(Exploding(), data, quick())
    assert result.status == "diverged"
    assert "nan" in result.reason
    assert result.epochs == 0


def test_finite_blow_up_of_a_huge_learning_rate_is_diverged_not_ok(data):
    result = fit(build_model("stid", data.meta()), data, quick(lr=30.0))  # val MAE ~1e28, finite
    assert result.status == "diverged" and result.epochs == 0
    assert result.reason.startswith("validation MAE ") and " in epoch 1 exceeds " in result.reason
    assert "divergence_factor 100 x the validation MAE of always forecasting the training mean" in result.reason
    unchecked = fit(build_model("stid", data.meta()), data, quick(lr=30.0, divergence_factor=None))
    assert unchecked.status == "ok" and unchecked.best_val_mae > 1e6  # what was recorded as ok before


def test_divergence_is_judged_against_the_mean_forecast(data):
    class Offset(ForecastModel):
        """Forecasts the training mean plus `offset` raw units (a finite, epoch-independent error)."""

        def __init__(self, offset: float):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.offset = offset / data.std

        def forward(self, history):
            return ModelOutput(prediction=torch.zeros_like(history[..., :1]) + self.offset + 0 * self.weight)

    mean_mae = evaluate(MeanForecast(12), data, "val", quick())["overall"]["mae"]
    assert mean_forecast_mae(data, quick()) == mean_mae
    assert fit(Offset(5 * mean_mae), data, quick(divergence_factor=10.0)).status == "ok"
    result = fit(Offset(20 * mean_mae), data, quick(divergence_factor=10.0))
    assert result.status == "diverged" and f"exceeds {10 * mean_mae:.4g}, divergence_factor 10 x" in result.reason


def test_normal_training_stays_ok_under_the_divergence_check(data):
    result = fit(build_model("stid", data.meta()), data, quick())
    assert result.status == "ok" and result.reason == "" and len(result.history) == 2


@pytest.mark.parametrize("factor", [1.0, 0.5, -3.0])
def test_divergence_factor_must_exceed_one(factor):
    with pytest.raises(ConfigError, match=r"divergence_factor: must be > 1 or null"):
        quick(divergence_factor=factor).validate()


def test_auxiliary_loss_is_added_to_the_training_loss(data):
    class WithAux(ForecastModel):
        def __init__(self):
            super().__init__()
            self.inner = build_model("stid", data.meta())

        def forward(self, history):
            out = self.inner(history)
            aux = torch.tensor(7.0)
            return ModelOutput(out.prediction, aux_loss=aux, extras={"loss/aux": aux.detach()})

    result = fit(WithAux(), data, quick(max_epochs=1))
    record = result.history[0]
    assert record["train_loss"] == pytest.approx(record["loss_supervised"] + 7.0)
    assert record["loss_aux"] == pytest.approx(7.0)


def test_resuming_from_a_saved_state_continues_exactly(data, tmp_path):
    torch.manual_seed(0)
    straight = build_model("stid", data.meta())
    fit(straight, data, quick(max_epochs=4))

    saved = {}

    def keep(record, state: TrainState):
        if record["epoch"] == 2:
            path = tmp_path / "state.pt"
            torch.save(state.to_dict(), path)
            saved["state"] = TrainState.from_dict(torch.load(path, weights_only=True))

    torch.manual_seed(0)
    first = build_model("stid", data.meta())
    fit(first, data, quick(max_epochs=2), on_epoch_end=keep)
    resumed = build_model("stid", data.meta())  # its own weights are replaced by the saved state
    result = fit(resumed, data, quick(max_epochs=4), resume=saved["state"])
    assert result.epochs == 4 and len(result.history) == 4
    assert evaluate(resumed, data, "test", quick()) == evaluate(straight, data, "test", quick())


def test_callback_sees_every_epoch(data):
    seen = []
    fit(build_model("stid", data.meta()), data, quick(max_epochs=3), on_epoch_end=lambda r, s: seen.append(r["epoch"]))
    assert seen == [1, 2, 3]


def test_persistence_repeats_the_last_recorded_value(data):
    model = build_model("persistence", data.meta())
    x, _ = data.split("test").batch(np.arange(4))
    prediction = model(torch.from_numpy(x)).prediction
    expected = torch.from_numpy(x[:, -1:, :, :1]).expand(-1, 12, -1, -1)
    assert torch.equal(prediction, expected)


def test_historical_average_predicts_the_training_mean_of_each_time_of_week_slot():
    steps = 288 * 7 * 3  # three whole weeks: every slot seen twice in the training split
    series = generate_synthetic(num_nodes=3, num_steps=steps, seed=1, missing_rate=0.0)
    data = prepare(series)
    model = build_model("historical_average", data.meta())
    fit(model, data, quick())
    values, tod, dow = data.train_segment()
    slot = dow * 288 + tod
    target_slot = int(slot[100]) % 2016
    expected = values[slot == target_slot].mean(axis=0)
    assert np.allclose(model.table[target_slot].numpy(), expected, atol=1e-5)


@pytest.mark.slow
def test_stid_learns_well_below_the_naive_baselines():
    data = prepare(generate_synthetic(num_nodes=12, num_steps=288 * 14, seed=0))
    config = quick(max_epochs=6, max_batches_per_epoch=60, lr=3e-3)
    scores = {}
    for name in ("persistence", "historical_average", "stid"):
        model = build_model(name, data.meta())
        fit(model, data, config)
        scores[name] = evaluate(model, data, "test", config)["overall"]["mae"]
    assert scores["stid"] < 0.9 * min(scores["persistence"], scores["historical_average"]), scores


MEMORY_PROBE = """
import json, torch
torch.set_num_threads(1)
from harness.data import generate_synthetic, prepare
from harness.experiment import run_planned
from harness.plan import plan_run
data = prepare(generate_synthetic(num_nodes=40, num_steps=288 * 6, seed=0))
small = {"max_epochs": 1, "max_batches_per_epoch": 4, "batch_size": 16, "device": "cpu"}
big = {**small, "embed_dim": 256, "num_layers": 6, "batch_size": 128}
print(json.dumps([run_planned(plan_run("stid", s), data).fields["peak_mem_mb"] for s in (small, big, small)]))
"""


@pytest.mark.slow
def test_peak_memory_of_a_trial_does_not_depend_on_what_its_process_ran_before():
    """A reused Ray worker runs trials in turn: the same trial measures the same as the first one
    of a fresh process and after a big one (a fresh process, as a new Ray worker is)."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first, big, after_big = json.loads(done.stdout.strip().splitlines()[-1])
    assert abs(first - after_big) <= 0.5 * max(first, after_big) + 5.0, (first, big, after_big)
    assert big > 5 * max(first, after_big), (first, big, after_big)  # and it does see a bigger model's need


def test_stid_trains_as_basicts_does_on_pems04_all_epochs_without_early_stopping():
    train = plan_run("stid").train_config
    assert (train.lr, train.weight_decay, train.batch_size, train.grad_clip) == (2e-3, 1e-4, 64, 5.0)
    assert (train.lr_schedule, train.lr_milestones, train.lr_gamma) == ("multistep", (1, 50, 80), 0.5)
    assert train.max_epochs == 100 and train.patience >= train.max_epochs  # every epoch runs; the best weights are kept


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_run_on_cuda_trains_there_and_measures_the_allocator_peak(data):
    fields = run_planned(plan_run("stid", {**SETTINGS, "device": "cuda"}), data).fields
    assert fields["status"] == "ok" and fields["peak_mem_mb"] > 0 and fields["device"].startswith("cuda")
    small = run_planned(plan_run("stid", {**SETTINGS, "device": "cuda", "embed_dim": 8}), data).fields
    assert small["peak_mem_mb"] < fields["peak_mem_mb"]  # the peak is this run's, not the process's
