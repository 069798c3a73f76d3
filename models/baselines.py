"""The baselines the papers' tables carry: persistence, historical average and STID.

STID follows BasicTS's implementation (Shao et al., CIKM 2022): identity embeddings of the node,
the time of day and the day of week, concatenated with an embedding of the input window and
passed through residual MLP layers. With BasicTS's PEMS04 settings it has 121,068 parameters,
and it trains as BasicTS trains it on PEMS04 (`STID_TRAIN_DEFAULTS`: Adam lr 0.002, weight decay
1e-4, MultiStepLR [1, 50, 80] x 0.5, batch 64, all 100 epochs, best-validation weights kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from models.base import DAYS_PER_WEEK, ConfigError, DatasetMeta, ForecastModel, ModelOutput, time_indices
from models.blocks import ResidualMLP
from models.registry import ModelEntry, Variant, register

FULL = (Variant("full", "Full"),)


# ---------------------------------------------------------------------------------------------
# Persistence: the last recorded value, repeated over the horizon.


@dataclass
class PersistenceConfig:
    variant: Literal["full"] = "full"


class Persistence(ForecastModel):
    """Predicts the last input step's value, as recorded (a missing reading stays missing)."""

    trainable = False

    def __init__(self, output_len: int):
        super().__init__()
        self.output_len = output_len

    def forward(self, history: torch.Tensor) -> ModelOutput:
        last = history[:, -1:, :, :1]  # (B, 1, N, 1)
        return ModelOutput(prediction=last.expand(-1, self.output_len, -1, -1).clone())


# ---------------------------------------------------------------------------------------------
# Historical average: the mean of the same time-of-week slot over the training segment.


@dataclass
class HistoricalAverageConfig:
    variant: Literal["full"] = "full"


