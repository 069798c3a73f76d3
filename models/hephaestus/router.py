"""The AMS-MoE router: per-sample expert probabilities, gates and the balance loss (Eq. 5-8, 21).

The router summarises each sample's history into X_h (B, H), scores the M experts from it with
noisy gating (Eq. 6, noise in training only) and picks the experts that run (Eq. 7):
    "noisy_topk"   top-K of the noisy softmax, gates renormalised over the K (or the literal Eq. 7);
                   at K = 1 the raw probability R_i (Switch Transformer)
    "noisy_dense"  every expert runs, weighted by the full noisy softmax
and adds a load-balancing loss: Eq. 21 (Switch form) or the importance loss CV(sum_b R)^2.
A fixed uniform mixture (no router at all) is `uniform_routing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

TREND_KERNELS = (4, 8, 12)  # moving-average windows of the "decomp" router features (Pathformer)
SEASONAL_FREQUENCIES = 3  # Fourier components kept as seasonality (Pathformer)
NOISE_FLOOR = 1e-2  # minimum noise std of the noisy gating


@dataclass
class Routing:
    """How a batch is split over the experts.

    probs:    (B, M) router probabilities R (Eq. 6), with noise when training.
    gates:    (B, M) weight of each expert's output (Eq. 8); 0 where the expert does not run.
    selected: (B, M) bool, the experts that run on each sample.
    balance:  the load-balancing loss L_aux (Eq. 21), or None without a router.
    """

    probs: torch.Tensor
    gates: torch.Tensor
    selected: torch.Tensor
    balance: torch.Tensor | None


def uniform_routing(batch: int, num_experts: int, device: torch.device) -> Routing:
    """Every expert on every sample with weight 1/M (Fixed-Scale MoE; one expert: gate 1)."""
    probs = torch.full((batch, num_experts), 1.0 / num_experts, device=device)
    selected = torch.ones(batch, num_experts, dtype=torch.bool, device=device)
    return Routing(probs=probs, gates=probs, selected=selected, balance=None)


def top_k_gates(probs: torch.Tensor, k: int, renormalise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the top-k probabilities of each row (Eq. 7): returns (gates, selected), each (B, M).

    With `renormalise` and k >= 2 the kept gates are divided by their sum, so they add up to 1.
    At k = 1 the one gate stays the raw probability R_i (Switch Transformer, **D**): renormalised
    it would be a constant 1 and the forecasting loss would never reach the router.
    """
    selected = torch.zeros_like(probs, dtype=torch.bool)
    selected.scatter_(1, probs.topk(k, dim=1).indices, True)
    gates = probs * selected
    if renormalise and k > 1:
        gates = gates / gates.sum(dim=1, keepdim=True)
    return gates, selected


