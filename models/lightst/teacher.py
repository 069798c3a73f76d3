"""LightST's teacher: input embedding, time-aware GCN over the road graph, causal TCN, head.

Paper Eqs. 1-4 (spec lightst.md section 2). Internally the embeddings are node-major,
(N, B, T, d), so that the sparse graph product needs no transpose; the embeddings exposed for
distillation are (B, T, N, d) views.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.base import ConfigError, DatasetMeta, ForecastModel, ModelOutput
from models.lightst.config import TeacherConfig

WINDOW_NORM_EPS = 1e-5


def normalized_adjacency(adjacency: np.ndarray) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 of a road graph (Eq. 3), as a sparse (N, N) tensor.

    The graph is made symmetric first (an edge either way links two sensors, weight the
    larger of the two) and its own self-loops are replaced by the unit ones of A + I.
    """
    weights = torch.as_tensor(np.asarray(adjacency, dtype=np.float32))
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ConfigError("adjacency", f"must be a square (N, N) matrix, got shape {tuple(weights.shape)}")
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ConfigError("adjacency", "edge weights must be finite and >= 0")
    symmetric = torch.maximum(weights, weights.T)
    with_loops = symmetric.fill_diagonal_(0.0) + torch.eye(len(symmetric))
    inv_sqrt_degree = with_loops.sum(dim=1).rsqrt()
    return (inv_sqrt_degree[:, None] * with_loops * inv_sqrt_degree[None, :]).to_sparse().coalesce()


class CausalConv(nn.Module):
    """W * E + b over the f most recent steps, time on dim -2, zero-padded in the past (Eq. 4)."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.linear = nn.Linear(kernel_size * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[-2]
        padded = F.pad(x, (0, 0, self.kernel_size - 1, 0))
        windows = torch.cat([padded[..., k : k + steps, :] for k in range(self.kernel_size)], dim=-1)  # (..., T, f*d)
        return self.linear(windows)


class LightSTTeacher(ForecastModel):
    """GCN + TCN teacher. forward() returns its prediction and, in `extras`, the embeddings
    E_gcn ("gcn_embedding") and E_tcn ("tcn_embedding"), each (B, H, N, d)."""

    def __init__(self, config: TeacherConfig, meta: DatasetMeta):
        super().__init__()
        if meta.adjacency is None:
            raise ConfigError("dataset", f"the LightST teacher needs a road graph and dataset {meta.name} has none")
        if meta.adjacency.shape != (meta.num_nodes, meta.num_nodes):
            raise ConfigError("adjacency", f"shape {meta.adjacency.shape} does not match {meta.num_nodes} nodes")
        self.hidden = config.hidden
        self.window_norm = config.input_norm == "window"
        self.input_embedding = nn.Linear(1, config.hidden)  # Eq. 1: x * e + b_e
        # Computed once; derived from the dataset, so not part of the saved weights.
        self.register_buffer("adjacency", normalized_adjacency(meta.adjacency), persistent=False)
        self.gcn = nn.ModuleList(nn.Linear(config.hidden, config.hidden, bias=False) for _ in range(config.gcn_layers))
        self.tcn = nn.ModuleList(CausalConv(config.hidden, config.kernel_size) for _ in range(config.tcn_layers))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(meta.input_len * config.hidden, meta.output_len)

    def propagate(self, embedding: torch.Tensor) -> torch.Tensor:
        """Â E for node-major embeddings (N, B, T, d): every sample and step in one sparse product."""
        num_nodes = embedding.shape[0]
        return torch.sparse.mm(self.adjacency, embedding.reshape(num_nodes, -1)).view_as(embedding)

    def forward(self, history: torch.Tensor) -> ModelOutput:
        values = history[..., 0].permute(2, 0, 1)  # (N, B, H)
        if self.window_norm:  # the paper's Eq. 1: z-score each node over its own window
            mean = values.mean(dim=-1, keepdim=True)
            std = values.std(dim=-1, keepdim=True) + WINDOW_NORM_EPS
            values = (values - mean) / std
        layer = self.input_embedding(values.unsqueeze(-1))  # E(0): (N, B, H, d)

        # Eq. 3: E(l) = ReLU(Â E(l-1) W(l)) per time step; E_gcn = sum over l = 0..L
        gcn = layer
        for weight in self.gcn:
            layer = torch.relu(weight(self.propagate(layer)))
            gcn = gcn + layer

        # Eq. 4: E = LeakyReLU(Drop(W * E + b) + E), causal over time
        tcn = gcn
        for conv in self.tcn:
            tcn = F.leaky_relu(self.dropout(conv(tcn)) + tcn)

        num_nodes, batch = tcn.shape[:2]
        prediction = self.head(tcn.reshape(num_nodes, batch, -1))  # (N, B, F)
        if self.window_norm:
            prediction = prediction * std + mean
        return ModelOutput(
            prediction=prediction.permute(1, 2, 0).unsqueeze(-1),
            extras={"gcn_embedding": gcn.permute(1, 2, 0, 3), "tcn_embedding": tcn.permute(1, 2, 0, 3)},
        )
