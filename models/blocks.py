"""Building blocks shared by more than one model."""

from __future__ import annotations

import torch
from torch import nn


class ResidualMLP(nn.Module):
    """x + fc2(drop(relu(fc1(x)))) over the last axis (STID's and LightST's MLP block;
    BasicTS writes it with 1x1 convolutions, which is the same map)."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.drop(torch.relu(self.fc1(x))))
