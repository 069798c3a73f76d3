"""LightST's student: a graph-less per-node MLP, distilled from the GCN + TCN teacher.

Spec lightst.md sections 3-4. The student never sees the road graph: its inference cost is
linear in N. In training mode its forward also runs the teacher and returns the distillation
terms as `aux_loss` (lambda1 * L_KL + lambda2 * (L_P + L_E), Eq. 8); the training loop adds the
supervised loss L_S. In eval mode it runs the student alone.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from models.base import DAYS_PER_WEEK, ConfigError, DatasetMeta, ForecastModel, ModelOutput, time_indices
from models.blocks import ResidualMLP
from models.lightst.config import LightSTConfig
from models.lightst.distill import softmax_kl, spatial_info_nce, temporal_info_nce
from models.lightst.teacher import LightSTTeacher


def identity_embedding(count: int, dim: int) -> nn.Embedding:
    """A table of `count` learned identity vectors, Xavier-initialised as in STID."""
    table = nn.Embedding(count, dim)
    nn.init.xavier_uniform_(table.weight)
    return table


class LightSTStudent(ForecastModel):
    """Per-node MLP with identity embeddings, per-step embeddings E_s and a linear head.

    `teacher` is the trained LightSTTeacher, or None when no distillation term is on. A frozen
    teacher (the default) takes no gradient and stays in eval mode whatever mode the student is in.
    """

    def __init__(self, config: LightSTConfig, meta: DatasetMeta, teacher: LightSTTeacher | None = None):
        super().__init__()
        if config.distils and teacher is None:
            raise ConfigError("teacher", "this variant distils from a teacher; build it with the trained lightst_teacher")
        if (config.uses_spatial or config.uses_temporal) and meta.input_len != meta.output_len:
            raise ConfigError(
                "output_len", "embedding distillation aligns teacher and student steps by index: needs input_len == output_len"
            )
        self.config = config
        self.steps_per_day = meta.steps_per_day
        self.output_len = meta.output_len
        if config.sup_loss == "mse":
            self.supervised_loss = "masked_mse"  # the paper's Eq. 5

        # Input: window embedding + identity embeddings (STID-style), concatenated
        self.series_embedding = nn.Linear(meta.input_len, config.series_dim)
        embeddings = config.student_embeddings
        self.node_embedding = identity_embedding(meta.num_nodes, config.node_dim) if "node" in embeddings else None
        self.tod_embedding = identity_embedding(meta.steps_per_day, config.time_dim) if "tod" in embeddings else None
        self.dow_embedding = identity_embedding(DAYS_PER_WEEK, config.time_dim) if "dow" in embeddings else None
        tables = (self.node_embedding, self.tod_embedding, self.dow_embedding)
        width = config.series_dim + sum(table.embedding_dim for table in tables if table is not None)

        self.blocks = nn.Sequential(*(ResidualMLP(width, config.dropout) for _ in range(config.layers)))
        self.step_embedding = nn.Linear(width, meta.output_len * config.step_dim)  # -> E_s (B, F, N, d)
        self.head = nn.Linear(config.step_dim, 1)

        # Distillation: projection heads from the student's d to the teacher's, trained with the student
        # (teacher is not None whenever a term, hence a head, is on)
        use_temporal_projection = config.uses_temporal or (config.uses_kl and config.kl_on == "embedding")
        self.spatial_projection = nn.Linear(config.step_dim, teacher.hidden) if config.uses_spatial else None
        self.temporal_projection = nn.Linear(config.step_dim, teacher.hidden) if use_temporal_projection else None
        self.teacher = teacher if config.distils else None
        if self.teacher is not None:
            self.teacher.requires_grad_(config.teacher_trainable)
            self.teacher.train(config.teacher_trainable)

    def train(self, mode: bool = True) -> LightSTStudent:
        """Set train/eval mode; a frozen teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None and not self.config.teacher_trainable:
            self.teacher.eval()
        return self

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        """The MLP's per-node representation (B, N, width) of a history window."""
        batch, _, num_nodes, _ = history.shape
        parts = [self.series_embedding(history[..., 0].transpose(1, 2))]  # (B, N, H) -> (B, N, d_h)
        if self.node_embedding is not None:
            parts.append(self.node_embedding.weight.expand(batch, -1, -1))
        tod, dow = time_indices(history, self.steps_per_day)  # the last input step's slot
        if self.tod_embedding is not None:
            parts.append(self.tod_embedding(tod[:, -1])[:, None, :].expand(-1, num_nodes, -1))
        if self.dow_embedding is not None:
            parts.append(self.dow_embedding(dow[:, -1])[:, None, :].expand(-1, num_nodes, -1))
        return self.blocks(torch.cat(parts, dim=-1))

    def folded_head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The step embedding and the head, both linear, folded into one (width -> F) map.

        Inference only needs the prediction, so it skips the (B, F, N, d) embeddings E_s.
        """
        step_weight = self.step_embedding.weight.view(self.output_len, self.config.step_dim, -1)
        step_bias = self.step_embedding.bias.view(self.output_len, self.config.step_dim)
        head_weight = self.head.weight[0]  # (d,)
        return head_weight @ step_weight, step_bias @ head_weight + self.head.bias  # (F, width), (F,)

    def forward(self, history: torch.Tensor) -> ModelOutput:
        hidden = self.encode(history)  # (B, N, width)
        if not self.training:
            weight, bias = self.folded_head()
            return ModelOutput(prediction=(hidden @ weight.T + bias).transpose(1, 2).unsqueeze(-1))

        batch, num_nodes, _ = hidden.shape
        steps = self.step_embedding(hidden).view(batch, num_nodes, self.output_len, -1).transpose(1, 2)  # E_s
        prediction = self.head(steps)  # (B, F, N, 1)
        if self.teacher is None:
            return ModelOutput(prediction=prediction)
        return self.distill(history, prediction, steps)

    def distill(self, history: torch.Tensor, prediction: torch.Tensor, steps: torch.Tensor) -> ModelOutput:
        """The student's output with its distillation terms (Eq. 8 without L_S)."""
        config = self.config
        with contextlib.nullcontext() if config.teacher_trainable else torch.no_grad():
            teacher_output = self.teacher(history)
        gcn, tcn = teacher_output.extras["gcn_embedding"], teacher_output.extras["tcn_embedding"]

        terms: dict[str, torch.Tensor] = {}
        if config.uses_kl:  # Algorithm 1 line 5 (Eq. 6 when kl_on == "embedding")
            if config.kl_on == "prediction":
                terms["kl"] = softmax_kl(prediction, teacher_output.prediction, config.tau1, dim=1)
            else:
                terms["kl"] = softmax_kl(self.temporal_projection(steps), tcn, config.tau1, dim=-1)
        if config.uses_spatial:  # Eq. 7, L_P
            negatives = None if config.num_negatives == "all" else config.num_negatives
            terms["spatial"] = spatial_info_nce(self.spatial_projection(steps), gcn, config.tau2, config.adaptive, negatives)
        if config.uses_temporal:  # Eq. 7, L_E
            terms["temporal"] = temporal_info_nce(self.temporal_projection(steps), tcn, config.tau3, config.adaptive)

        weights = {"kl": config.lambda1, "spatial": config.lambda2, "temporal": config.lambda2}
        aux_loss = sum(weights[name] * value for name, value in terms.items())
        extras = {f"loss/{name}": value.detach() for name, value in terms.items()}
        return ModelOutput(prediction=prediction, aux_loss=aux_loss, extras=extras)

    def inference_parameters(self) -> int:
        """Parameters on the inference path: no teacher, no projection heads."""
        unused = [self.teacher, self.spatial_projection, self.temporal_projection]
        skipped = {id(p) for module in unused if module is not None for p in module.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in skipped)