class HistoricalAverage(ForecastModel):
    """Predicts, for each forecast step, the training mean of that node at that time of week.

    Missing readings are left out of the means; a slot never observed falls back to the
    node's overall training mean (or 0, the global mean, for a node never observed).
    """

    trainable = False

    def __init__(self, num_nodes: int, output_len: int, steps_per_day: int):
        super().__init__()
        self.output_len = output_len
        self.steps_per_day = steps_per_day
        self.slots = steps_per_day * DAYS_PER_WEEK
        self.register_buffer("table", torch.zeros(self.slots, num_nodes))

    def fit_offline(self, values: np.ndarray, observed: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> None:
        slot = np.asarray(dow, dtype=np.int64) * self.steps_per_day + np.asarray(tod, dtype=np.int64)
        weights = observed.astype(np.float64)
        sums = np.zeros((self.slots, values.shape[1]))
        counts = np.zeros_like(sums)
        np.add.at(sums, slot, values * weights)
        np.add.at(counts, slot, weights)
        node_mean = (values * weights).sum(0) / np.maximum(weights.sum(0), 1.0)
        table = np.where(counts > 0, sums / np.maximum(counts, 1.0), node_mean[None, :])
        self.table.copy_(torch.from_numpy(table.astype(np.float32)))

    def forward(self, history: torch.Tensor) -> ModelOutput:
        tod, dow = time_indices(history, self.steps_per_day)
        last_slot = dow[:, -1] * self.steps_per_day + tod[:, -1]  # (B,)
        ahead = torch.arange(1, self.output_len + 1, device=history.device)
        slots = (last_slot[:, None] + ahead[None, :]) % self.slots  # (B, F)
        return ModelOutput(prediction=self.table[slots].unsqueeze(-1))


# ---------------------------------------------------------------------------------------------
# STID (BasicTS): identity embeddings + residual MLP.


@dataclass
class STIDConfig:
    variant: Literal["full"] = "full"
    embed_dim: int = 32  # embedding of the (input_len x 3) window
    node_dim: int = 32
    tod_dim: int = 32
    dow_dim: int = 32
    num_layers: int = 3
    dropout: float = 0.15
    use_node: bool = True
    use_tod: bool = True
    use_dow: bool = True

    def validate(self) -> None:
        for name in ("embed_dim", "node_dim", "tod_dim", "dow_dim", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", f"must be in [0, 1), got {self.dropout}")


# Training defaults: BasicTS's PEMS04 settings of STID (baselines/STID/PEMS04.py, BasicTS 0.x).
# BasicTS has no early stopping: patience = max_epochs runs every epoch, and the loop restores
# the best-validation weights at the end.
STID_EPOCHS = 100  # CFG.TRAIN.NUM_EPOCHS
STID_TRAIN_DEFAULTS = {
    "lr": 2e-3,  # CFG.TRAIN.OPTIM.PARAM (Adam)
    "weight_decay": 1e-4,  # CFG.TRAIN.OPTIM.PARAM
    "lr_schedule": "multistep",  # CFG.TRAIN.LR_SCHEDULER: MultiStepLR
    "lr_milestones": (1, 50, 80),
    "lr_gamma": 0.5,
    "grad_clip": 5.0,  # CFG.TRAIN.CLIP_GRAD_PARAM max_norm
    "max_epochs": STID_EPOCHS,
    "patience": STID_EPOCHS,
    "batch_size": 64,  # CFG.TRAIN.DATA.BATCH_SIZE
}


class STID(ForecastModel):
    def __init__(self, config: STIDConfig, meta: DatasetMeta):
        super().__init__()
        self.config = config
        self.steps_per_day = meta.steps_per_day
        self.window_embedding = nn.Linear(meta.input_len * 3, config.embed_dim)
        width = config.embed_dim
        if config.use_node:
            self.node_embedding = nn.Parameter(torch.empty(meta.num_nodes, config.node_dim))
            nn.init.xavier_uniform_(self.node_embedding)
            width += config.node_dim
        if config.use_tod:
            self.tod_embedding = nn.Parameter(torch.empty(meta.steps_per_day, config.tod_dim))
            nn.init.xavier_uniform_(self.tod_embedding)
            width += config.tod_dim
        if config.use_dow:
            self.dow_embedding = nn.Parameter(torch.empty(DAYS_PER_WEEK, config.dow_dim))
            nn.init.xavier_uniform_(self.dow_embedding)
            width += config.dow_dim
        self.encoder = nn.Sequential(*[ResidualMLP(width, config.dropout) for _ in range(config.num_layers)])
        self.regression = nn.Linear(width, meta.output_len)

    def forward(self, history: torch.Tensor) -> ModelOutput:
        batch, _, num_nodes, _ = history.shape
        window = history.permute(0, 2, 1, 3).reshape(batch, num_nodes, -1)  # (B, N, H*3)
        parts = [self.window_embedding(window)]
        if self.config.use_node:
            parts.append(self.node_embedding.expand(batch, -1, -1))
        tod, dow = time_indices(history, self.steps_per_day)  # indexed at the last input step
        if self.config.use_tod:
            parts.append(self.tod_embedding[tod[:, -1]][:, None, :].expand(-1, num_nodes, -1))
        if self.config.use_dow:
            parts.append(self.dow_embedding[dow[:, -1]][:, None, :].expand(-1, num_nodes, -1))
        hidden = self.encoder(torch.cat(parts, dim=-1))  # (B, N, width)
        prediction = self.regression(hidden).transpose(1, 2).unsqueeze(-1)  # (B, F, N, 1)
        return ModelOutput(prediction=prediction)


register(
    ModelEntry(
        name="persistence",
        config_cls=PersistenceConfig,
        build=lambda config, meta: Persistence(meta.output_len),
        variants=FULL,
        description="last recorded value repeated over the horizon (no training)",
    )
)
register(
    ModelEntry(
        name="historical_average",
        config_cls=HistoricalAverageConfig,
        build=lambda config, meta: HistoricalAverage(meta.num_nodes, meta.output_len, meta.steps_per_day),
        variants=FULL,
        description="training mean of the same time-of-week slot (no training)",
    )
)
register(
    ModelEntry(
        name="stid",
        config_cls=STIDConfig,
        build=STID,
        variants=FULL,
        description="STID (BasicTS): identity embeddings + residual MLP",
        train_defaults=STID_TRAIN_DEFAULTS,
    )
)
