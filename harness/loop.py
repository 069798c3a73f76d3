"""The model-agnostic fit / evaluate loop.

Knows models only through the contract of models/base.py and data only through
`PreparedData`: Adam, an exponential or multi-step LR schedule, gradient clipping, early
stopping on validation MAE with patience, restore of the best weights, seeded determinism,
CUDA when available, and a per-epoch callback (the sweep reports to Ray Tune through it and
saves its checkpoints from the `TrainState` it is handed).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from harness.data import PreparedData, WindowSplit
from harness.metrics import MASK_TOLERANCE, SUPERVISED_LOSSES, MetricAccumulator
from models.base import ConfigError, ForecastModel, ModelOutput
from models.config import apply_overrides, field_names, validated


@dataclass
class TrainConfig:
    """Settings of the training loop (never of a model)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    eval_batch_size: int | None = None  # None: 2 x batch_size
    max_epochs: int = 100
    patience: int = 20  # stop after this many epochs without a better validation MAE
    lr_schedule: Literal["none", "exponential", "multistep"] = "multistep"
    lr_gamma: float = 0.5
    lr_milestones: tuple[int, ...] = (50, 80)
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    max_batches_per_epoch: int | None = None  # cap for smoke runs and benchmarks
    # "diverged" once validation MAE exceeds this multiple of the mean forecast's (finite blow-ups);
    # None: only a NaN/inf loss or MAE counts
    divergence_factor: float | None = 100.0

    def validate(self) -> None:
        """Reject impossible settings with the name of the setting at fault."""
        positive = {"lr": self.lr, "batch_size": self.batch_size, "max_epochs": self.max_epochs, "patience": self.patience, "lr_gamma": self.lr_gamma}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(name, f"must be > 0, got {value}")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", f"must be >= 0, got {self.weight_decay}")
        for name in ("eval_batch_size", "max_batches_per_epoch", "grad_clip"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(name, f"must be > 0 or null, got {value}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ConfigError("divergence_factor", f"must be > 1 or null, got {self.divergence_factor}")
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ConfigError("lr_milestones", f"must be increasing, got {list(self.lr_milestones)}")
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps")):
            raise ConfigError("device", f"must be auto, cpu or cuda[:i], got {self.device!r}")


TRAIN_FIELDS = field_names(TrainConfig)


def make_train_config(defaults: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """TrainConfig from built-in defaults <- a model's defaults <- explicit overrides."""
    config = apply_overrides(TrainConfig(), defaults, "the training loop")
    return validated(apply_overrides(config, overrides, "the training loop"))


def resolve_device(name: str) -> torch.device:
    """torch.device for a TrainConfig.device string ("auto" picks CUDA when present)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """Where a run trained, for its record: "cpu", or "cuda:0 (NVIDIA H200)" with the GPU's name."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def iterate_batches(
    split: WindowSplit,
    batch_size: int,
    device: torch.device,
    rng: np.random.Generator | None = None,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(history, target) tensor batches of a split; shuffled when `rng` is given."""
    order = rng.permutation(len(split)) if rng is not None else np.arange(len(split))
    starts = range(0, len(order), batch_size)
    if max_batches is not None:
        starts = starts[:max_batches]
    for start in starts:
        x, y = split.batch(order[start : start + batch_size])
        yield torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(y).to(device, non_blocking=True)


def denormalise(prediction: torch.Tensor, data: PreparedData) -> torch.Tensor:
    """(B, F, N, 1) normalised prediction -> (B, F, N) in raw units."""
    return prediction[..., 0] * data.std + data.mean


@torch.inference_mode()
def evaluate(
    model: ForecastModel,
    data: PreparedData,
    split_name: str,
    config: TrainConfig,
    max_batches: int | None = None,
) -> dict[str, dict[str, float]]:
    """Pooled masked metrics of `model` on one split (raw units, overall and per horizon)."""
    device = resolve_device(config.device)
    was_training = model.training
    model.eval()
    accumulator = MetricAccumulator(data.output_len)
    batch_size = config.eval_batch_size or 2 * config.batch_size
    for x, y in iterate_batches(data.split(split_name), batch_size, device, max_batches=max_batches):
        accumulator.update(denormalise(model(x).prediction, data), y)
    model.train(was_training)
    return accumulator.result()


class MeanForecast(ForecastModel):
    """Always forecasts the training mean (0 in normalised units): the yardstick of divergence."""

    trainable = False

    def __init__(self, output_len: int):
        super().__init__()
        self.output_len = output_len

    def forward(self, history: torch.Tensor) -> ModelOutput:
        batch, _, num_nodes, _ = history.shape
        return ModelOutput(history.new_zeros(batch, self.output_len, num_nodes, 1))


def mean_forecast_mae(data: PreparedData, config: TrainConfig) -> float:
    """Validation MAE of always forecasting the training mean. A model that trains at all stays far
    below divergence_factor times it; a blown-up one (STID at lr=1000: MAE ~1e28, finite) far above."""
    return evaluate(MeanForecast(data.output_len), data, "val", config)["overall"]["mae"]


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped."""

    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_val_mae: float = math.inf
    bad_epochs: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    model: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A dict torch.save can write and torch.load(weights_only=True) can read."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "TrainState":
        return cls(**state)


@dataclass
class FitResult:
    """Outcome of fit(): status "ok" or "diverged" (with the reason), and timing figures."""

    status: str
    epochs: int
    best_epoch: int
    best_val_mae: float
    history: list[dict[str, Any]]
    train_seconds: float
    train_s_per_iter: float
    reason: str = ""


EpochCallback = Callable[[dict[str, Any], TrainState], None]


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_gamma)
    if config.lr_schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.lr_milestones), gamma=config.lr_gamma)
    return None


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}


