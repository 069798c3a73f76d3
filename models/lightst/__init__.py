"""LightST (spec shared/specs/lightst.md): a GCN + TCN teacher distilled into a graph-less MLP.

Registers two models:
- `lightst_teacher`: the teacher alone (needs the road graph);
- `lightst`: the student trained with distillation. Its TeacherLink tells the harness which
  teacher to train (once, cached) and hand to `build`; its variants are the paper's ablation
  (Figure 3) plus `teacher`, which evaluates the cached teacher itself.
"""

from __future__ import annotations

from models.base import ConfigError, DatasetMeta, ForecastModel
from models.lightst.config import LightSTConfig, TeacherConfig, teacher_overrides
from models.lightst.student import LightSTStudent
from models.lightst.teacher import LightSTTeacher, normalized_adjacency
from models.registry import ModelEntry, TeacherLink, Variant, register

# Spec section 5: Adam lr 3e-3, MultiStepLR gamma 0.3, grad clip 5, patience 20, batch 32.
TRAIN_DEFAULTS = {
    "lr": 3e-3,
    "lr_schedule": "multistep",
    "lr_gamma": 0.3,
    "lr_milestones": (20, 40, 55, 70),
    "batch_size": 32,
    "patience": 20,
    "grad_clip": 5.0,
}

# Spec section 6: each ablation turns distillation terms off structurally, whatever the weights.
NO_EMBEDDING_KD = {"spatial_kd": False, "temporal_kd": False}
VARIANTS = (
    Variant("full", "Full"),
    Variant("wo_e_kd", "w/o E-KD", NO_EMBEDDING_KD),
    Variant("wo_e_s", "w/o E-S", {"spatial_kd": False}),
    Variant("wo_e_t", "w/o E-T", {"temporal_kd": False}),
    Variant("wo_p_kd", "w/o P-KD", {"prediction_kd": False}),
    Variant("student_only", "Student only", {"prediction_kd": False, **NO_EMBEDDING_KD}),
    Variant("teacher", "Teacher (GCN+TCN)", {"predictor": "teacher"}),
)


def build_lightst(config: LightSTConfig, meta: DatasetMeta, teacher: ForecastModel | None = None) -> ForecastModel:
    """The distilled student, or, for predictor == "teacher", the trained teacher itself.

    The teacher returned as a model is marked `trainable = False` (a trial only evaluates it).
    """
    if teacher is not None and not isinstance(teacher, LightSTTeacher):
        raise ConfigError("teacher", f"expected a LightSTTeacher, got {type(teacher).__name__}")
    if config.predictor == "teacher":
        if teacher is None:
            raise ConfigError("predictor", "the teacher variant needs the trained lightst_teacher")
        teacher.trainable = False
        return teacher
    return LightSTStudent(config, meta, teacher)


register(
    ModelEntry(
        name="lightst_teacher",
        config_cls=TeacherConfig,
        build=LightSTTeacher,
        description="LightST's teacher: time-aware GCN over the road graph + causal TCN",
        train_defaults=TRAIN_DEFAULTS,
        needs_graph=True,
    )
)
register(
    ModelEntry(
        name="lightst",
        config_cls=LightSTConfig,
        build=build_lightst,
        variants=VARIANTS,
        description="LightST: graph-less MLP student distilled from a GCN + TCN teacher",
        train_defaults=TRAIN_DEFAULTS,
        teacher=TeacherLink(model="lightst_teacher", config=teacher_overrides),
        speed_reference="teacher",
    )
)

__all__ = [
    "LightSTConfig",
    "LightSTStudent",
    "LightSTTeacher",
    "TeacherConfig",
    "build_lightst",
    "normalized_adjacency",
    "teacher_overrides",
]
