"""The contract every forecasting model in this project follows.

A model is built from its config (a dataclass of hyperparameters) and a `DatasetMeta`,
takes a history window and returns a `ModelOutput`. Models know nothing of Ray, YAML or
the training loop; the loop only relies on what is written here.

Shapes (protocol of shared/specs/protocol.md):
    history     (B, H, N, 3)  channel 0 = z-scored value, 1 = time-of-day fraction,
                              2 = day-of-week fraction
    prediction  (B, F, N, 1)  in the same normalised units as channel 0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

STEPS_PER_DAY = 288
DAYS_PER_WEEK = 7


class ConfigError(ValueError):
    """An inconsistent or unknown setting; `field` names the setting at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def __reduce__(self):  # raised in Ray workers, unpickled in the driver: keep both fields
        return type(self), (self.field, self.reason)


@dataclass(frozen=True)
class DatasetMeta:
    """What a model may know about its dataset (never the values themselves)."""

    name: str
    num_nodes: int
    input_len: int = 12
    output_len: int = 12
    steps_per_day: int = STEPS_PER_DAY
    adjacency: np.ndarray | None = None  # (N, N) raw edge weights, only for graph models
    missing_value: float | None = None  # a missing reading (recorded as 0) in normalised units


@dataclass
class ModelOutput:
    """What a forward pass returns.

    prediction: (B, F, N, 1), normalised units.
    aux_loss:   a scalar added to the training loss (balance loss, distillation), or None.
    extras:     named tensors for analysis. Keys starting with "loss/" are detached scalar
                loss terms the training loop logs per epoch; "gate_probs" is the router's
                (B, M) expert probabilities.
    """

    prediction: torch.Tensor
    aux_loss: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class ForecastModel(nn.Module):
    """Base class of all models: `forward(history) -> ModelOutput` plus optional hooks.

    `trainable = False` marks models with no gradient training (persistence, historical
    average); `fit_offline` lets such a model read the training segment once.
    `supervised_loss` names the loss on ground truth: "masked_mae" (default) or "masked_mse".
    """

    trainable: bool = True
    supervised_loss: str = "masked_mae"

    def fit_offline(self, values: np.ndarray, observed: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> None:
        """Read the training segment once before training (default: nothing to read).

        values: (T, N) z-scored training values; observed: (T, N) bool, False where the raw
        reading is missing (recorded as 0); tod, dow: (T,) integer time-of-day (0..287) and
        day-of-week (0..6) indices.
        """

    def inference_parameters(self) -> int:
        """Parameters a forward pass at inference uses (what efficiency tables report).

        All of the model's parameters, trainable or frozen; a model that carries modules used
        only in training (LightST's teacher and projection heads) leaves those out.
        """
        return sum(p.numel() for p in self.parameters())


def time_indices(history: torch.Tensor, steps_per_day: int = STEPS_PER_DAY) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer (tod, dow) indices, each (B, H), from the feature channels of a history window.

    round() rather than truncation: k/288*288 can come out as k-1 in float32.
    """
    tod = torch.round(history[..., 0, 1] * steps_per_day).long() % steps_per_day
    dow = torch.round(history[..., 0, 2] * DAYS_PER_WEEK).long() % DAYS_PER_WEEK
    return tod, dow


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