def train_epoch(
    model: ForecastModel,
    data: PreparedData,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
    rng: np.random.Generator,
) -> dict[str, float]:
    """One pass over the training split (at most max_batches_per_epoch batches). Returns mean
    loss terms and seconds per iteration; "loss" is NaN/inf when the loss diverged (training
    stops at that batch)."""
    model.train()
    supervised = SUPERVISED_LOSSES[getattr(model, "supervised_loss", "masked_mae")]
    sums: dict[str, float] = {}
    batches = 0
    start = time.perf_counter()
    for x, y in iterate_batches(data.split("train"), config.batch_size, device, rng, config.max_batches_per_epoch):
        output = model(x)
        loss_supervised = supervised(denormalise(output.prediction, data), y)
        loss = loss_supervised if output.aux_loss is None else loss_supervised + output.aux_loss
        if not torch.isfinite(loss):
            return {"loss": loss.item(), "s_per_iter": math.nan}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        terms = {"loss": loss.item(), "loss/supervised": loss_supervised.item()}
        terms.update({k: float(v) for k, v in output.extras.items() if k.startswith("loss/")})
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value
        batches += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    means = {k: v / max(batches, 1) for k, v in sums.items()}
    means["s_per_iter"] = seconds / max(batches, 1)
    return means


def fit(
    model: ForecastModel,
    data: PreparedData,
    config: TrainConfig,
    on_epoch_end: EpochCallback | None = None,
    resume: TrainState | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train `model` in place on data's train split, early-stopping on validation MAE.

    The best weights (lowest validation MAE) are restored at the end. A model with
    `trainable = False` only reads the training segment (fit_offline). When the loss turns
    NaN/inf, or the validation MAE exceeds divergence_factor x `mean_forecast_mae` (a finite
    blow-up), the run stops with status "diverged" and a reason naming the epoch and the values.
    `resume` continues from a TrainState that an earlier call handed to `on_epoch_end`.
    """
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    values, tod, dow = data.train_segment()
    start, end = data.segments["train"]
    model.fit_offline(values, np.abs(data.raw[start:end]) > MASK_TOLERANCE, tod, dow)
    if not getattr(model, "trainable", True):
        val = evaluate(model, data, "val", config)
        record = {"epoch": 0, "val_mae": val["overall"]["mae"], "val_rmse": val["overall"]["rmse"], "val_mape": val["overall"]["mape"]}
        if on_epoch_end is not None:
            on_epoch_end(record, TrainState(history=[record], model=model.state_dict()))
        return FitResult("ok", 0, 0, record["val_mae"], [record], 0.0, math.nan)  # nothing trained here

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = _make_scheduler(optimizer, config)
    rng = np.random.default_rng(config.seed)
    state = resume or TrainState()
    if resume is not None:
        model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        if scheduler is not None and resume.scheduler is not None:
            scheduler.load_state_dict(resume.scheduler)
        rng.bit_generator.state = resume.rng["numpy"]
        torch.set_rng_state(resume.rng["torch"])

    status, reason = "ok", ""
    train_seconds, iter_times = 0.0, []
    factor = config.divergence_factor
    ceiling = math.inf if factor is None else factor * mean_forecast_mae(data, config)
    while state.epoch < config.max_epochs and state.bad_epochs < config.patience:
        started = time.perf_counter()
        terms = train_epoch(model, data, optimizer, config, device, rng)
        if not math.isfinite(terms["loss"]):
            status, reason = "diverged", f"training loss became {terms['loss']} in epoch {state.epoch + 1}"
            break
        val = evaluate(model, data, "val", config)["overall"]
        if not math.isfinite(val["mae"]):
            status, reason = "diverged", f"validation MAE became {val['mae']} in epoch {state.epoch + 1}"
            break
        if val["mae"] > ceiling:
            status, reason = "diverged", (
                f"validation MAE {val['mae']:.4g} in epoch {state.epoch + 1} exceeds {ceiling:.4g}, divergence_factor "
                f"{factor:g} x the validation MAE of always forecasting the training mean"
            )
            break
        state.epoch += 1
        train_seconds += time.perf_counter() - started
        iter_times.append(terms.pop("s_per_iter"))
        if val["mae"] < state.best_val_mae:
            state.best_val_mae, state.best_epoch, state.bad_epochs = val["mae"], state.epoch, 0
            state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        record = {
            "epoch": state.epoch,
            "train_loss": terms.pop("loss"),
            **{k.replace("loss/", "loss_"): v for k, v in terms.items()},
            "val_mae": val["mae"],
            "val_rmse": val["rmse"],
            "val_mape": val["mape"],
            "best_val_mae": state.best_val_mae,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_s": time.perf_counter() - started,
        }
        state.history.append(record)
        if scheduler is not None:
            scheduler.step()
        if log is not None:
            log(
                f"epoch {state.epoch:3d}  loss {record['train_loss']:.4f}  val MAE {val['mae']:.4f}"
                f"  RMSE {val['rmse']:.4f}  MAPE {val['mape']:.2f}%  ({record['epoch_s']:.1f}s)"
            )
        if on_epoch_end is not None:
            state.model = model.state_dict()
            state.optimizer = optimizer.state_dict()
            state.scheduler = scheduler.state_dict() if scheduler is not None else None
            state.rng = _rng_state(rng)
            on_epoch_end(record, state)

    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return FitResult(
        status=status,
        epochs=state.epoch,
        best_epoch=state.best_epoch,
        best_val_mae=state.best_val_mae,
        history=state.history,
        train_seconds=train_seconds,
        train_s_per_iter=float(np.median(iter_times)) if iter_times else math.nan,
        reason=reason,
    )
