"""Settings -> a resolved run plan: the model's config and the training loop's config.

The only place that merges a model's defaults, a campaign's settings and a variant's switches
(the registry applies the variant last). `plan_run` touches no data, so a campaign file is
checked by planning each of its settings exactly as a trial will, before anything expensive runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.loop import TRAIN_FIELDS, TrainConfig, make_train_config
from models.base import ConfigError
from models.config import as_dict, field_names
from models.registry import ModelEntry, get_model

# Settings of the run itself that a teacher shares with its student (never lr or batch size:
# a sweep over those must keep reusing one teacher).
TEACHER_SHARED_TRAIN_FIELDS = ("max_epochs", "patience", "seed", "device", "max_batches_per_epoch")


@dataclass(frozen=True)
class RunPlan:
    """A fully resolved run: the model's config and the training loop's config."""

    entry: ModelEntry
    model_config: Any
    train_config: TrainConfig

    @property
    def variant(self) -> str:
        return self.model_config.variant

    def settings(self) -> dict[str, Any]:
        """Every resolved setting, model and training loop together (for records)."""
        return {**as_dict(self.model_config), **as_dict(self.train_config)}


def plan_run(model: str, overrides: Mapping[str, Any] | None = None) -> RunPlan:
    """Resolve `overrides` into the model's config and the training config, validating both.

    A name that is neither a hyperparameter of the model nor a training setting raises
    ConfigError listing the valid names of both.
    """
    entry = get_model(model)
    overrides = dict(overrides or {})
    model_fields = set(field_names(entry.config_cls))
    unknown = [k for k in overrides if k not in model_fields and k not in TRAIN_FIELDS]
    if unknown:
        raise ConfigError(
            unknown[0],
            f"not a setting of model {entry.name} or of the training loop; model: {', '.join(field_names(entry.config_cls))}; "
            f"training: {', '.join(TRAIN_FIELDS)}",
        )
    model_config = entry.make_config({k: v for k, v in overrides.items() if k in model_fields})
    train_config = make_train_config(dict(entry.train_defaults), {k: v for k, v in overrides.items() if k in TRAIN_FIELDS})
    return RunPlan(entry, model_config, train_config)


def teacher_plan(plan: RunPlan) -> RunPlan | None:
    """The plan of the teacher this run's model needs, or None when it needs none."""
    link = plan.entry.teacher
    overrides = link.config(plan.model_config) if link is not None else None
    if link is None or overrides is None:
        return None
    shared = {k: getattr(plan.train_config, k) for k in TEACHER_SHARED_TRAIN_FIELDS}
    return plan_run(link.model, {**overrides, **shared})


def set_aside_by_variant(model: str, settings: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings that the chosen variant replaces: {name: (given, the variant's value)}, e.g. an
    ablation's base lambda1 = 4.2 that the variant w/o P-KD switches off. For --dry-run's plan."""
    entry = get_model(model)
    model_fields = set(field_names(entry.config_cls))
    return entry.variant_overrides({k: v for k, v in settings.items() if k in model_fields})
