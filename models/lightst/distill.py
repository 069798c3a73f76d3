"""LightST's distillation losses: prediction-level KL and adaptive InfoNCE (paper Eqs. 6-7).

Shapes follow the model contract: predictions (B, F, N, 1), embeddings (B, F, N, d).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softmax_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float, dim: int) -> torch.Tensor:
    """KL(teacher || student) between softmax(x / tau) along `dim`, averaged over every other
    position (Algorithm 1 line 5; averaged, not summed, over nodes so the scale does not grow
    with N)."""
    log_student = F.log_softmax(student / tau, dim=dim)
    log_teacher = F.log_softmax(teacher / tau, dim=dim)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=dim).mean()


def adaptive_info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    candidates: torch.Tensor,
    is_positive: torch.Tensor,
    tau: float,
    adaptive: bool,
) -> torch.Tensor:
    """InfoNCE of each anchor against its positive and a bank of negatives (Eq. 7).

    anchor, positive: (..., M, d); candidates: (..., K, d), the negatives shared by the M
    anchors of a row; is_positive: (M, K) bool, True where candidate k is anchor m's own
    positive (left out of its negatives). Similarity is cosine / tau. With `adaptive`, each
    negative counts with weight (1 - cos(positive, negative)) / 2 (detached): pairs the teacher
    finds alike are pushed apart less (the paper's per-pair consistency strength).
    """
    anchor = F.normalize(anchor, dim=-1)
    positive = F.normalize(positive, dim=-1)
    candidates = F.normalize(candidates, dim=-1)
    positive_logit = (anchor * positive).sum(dim=-1, keepdim=True) / tau  # (..., M, 1)
    negative_logits = anchor @ candidates.transpose(-1, -2) / tau  # (..., M, K)
    if adaptive:
        with torch.no_grad():
            weight = (1.0 - positive @ candidates.transpose(-1, -2)) / 2.0
        negative_logits = negative_logits + weight.clamp_min(torch.finfo(weight.dtype).tiny).log()
    negative_logits = negative_logits.masked_fill(is_positive, float("-inf"))
    logits = torch.cat([positive_logit, negative_logits], dim=-1)
    return (torch.logsumexp(logits, dim=-1) - positive_logit.squeeze(-1)).mean()


def spatial_info_nce(
    student: torch.Tensor, teacher: torch.Tensor, tau: float, adaptive: bool, num_negatives: int | None
) -> torch.Tensor:
    """L_P: node n's student embedding against the teacher's E_gcn of node n (positive) and of
    other nodes at the same step (negatives). student, teacher: (B, F, N, d).

    num_negatives samples that many candidate nodes, shared by the batch, so memory is
    O(B F N K) instead of O(B F N^2); None uses every node.
    """
    num_nodes = teacher.shape[2]
    nodes = torch.arange(num_nodes, device=teacher.device)
    if num_negatives is None or num_negatives >= num_nodes:
        sampled = nodes
    else:
        sampled = torch.randperm(num_nodes, device=teacher.device)[:num_negatives]
    is_positive = nodes[:, None] == sampled[None, :]
    return adaptive_info_nce(student, teacher, teacher[:, :, sampled], is_positive, tau, adaptive)


def temporal_info_nce(student: torch.Tensor, teacher: torch.Tensor, tau: float, adaptive: bool) -> torch.Tensor:
    """L_E: node n's student embedding at step t against the teacher's E_tcn of node n at t
    (positive) and at the other steps t'' (negatives). student, teacher: (B, F, N, d)."""
    steps = teacher.shape[1]
    student_by_node = student.transpose(1, 2)  # (B, N, F, d)
    teacher_by_node = teacher.transpose(1, 2)
    is_positive = torch.eye(steps, dtype=torch.bool, device=teacher.device)
    return adaptive_info_nce(student_by_node, teacher_by_node, teacher_by_node, is_positive, tau, adaptive)
