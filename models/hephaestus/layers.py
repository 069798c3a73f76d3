"""Building blocks of HEPHAESTUS: RevIN, Moving-Patch, period embeddings and the ST-Block.

Layout inside the model: node series are (B, N, H) and token tensors (B, N, H, C), i.e. batch,
node, time step, channel. Attention goes through `torch.nn.functional.scaled_dot_product_attention`
(softmax scaled by sqrt(D / heads)), over the H steps of each node (temporal) or over the N nodes
of each step (spatial).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.base import DAYS_PER_WEEK, time_indices


MISSING_TOLERANCE = 1e-5  # |x - missing_value| below this is a gap (same float32 arithmetic)


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., 2022) of the value channel.

    Statistics are taken per sample and per node over the input steps and detached; the optional
    affine transform has one weight and one bias. Without `missing_value` this is the paper's
    RevIN over all input steps, sensor gaps included (the default). With it (the opt-in
    `revin_gap_aware`), readings equal to it (sensor gaps, recorded as 0 before z-scoring) are
    left out of the statistics and enter the model as the window mean, so one gap does not drag
    a window's level and scale.
    """

    def __init__(self, affine: bool, missing_value: float | None = None, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.missing_value = missing_value
        self.weight = nn.Parameter(torch.ones(1)) if affine else None
        self.bias = nn.Parameter(torch.zeros(1)) if affine else None

    def normalise(self, values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(B, H, N) values -> normalised values and the (mean, std) to undo it, each (B, 1, N)."""
        if self.missing_value is None:
            observed = torch.ones_like(values)
        else:
            observed = ((values - self.missing_value).abs() > MISSING_TOLERANCE).to(values.dtype)
        count = observed.sum(dim=1, keepdim=True).clamp_min(1.0)
        mean = ((values * observed).sum(dim=1, keepdim=True) / count).detach()
        var = (((values - mean) * observed) ** 2).sum(dim=1, keepdim=True) / count
        std = torch.sqrt(var + self.eps).detach()
        normalised = (values - mean) / std * observed
        if self.weight is not None:
            normalised = normalised * self.weight + self.bias
        return normalised, (mean, std)

    def denormalise(self, values: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Inverse of `normalise` for (B, F, N) outputs."""
        mean, std = stats
        if self.weight is not None:
            values = (values - self.bias) / (self.weight + self.eps**2)
        return values * std + mean


class MovingPatch(nn.Module):
    """Causal overlapping patches of one size, linearly projected (Eq. 2-4).

    Token i covers steps i-P+1..i; the series is left-padded with P-1 copies of its first step.
    """

    def __init__(self, patch_size: int, hidden: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(patch_size, hidden)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        """(B, N, H) -> (B, N, H, C)."""
        padded = F.pad(series, (self.patch_size - 1, 0), mode="replicate")  # Eq. 2
        patches = padded.unfold(-1, self.patch_size, 1)  # Eq. 3: (B, N, H, P)
        return self.proj(patches)  # Eq. 4


class PeriodEmbedding(nn.Module):
    """The period matrices P_D and P_W (Eq. 9-10), shared by every PTA of every expert."""

    def __init__(self, steps_per_day: int, d_tid: int, d_tiw: int):
        super().__init__()
        self.steps_per_day = steps_per_day
        self.day = nn.Parameter(torch.empty(steps_per_day, d_tid))
        self.week = nn.Parameter(torch.empty(steps_per_day * DAYS_PER_WEEK, d_tiw))
        nn.init.xavier_uniform_(self.day)
        nn.init.xavier_uniform_(self.week)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """(B, H, N, 3) history -> P_e, (B, H, d_tid + d_tiw)."""
        tod, dow = time_indices(history, self.steps_per_day)
        tow = dow * self.steps_per_day + tod
        return torch.cat([self.day[tod], self.week[tow]], dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, over: str) -> torch.Tensor:
    """Multi-head attention of (B, N, H, D) tensors over "time" (per node) or "space" (per step)."""
    if over not in ("time", "space"):
        raise ValueError(f"attention is over 'time' or 'space', not {over!r}")
    if over == "space":
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    batch, groups, length, dim = q.shape

    def split_heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch * groups, length, heads, dim // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split_heads(q), split_heads(k), split_heads(v))
    out = out.transpose(1, 2).reshape(batch, groups, length, dim)
    return out.transpose(1, 2) if over == "space" else out


class TemporalAttention(nn.Module):
    """Periodic Temporal Attention (Eq. 11-12): queries from the period embedding P_e W_qt,
    broadcast over nodes; keys and values from the tokens. With `period_dim=None` it is plain
    temporal self-attention, Q = X W_q (the "w/o PTA" ablation)."""

    def __init__(self, hidden: int, heads: int, period_dim: int | None):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(period_dim if period_dim is not None else hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, period: torch.Tensor | None) -> torch.Tensor:
        """x (B, N, H, C), period P_e (B, H, d_tid + d_tiw) or None -> (B, N, H, C)."""
        if period is None:
            q = self.query(x)
        else:
            q = self.query(period).unsqueeze(1).expand(-1, x.shape[1], -1, -1)
        return self.out(attend(q, self.key(x), self.value(x), self.heads, over="time"))


class HeterogeneousSpatialAttention(nn.Module):
    """Heterogeneous Spatial Attention (Eq. 13-19) with gated common/specific values.

    The node embedding S_e (N x r) belongs to the expert and is passed in; the pattern library
    PL (r x C x D) belongs to this block.
    """

    def __init__(self, hidden: int, heads: int, rank: int):
        super().__init__()
        self.heads = heads
        self.query_tokens = nn.Linear(hidden, hidden)  # W_qs1, Eq. 13
        self.query = nn.Linear(rank + hidden, hidden)  # W_qs2, Eq. 14
        self.key = nn.Linear(hidden, hidden)  # W_ks
        self.value_common = nn.Linear(hidden, hidden)  # W_vc, Eq. 15
        bound = 1.0 / math.sqrt(hidden)  # the scale of a Linear(C -> D) weight
        self.pattern_library = nn.Parameter(torch.empty(rank, hidden, hidden).uniform_(-bound, bound))
        self.gate = nn.Linear(2 * hidden, 1)  # W_g, Eq. 18
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, node_embedding: torch.Tensor) -> torch.Tensor:
        """x (B, N, H, C), node_embedding S_e (N, r) -> (B, N, H, C)."""
        nodes_per_step = node_embedding[:, None, :].expand(x.shape[0], -1, x.shape[2], -1)
        q = self.query(torch.cat([nodes_per_step, self.query_tokens(x)], dim=-1))  # Eq. 13-14
        value_common = self.value_common(x)  # Eq. 15
        node_weights = torch.einsum("nk,kcd->ncd", node_embedding, self.pattern_library)  # Eq. 16
        value_specific = torch.einsum("bnhc,ncd->bnhd", x, node_weights)  # Eq. 17
        share = torch.sigmoid(self.gate(torch.cat([value_common, value_specific], dim=-1)))  # Eq. 18
        v = share * value_common + (1 - share) * value_specific
        return self.out(attend(q, self.key(x), v, self.heads, over="space"))  # Eq. 19


class SpatialAttention(nn.Module):
    """Plain spatial self-attention, Q, K, V = X W (the "w/o HSA" ablation)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, node_embedding: torch.Tensor | None) -> torch.Tensor:
        """x (B, N, H, C) -> (B, N, H, C); there is no node embedding to use."""
        return self.out(attend(self.query(x), self.key(x), self.value(x), self.heads, over="space"))


class PostNormLayer(nn.Module):
    """One attention sublayer and one FFN sublayer, post-LN:
    y = LN(x + Drop(Attn(x))); y = LN(y + Drop(FFN(y)))."""

    def __init__(self, attention: nn.Module, hidden: int, ffn_hidden: int, dropout: float):
        super().__init__()
        self.attention = attention
        self.norm_attention = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn_hidden), nn.ReLU(inplace=True), nn.Linear(ffn_hidden, hidden))
        self.norm_ffn = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """x (B, N, H, C); `context` is what the attention needs besides x (P_e or S_e)."""
        x = self.norm_attention(x + self.dropout(self.attention(x, context)))
        return self.norm_ffn(x + self.dropout(self.ffn(x)))


class STBlock(nn.Module):
    """An ST-Block: temporal attention (PTA) then spatial attention (HSA), each with its FFN."""

    def __init__(
        self,
        hidden: int,
        heads: int,
        ffn_hidden: int,
        dropout: float,
        period_dim: int | None,
        rank: int | None,
    ):
        super().__init__()
        spatial = (
            SpatialAttention(hidden, heads) if rank is None else HeterogeneousSpatialAttention(hidden, heads, rank)
        )
        self.temporal = PostNormLayer(TemporalAttention(hidden, heads, period_dim), hidden, ffn_hidden, dropout)
        self.spatial = PostNormLayer(spatial, hidden, ffn_hidden, dropout)

    def forward(
        self, x: torch.Tensor, period: torch.Tensor | None, node_embedding: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, N, H, C) -> (B, N, H, C)."""
        return self.spatial(self.temporal(x, period), node_embedding)


class Expert(nn.Module):
    """One AMS-MoE expert: its Moving-Patch, its node embedding S_e and L ST-Blocks.

    `embed` (the Moving-Patch tokens) is separate from `forward` because the router reads the
    tokens of every expert for all samples, while each expert encodes only its routed samples.
    """

    def __init__(
        self,
        patch_size: int,
        num_nodes: int,
        hidden: int,
        layers: int,
        heads: int,
        ffn_hidden: int,
        dropout: float,
        period_dim: int | None,
        rank: int | None,
    ):
        super().__init__()
        self.patch = MovingPatch(patch_size, hidden)
        self.node_embedding = None
        if rank is not None:  # S_e ~ N(0, 1/r), shared by the expert's blocks
            self.node_embedding = nn.Parameter(torch.randn(num_nodes, rank) / math.sqrt(rank))
        self.blocks = nn.ModuleList(
            STBlock(hidden, heads, ffn_hidden, dropout, period_dim, rank) for _ in range(layers)
        )

    def embed(self, series: torch.Tensor) -> torch.Tensor:
        """(B, N, H) normalised values -> (B, N, H, C) Moving-Patch tokens."""
        return self.patch(series)

    def forward(self, tokens: torch.Tensor, period: torch.Tensor | None) -> torch.Tensor:
        """(B, N, H, C) tokens and P_e (B, H, d) or None -> (B, N, H, C)."""
        for block in self.blocks:
            tokens = block(tokens, period, self.node_embedding)
        return tokens
