"""Hyperparameters of LightST's teacher and of the distilled student (spec lightst.md 2-7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from models.base import ConfigError

MAX_MLP_LAYERS = 5  # the depths the paper studies (Figure 4): 1..5


def _require_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(name, f"must be > 0, got {value}")


def _require_dropout(value: float, name: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(name, f"must be in [0, 1), got {value}")


@dataclass
class TeacherConfig:
    """The GCN + TCN teacher (paper Eqs. 1-4)."""

    variant: str = "full"
    hidden: int = 64  # d, the embedding width
    gcn_layers: int = 2  # L, message-passing layers (Eq. 3)
    tcn_layers: int = 2  # causal temporal convolutions (Eq. 4)
    kernel_size: int = 3  # f, the causal kernel over time
    dropout: float = 0.1
    input_norm: Literal["global", "window"] = "global"  # window: per-node z-score of the 12 inputs (Eq. 1)

    def validate(self) -> None:
        """Reject impossible sizes with the name of the setting at fault."""
        _require_positive(self, "hidden", "gcn_layers", "tcn_layers", "kernel_size")
        _require_dropout(self.dropout, "dropout")


@dataclass
class LightSTConfig:
    """The graph-less MLP student and its distillation from the teacher (paper Eqs. 5-8).

    The teacher it distils from is described by the three `teacher_*` fields. Each distillation
    term has a structural on/off switch (prediction_kd, spatial_kd, temporal_kd) besides its
    weight: the variants of the paper's ablation (Figure 3) turn terms off with these switches
    (spec 6, **D**), so that no searched lambda1 / lambda2 can bring an ablated term back. A term is
    in the loss when its switch is on and its weight is > 0.
    """

    variant: str = "full"
    # Student (spec 3)
    layers: int = 3  # L', residual MLP blocks, 1..5
    series_dim: int = 32  # d_h, embedding of the input window
    node_dim: int = 32
    time_dim: int = 32  # width of each of the time-of-day and day-of-week embeddings
    student_embeddings: tuple[Literal["node", "tod", "dow"], ...] = ("node", "tod", "dow")
    step_dim: int = 32  # width of the per-step embeddings E_s
    dropout: float = 0.15
    # Distillation (spec 4)
    lambda1: float = 10.0  # prediction-level KL weight
    lambda2: float = 1.0  # embedding-level (spatial + temporal) weight
    tau1: float = 1.0  # temperature of L_KL
    tau2: float = 0.05  # temperature of L_P
    tau3: float = 0.05  # temperature of L_E
    prediction_kd: bool = True  # L_KL (P-KD)
    spatial_kd: bool = True  # L_P (E-S)
    temporal_kd: bool = True  # L_E (E-T)
    adaptive: bool = True  # weight negatives by how unlike the teacher finds them
    num_negatives: int | Literal["all"] = 128  # sampled negative nodes of L_P
    kl_on: Literal["prediction", "embedding"] = "prediction"  # embedding: softmax over d of E_tcn vs projected E_s
    sup_loss: Literal["mae", "mse"] = "mae"
    teacher_trainable: bool = False
    predictor: Literal["student", "teacher"] = "student"  # teacher: the trial evaluates the teacher
    # The teacher this student distils from
    teacher_hidden: int = 64
    teacher_gcn_layers: int = 2
    teacher_input_norm: Literal["global", "window"] = "global"

    def validate(self) -> None:
        """Reject inconsistent settings with the name of the setting at fault."""
        if not 1 <= self.layers <= MAX_MLP_LAYERS:
            raise ConfigError("layers", f"must be in 1..{MAX_MLP_LAYERS}, got {self.layers}")
        _require_positive(self, "series_dim", "node_dim", "time_dim", "step_dim", "tau1", "tau2", "tau3")
        _require_dropout(self.dropout, "dropout")
        for name in ("lambda1", "lambda2"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0, got {getattr(self, name)}")
        if self.num_negatives != "all" and self.num_negatives < 1:
            raise ConfigError("num_negatives", f"must be >= 1 or 'all', got {self.num_negatives}")
        if len(set(self.student_embeddings)) != len(self.student_embeddings):
            raise ConfigError("student_embeddings", f"lists an embedding twice: {list(self.student_embeddings)}")
        if self.needs_teacher:
            try:
                TeacherConfig(**self.teacher_settings()).validate()
            except ConfigError as error:
                raise ConfigError(f"teacher_{error.field}", error.reason) from None

    @property
    def uses_kl(self) -> bool:
        """Whether the prediction-level KL term (Algorithm 1 line 5) is in the loss."""
        return self.predictor == "student" and self.prediction_kd and self.lambda1 > 0

    @property
    def uses_spatial(self) -> bool:
        """Whether the spatial InfoNCE term L_P (Eq. 7) is in the loss."""
        return self.predictor == "student" and self.spatial_kd and self.lambda2 > 0

    @property
    def uses_temporal(self) -> bool:
        """Whether the temporal InfoNCE term L_E (Eq. 7) is in the loss."""
        return self.predictor == "student" and self.temporal_kd and self.lambda2 > 0

    @property
    def distils(self) -> bool:
        """Whether any distillation term is in the student's loss."""
        return self.uses_kl or self.uses_spatial or self.uses_temporal

    @property
    def needs_teacher(self) -> bool:
        """Whether this configuration needs a trained teacher at all."""
        return self.predictor == "teacher" or self.distils

    def teacher_settings(self) -> dict[str, Any]:
        """The teacher's hyperparameters (overrides of TeacherConfig) that this student names."""
        return {"hidden": self.teacher_hidden, "gcn_layers": self.teacher_gcn_layers, "input_norm": self.teacher_input_norm}


def teacher_overrides(config: LightSTConfig) -> dict[str, Any] | None:
    """The TeacherLink mapping: the teacher's settings, or None when no teacher is needed."""
    return config.teacher_settings() if config.needs_teacher else None