def cv_squared(x: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of a vector (0 for a single entry)."""
    if x.numel() < 2:
        return x.new_zeros(())
    return x.var() / (x.mean() ** 2 + 1e-10)


def balance_loss(probs: torch.Tensor, selected: torch.Tensor, kind: str) -> torch.Tensor:
    """Load-balancing loss over a batch of T samples.

    "switch" (Eq. 21): M * sum_i f_i * r_i with f_i = count_i / (K T), no gradient, and r_i the mean
    router probability of expert i; it equals 1 under perfectly uniform routing. When every
    expert runs it is identically 1, with no gradient.
    "cv2" (the importance loss of Shazeer et al., 2017): CV(sum over samples of R)^2, 0 when every
    expert gets the same total probability; it balances dense routing too.
    """
    if kind == "cv2":
        return cv_squared(probs.sum(dim=0))
    counts = selected.sum(dim=0).to(probs.dtype)
    return probs.shape[1] * torch.sum(counts / counts.sum() * probs.mean(dim=0))


class PatchMixFeatures(nn.Module):
    """Router features of Eq. 5: the Moving-Patch tokens of all scales, mixed per node by
    softmax(F(x)) and fused with x by a linear map to one value per node and step."""

    def __init__(self, input_len: int, hidden: int, num_experts: int):
        super().__init__()
        self.scale_weights = nn.Linear(input_len, num_experts)  # F(.) of Eq. 5
        self.fuse = nn.Linear(hidden + 1, 1)

    def forward(self, series: torch.Tensor, tokens: list[torch.Tensor]) -> torch.Tensor:
        """series (B, N, H), tokens M x (B, N, H, C) -> (B, N, H)."""
        alpha = torch.softmax(self.scale_weights(series), dim=-1)  # (B, N, M)
        mixed = sum(alpha[..., m, None, None] * t for m, t in enumerate(tokens))  # X_patch
        return self.fuse(torch.cat([mixed, series.unsqueeze(-1)], dim=-1)).squeeze(-1)


class DecompositionFeatures(nn.Module):
    """Pathformer's router features: x + top-k Fourier seasonality + a learned mix of
    moving-average trends (Chen et al., 2024)."""

    def __init__(self):
        super().__init__()
        self.trend_mix = nn.Linear(1, len(TREND_KERNELS))

    def forward(self, series: torch.Tensor, tokens: list[torch.Tensor]) -> torch.Tensor:
        """series (B, N, H) -> (B, N, H); the tokens are not used."""
        return series + self.seasonality(series) + self.trend(series)

    @staticmethod
    def seasonality(series: torch.Tensor) -> torch.Tensor:
        """The series rebuilt from its strongest non-constant frequencies."""
        length = series.shape[-1]
        spectrum = torch.fft.rfft(series, dim=-1)
        amplitude = spectrum.abs().detach()
        amplitude[..., 0] = -1  # never keep the mean ...
        if length % 2 == 0:
            amplitude[..., -1] = -1  # ... nor the Nyquist component
        keep = min(SEASONAL_FREQUENCIES, (length - 1) // 2)  # frequencies left to choose from
        strongest = amplitude.topk(keep, dim=-1).indices
        mask = torch.zeros_like(amplitude, dtype=torch.bool).scatter_(-1, strongest, True)
        return torch.fft.irfft(spectrum * mask, n=length, dim=-1)

    def trend(self, series: torch.Tensor) -> torch.Tensor:
        """Centred moving averages of several widths, mixed per value by softmax weights."""
        averages = []
        for kernel in TREND_KERNELS:
            padded = F.pad(series, ((kernel - 1) // 2, kernel // 2), mode="replicate")
            averages.append(F.avg_pool1d(padded, kernel, stride=1))
        weights = torch.softmax(self.trend_mix(series.unsqueeze(-1)), dim=-1)
        return (torch.stack(averages, dim=-1) * weights).sum(dim=-1)


class Router(nn.Module):
    """Temporal-aware router (Eq. 5-7): per-sample noisy gating over the M experts."""

    def __init__(
        self,
        num_nodes: int,
        input_len: int,
        hidden: int,
        num_experts: int,
        features: str,
        gating: str,
        top_k: int,
        renormalise: bool,
        aux_type: str,
    ):
        super().__init__()
        self.features = (
            PatchMixFeatures(input_len, hidden, num_experts) if features == "eq5" else DecompositionFeatures()
        )
        self.node_pool = nn.Linear(num_nodes, 1)  # -> X_h, one summary per sample
        self.w_gate = nn.Linear(input_len, num_experts)  # W_r
        self.w_noise = nn.Linear(input_len, num_experts)  # W_noise
        self.gating = gating
        self.top_k = top_k
        self.renormalise = renormalise
        self.aux_type = aux_type

    def probabilities(self, series: torch.Tensor, tokens: list[torch.Tensor]) -> torch.Tensor:
        """R(X_h) of Eq. 6, (B, M): softmax of the gate logits, plus noise when training."""
        summary = self.node_pool(self.features(series, tokens).transpose(1, 2)).squeeze(-1)  # X_h (B, H)
        logits = self.w_gate(summary)
        if self.training:
            noise_std = F.softplus(self.w_noise(summary)) + NOISE_FLOOR
            logits = logits + torch.randn_like(logits) * noise_std
        return torch.softmax(logits, dim=-1)

    def forward(self, series: torch.Tensor, tokens: list[torch.Tensor]) -> Routing:
        """series (B, N, H) normalised values, tokens M x (B, N, H, C) -> Routing."""
        probs = self.probabilities(series, tokens)
        if self.gating == "noisy_topk":
            gates, selected = top_k_gates(probs, self.top_k, self.renormalise)
        else:
            gates, selected = probs, torch.ones_like(probs, dtype=torch.bool)
        return Routing(probs, gates, selected, balance_loss(probs, selected, self.aux_type))
