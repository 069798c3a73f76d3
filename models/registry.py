"""The model registry: names -> how to build a model, its hyperparameters and its variants.

Each model package registers a `ModelEntry` when imported; `models/__init__.py` imports them
all. A variant is a named set of hyperparameter switches, so that an ablation campaign can
select it by name and a table can show its display name. The variant is the ablation: its
switches are applied last, over the defaults and any explicit override.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import numpy as np

from models.base import ConfigError, DatasetMeta, ForecastModel
from models.config import apply_overrides, coerce, validated


@dataclass(frozen=True)
class Variant:
    """A named set of switches, e.g. Variant("wo_pta", "w/o PTA", {"temporal_attn": "vanilla"})."""

    name: str
    display: str
    switches: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TeacherLink:
    """A model that needs another, already trained model (LightST's student needs its teacher).

    `model` is the teacher's registry name; `config(student_config)` returns the teacher's
    hyperparameters, or None when this configuration needs no teacher (e.g. student only).
    The harness trains the teacher once per key and passes it to `build(..., teacher=...)`.
    """

    model: str
    config: Callable[[Any], dict[str, Any] | None]


# artifacts(model, history, target, batch_size) -> {kind: {array name: array}}: what a trained
# model leaves for the report besides its metrics, computed on one day of test windows
# (history (S, H, N, 3), target (S, F, N) in raw units). HEPHAESTUS leaves its routing.
ArtifactHook = Callable[[ForecastModel, np.ndarray, np.ndarray, int], dict[str, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class ModelEntry:
    """How to build one registered model.

    build(config, meta, teacher) -> ForecastModel; `teacher` is None unless `teacher` is set.
    train_defaults: the training-loop settings the paper uses (lr, batch_size, schedule, ...).
    artifacts: an optional ArtifactHook (the report draws each kind it knows, e.g. "routing").
    speed_reference: the variant whose inference time the efficiency table divides by
        (LightST: its teacher), or None.
    """

    name: str
    config_cls: type
    build: Callable[..., ForecastModel]
    variants: tuple[Variant, ...] = (Variant("full", "Full"),)
    description: str = ""
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_graph: bool = False
    teacher: TeacherLink | None = None
    artifacts: ArtifactHook | None = None
    speed_reference: str | None = None

    def variant(self, name: str) -> Variant:
        """The variant called `name`, or ConfigError listing the valid ones."""
        for v in self.variants:
            if v.name == name:
                return v
        valid = ", ".join(v.name for v in self.variants)
        raise ConfigError("variant", f"unknown variant {name!r} of model {self.name}; valid: {valid}")

    def split_variant(self, overrides: Mapping[str, Any] | None) -> tuple[Variant, dict[str, Any]]:
        """The variant that `overrides` names (or the config's default) and the other overrides."""
        explicit = dict(overrides or {})
        default = getattr(self.config_cls(), "variant", "full")
        return self.variant(str(explicit.pop("variant", default))), explicit

    def make_config(self, overrides: Mapping[str, Any] | None = None) -> Any:
        """Defaults <- explicit overrides <- the chosen variant's switches, then validated.

        The variant is the ablation, so its switches come last: a setting carried in from a base
        configuration (e.g. lambda1 from a sweep's best.yaml) can never undo it. What a variant
        replaces is reported by `variant_overrides`. The config class must have a `variant: str` field.
        """
        variant, explicit = self.split_variant(overrides)
        owner = f"model {self.name}"
        config = apply_overrides(self.config_cls(), explicit, owner)
        return validated(apply_overrides(config, {**variant.switches, "variant": variant.name}, owner))

    def variant_overrides(self, overrides: Mapping[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
        """The explicitly given settings that the chosen variant replaces: {name: (given, variant's value)}.

        A given value equal to the variant's (after type conversion) is not reported. For a
        campaign's --dry-run plan, so that a user sees which base settings an ablation sets aside.
        """
        variant, explicit = self.split_variant(overrides)
        hints = get_type_hints(self.config_cls)
        replaced = {}
        for name, switched in variant.switches.items():
            if name in explicit and coerce(explicit[name], hints[name], name) != coerce(switched, hints[name], name):
                replaced[name] = (explicit[name], switched)
        return replaced

    def instantiate(self, config: Any, meta: DatasetMeta, teacher: ForecastModel | None = None) -> ForecastModel:
        """Build the model from a resolved config for a dataset (and its trained teacher)."""
        if self.needs_graph and meta.adjacency is None:
            raise ConfigError("dataset", f"model {self.name} needs a road graph and dataset {meta.name} has none")
        if self.teacher is not None:
            return self.build(config, meta, teacher=teacher)
        return self.build(config, meta)


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry (names are lower-case and unique)."""
    key = entry.name.lower()
    if key in _REGISTRY:
        raise ValueError(f"model {key!r} registered twice")
    _REGISTRY[key] = entry
    return entry


def model_names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str) -> ModelEntry:
    """The entry called `name` (case-insensitive), or ConfigError listing the valid names."""
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError("model", f"unknown model {name!r}; valid: {', '.join(model_names())}") from None


def build_model(
    name: str,
    meta: DatasetMeta,
    overrides: Mapping[str, Any] | None = None,
    teacher: ForecastModel | None = None,
) -> ForecastModel:
    """Build a registered model for a dataset from hyperparameter overrides."""
    entry = get_model(name)
    return entry.instantiate(entry.make_config(overrides), meta, teacher)
