"""HEPHAESTUS (shared/papers/hephaestus.txt, spec shared/specs/hephaestus.md), top to bottom:

RevIN -> Moving-Patch tokens of every scale -> router (AMS-MoE) -> the selected experts, each
L ST-Blocks (PTA then HSA), on only the samples routed to them -> gated sum -> MLP head
-> inverse RevIN.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from models.base import DatasetMeta, ForecastModel, ModelOutput, time_indices
from models.hephaestus.config import HephaestusConfig
from models.hephaestus.layers import Expert, PeriodEmbedding, RevIN
from models.hephaestus.router import Router, Routing, uniform_routing


class Hephaestus(ForecastModel):
    """HEPHAESTUS for one dataset; `config` is a validated HephaestusConfig."""

    def __init__(self, config: HephaestusConfig, meta: DatasetMeta):
        super().__init__()
        self.patch_sizes = tuple(config.patch_sizes)
        self.steps_per_day = meta.steps_per_day
        missing = meta.missing_value if config.revin_gap_aware else None  # D: the paper's RevIN by default
        self.revin = RevIN(config.revin_affine, missing) if config.revin else None

        # Global period matrices P_D, P_W, shared by all experts and blocks (PTA only).
        self.period_embedding = None
        period_dim = None
        if config.temporal_attn == "periodic":
            self.period_embedding = PeriodEmbedding(meta.steps_per_day, config.d_tid, config.d_tiw)
            period_dim = config.d_tid + config.d_tiw

        # One expert per patch size; HSA gives each its node embedding S_e of rank r.
        rank = config.rank if config.spatial_attn == "heterogeneous" else None
        self.experts = nn.ModuleList(
            Expert(
                patch_size,
                meta.num_nodes,
                config.hidden,
                config.layers,
                config.heads,
                config.ffn_ratio * config.hidden,
                config.dropout,
                period_dim,
                rank,
            )
            for patch_size in self.patch_sizes
        )

        # The router, unless the experts are mixed uniformly (Fixed-Scale MoE, or one expert).
        self.router = None
        if config.moe == "sparse" and config.gating != "uniform":
            self.router = Router(
                meta.num_nodes,
                meta.input_len,
                config.hidden,
                len(self.patch_sizes),
                config.router_features,
                config.gating,
                config.top_k,
                config.renorm_topk,
                config.aux_type,
            )
        self.aux_weight = config.aux_weight

        # MLP head over the H tokens of each node.
        self.head = nn.Sequential(
            nn.Linear(meta.input_len * config.hidden, config.head_hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden, meta.output_len),
        )

    def forward(self, history: torch.Tensor) -> ModelOutput:
        """history (B, H, N, 3) -> prediction (B, F, N, 1), balance loss, gate probabilities."""
        series, stats = self.normalise(history)  # RevIN
        tokens = [expert.embed(series) for expert in self.experts]  # Moving-Patch, Eq. 2-4
        routing = self.route(series, tokens)  # Eq. 5-7
        period = self.period_embedding(history) if self.period_embedding is not None else None  # P_e, Eq. 10
        mixed = self.mix_experts(tokens, period, routing)  # X_out, Eq. 8

        batch, nodes = mixed.shape[:2]
        forecast = self.head(mixed.reshape(batch, nodes, -1)).transpose(1, 2)  # (B, F, N)
        if self.revin is not None:
            forecast = self.revin.denormalise(forecast, stats)  # inverse RevIN
        prediction = forecast.unsqueeze(-1)

        extras = {"gate_probs": routing.probs, "gates": routing.gates}
        aux_loss = None
        if routing.balance is not None:
            aux_loss = self.aux_weight * routing.balance  # alpha * L_aux, Eq. 22
            extras["loss/balance"] = routing.balance.detach()
        return ModelOutput(prediction=prediction, aux_loss=aux_loss, extras=extras)

    def normalise(self, history: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """The value channel as node series (B, N, H), RevIN-normalised when enabled, and the
        statistics that undo it."""
        values, stats = history[..., 0], None  # (B, H, N)
        if self.revin is not None:
            values, stats = self.revin.normalise(values)
        return values.transpose(1, 2), stats

    def route(self, series: torch.Tensor, tokens: list[torch.Tensor]) -> Routing:
        """Which experts run on which sample, and with what weight."""
        if self.router is None:
            return uniform_routing(series.shape[0], len(self.experts), series.device)
        return self.router(series, tokens)

    def mix_experts(self, tokens: list[torch.Tensor], period: torch.Tensor | None, routing: Routing) -> torch.Tensor:
        """X_out = sum_m g_m * Expert_m(E_m) (Eq. 8), each expert run only on its routed samples."""
        mixed = torch.zeros_like(tokens[0])
        for m, expert in enumerate(self.experts):
            rows = routing.selected[:, m].nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            out = expert(tokens[m].index_select(0, rows), period.index_select(0, rows) if period is not None else None)
            weights = routing.gates[:, m].index_select(0, rows)
            mixed = mixed.index_add(0, rows, out * weights[:, None, None, None])
        return mixed

    def gate_probabilities(self, history: torch.Tensor) -> torch.Tensor:
        """The router's probabilities R (B, M) for a history batch, without running the experts."""
        series, _ = self.normalise(history)
        return self.route(series, [expert.embed(series) for expert in self.experts]).probs


def routing_probabilities(
    model: Hephaestus,
    histories: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Router probabilities over a span of windows, for the routing case study (paper Fig. 4).

    `histories` is one (S, H, N, 3) array/tensor (processed in chunks of `batch_size`) or an
    iterable of such batches. Returns probabilities (S, M) and the time-of-day index (S,) of each
    window's last input step. Runs in eval mode (no router noise) and restores the model's mode.
    """
    if isinstance(histories, (np.ndarray, torch.Tensor)):
        histories = [histories[start : start + batch_size] for start in range(0, len(histories), batch_size)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs, tods = [], []
    try:
        with torch.no_grad():
            for batch in histories:
                history = torch.as_tensor(batch, dtype=torch.float32, device=device)
                probs.append(model.gate_probabilities(history).cpu().numpy())
                tods.append(time_indices(history, model.steps_per_day)[0][:, -1].cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(probs), np.concatenate(tods)
