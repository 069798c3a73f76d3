"""Campaign files, parsed and validated in full before anything runs: sweeps and ablations as
typed specs.

Every problem is a `SpecError` whose one-line message names the file and the field, e.g.
"search_spaces/h.yaml: space.top_k.high: names 'num_experts', which is not an earlier
parameter". Model and training settings are checked by resolving them exactly as a trial will
(`harness.plan.plan_run`), so a spec that validates cannot fail on a lone setting later.
Command-line overrides (`--set`, `--datasets`, `--data-option`, ...) are applied to the file's
content before it is validated, so they are checked the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from harness.data import DataError, get_dataset_info
from harness.errors import SpecError, UsageError
from harness.plan import plan_run
from harness.loop import TRAIN_FIELDS
from harness.yamlfile import load_yaml
from models.base import ConfigError
from models.config import field_names
from models.registry import get_model

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
SAMPLERS = ("tpe", "random", "gp", "grid", "nsga2")
SCHEDULERS = ("fifo", "asha")
PARAM_TYPES = ("float", "int", "categorical")
EPOCH_METRICS = ("val_mae", "val_rmse", "val_mape")
COST_METRICS = ("infer_ms", "parameters", "train_s_per_iter", "peak_mem_mb")
OBJECTIVE_METRICS = EPOCH_METRICS + COST_METRICS

# --smoke: tiny synthetic data, 2 short epochs, few trials; the whole path in a minute or two,
# in its own folder (<name>-smoke), so it never mixes with a real campaign.
SMOKE_SETTINGS = {"max_epochs": 2, "patience": 2, "max_batches_per_epoch": 8, "batch_size": 16}
SMOKE_DATA = {"nodes": 12, "days": 6, "seed": 0}
SMOKE_TRIALS = 4
SMOKE_SEEDS = 2
SMOKE_SUFFIX = "-smoke"

SHARED_KEYS = ("name", "model", "datasets", "data_dir", "data_options", "resources", "max_concurrent", "max_failures")
SWEEP_KEYS = SHARED_KEYS + ("fixed", "space", "objective", "search")
GRID_KEYS = SHARED_KEYS + ("seeds", "base", "base_from")
ABLATION_KEYS = GRID_KEYS + ("reference", "variants")
SENSITIVITY_KEYS = GRID_KEYS + ("vary",)


@dataclass(frozen=True)
class Overrides:
    """What the command line changes in a campaign file (applied before validation).

    settings: `--set key=value` (into a sweep's `fixed` or an ablation's `base`); datasets:
    `--datasets a,b`; data_options: `--data-option key=value`; data_dir: `--data-dir`;
    num_samples: `--num-samples` (sweeps); smoke: `--smoke`.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None
    data_options: Mapping[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    num_samples: int | None = None
    smoke: bool = False


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter; `low`/`high` may name an earlier parameter."""

    name: str
    type: str
    low: float | int | str | None = None
    high: float | int | str | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        out = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out


def grid_values(params: tuple[ParamSpec, ...]) -> dict[str, list[Any]]:
    """Every value of every parameter, for the grid sampler (validated to be finite)."""
    grid: dict[str, list[Any]] = {}
    for p in params:
        if p.type == "categorical":
            grid[p.name] = list(p.choices)
        elif p.type == "int":
            grid[p.name] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
        else:
            grid[p.name] = [float(v) for v in np.arange(p.low, p.high + p.step / 2, p.step)]
    return grid


def grid_size(params: tuple[ParamSpec, ...]) -> int:
    """Number of points of the full grid."""
    return int(np.prod([len(v) for v in grid_values(params).values()]))


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "min" | "max"


@dataclass(frozen=True)
class Scheduler:
    type: str = "fifo"
    grace_period: int = 5
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True, kw_only=True)
class CampaignSpec:
    """What every campaign file says: its name, model, datasets, data, resources and limits.

    `raw` is the file's mapping (after command-line overrides), kept for the manifest.
    """

    kind: ClassVar[str] = ""
    name: str
    model: str
    datasets: tuple[str, ...]
    source: str
    data_dir: str | None = None
    data_options: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = Resources()
    max_concurrent: int = 4
    max_failures: int = 2
    smoke: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What decides which trials run and how (for --resume's consistency check)."""
        return {"kind": self.kind, "model": self.model, "datasets": list(self.datasets), "data_options": dict(self.data_options), "smoke": self.smoke}


@dataclass(frozen=True, kw_only=True)
class SweepSpec(CampaignSpec):
    """A hyperparameter search: one Optuna study per dataset over `space`, `fixed` held."""

    kind: ClassVar[str] = "sweep"
    fixed: Mapping[str, Any] = field(default_factory=dict)
    space: tuple[ParamSpec, ...] = ()
    objectives: tuple[Objective, ...] = (Objective("val_mae", "min"),)
    sampler: str = "tpe"
    num_samples: int = 20
    search_seed: int = 0
    scheduler: Scheduler = Scheduler()
    user_fixed: Mapping[str, Any] = field(default_factory=dict)  # `fixed` without the smoke settings

    @property
    def total_trials(self) -> int:
        return self.num_samples * len(self.datasets)

    def identity(self) -> dict[str, Any]:
        return {
            **super().identity(),
            "fixed": dict(self.fixed),
            "space": [p.as_dict() | {"name": p.name} for p in self.space],
            "objectives": [[o.metric, o.mode] for o in self.objectives],
            "sampler": self.sampler,
            "num_samples": self.num_samples,
            "search_seed": self.search_seed,
            "scheduler": [self.scheduler.type, self.scheduler.grace_period, self.scheduler.reduction_factor],
        }


@dataclass(frozen=True, kw_only=True)
class GridSpec(CampaignSpec):
    """A campaign whose trials are known in advance: a grid of cells over datasets and seeds,
    each on a base configuration: `dataset_base[dataset]` (from `base_from`, a sweep's best
    configuration of that dataset) <- `base` <- the cell's own settings."""

    seeds: tuple[int, ...] = (0,)
    base: Mapping[str, Any] = field(default_factory=dict)
    base_from: str | None = None
    dataset_base: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def base_for(self, dataset: str) -> dict[str, Any]:
        """A dataset's base settings (seed not included)."""
        return {**self.dataset_base.get(dataset, {}), **self.base}

    def identity(self) -> dict[str, Any]:
        return {
            **super().identity(),
            "base": dict(self.base),
            "dataset_base": {k: dict(v) for k, v in self.dataset_base.items()},
            "seeds": list(self.seeds),
        }


@dataclass(frozen=True, kw_only=True)
class AblationSpec(GridSpec):
    """An ablation campaign: every variant x dataset x seed is one trial. The model applies the
    variant's own switches last, so an ablated component stays ablated whatever the base says."""

    kind: ClassVar[str] = "ablation"
    reference: str = ""
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def total_trials(self) -> int:
        return len(self.variants) * len(self.datasets) * len(self.seeds)

    def settings_for(self, dataset: str, display: str, seed: int) -> dict[str, Any]:
        """The settings of one cell, before the model applies its variant's switches."""
        return {**self.base_for(dataset), **self.variants[display], "seed": seed}

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "variants": {k: dict(v) for k, v in self.variants.items()}}


@dataclass(frozen=True, kw_only=True)
class SensitivitySpec(GridSpec):
    """A one-at-a-time sensitivity study (HEPHAESTUS Figure 3, LightST Figure 4): each parameter
    of `vary` takes each of its values with every other setting at the base. The base point is
    one trial per dataset and seed, shared by every parameter. `points[dataset]` lists the
    (parameter, value) pairs that differ from that dataset's base and are valid there; `skipped`
    the values that violate a constraint at the base (e.g. top_k > num_experts), with the reason."""

    kind: ClassVar[str] = "sensitivity"
    vary: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    points: Mapping[str, tuple[tuple[str, Any], ...]] = field(default_factory=dict)
    skipped: tuple[Mapping[str, Any], ...] = ()

    @property
    def total_trials(self) -> int:
        return sum(1 + len(self.points[d]) for d in self.datasets) * len(self.seeds)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "vary": {k: list(v) for k, v in self.vary.items()}}


Campaign = SweepSpec | AblationSpec | SensitivitySpec


def identity_difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first setting in which two spec identities differ ('fixed.lr: 0.001 -> 0.002'), or None."""
    for key in sorted(set(stored) | set(current)):
        before, after = stored.get(key), current.get(key)
        if json.dumps(before, sort_keys=True, default=str) != json.dumps(after, sort_keys=True, default=str):
            if isinstance(before, Mapping) and isinstance(after, Mapping):
                inner = identity_difference(before, after)
                return f"{key}.{inner}" if inner else key
            return f"{key}: {json.dumps(before, default=str)} -> {json.dumps(after, default=str)}"
    return None


# --------------------------------------------------------------------------------------------
# Small checks that every section uses.


class _Checker:
    """Raises SpecError naming the file; one instance per file."""

    def __init__(self, source: str | Path):
        self.source = str(source)

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(self.source, where, message)

    def mapping(self, value: Any, where: str, allow_none: bool = True) -> dict[str, Any]:
        if value is None and allow_none:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        return dict(value)

    def keys(self, mapping: Mapping[str, Any], allowed: tuple[str, ...], where: str, hint: str = "") -> None:
        for key in mapping:
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else str(key), f"unknown key{hint}; valid: {', '.join(allowed)}")

    def number(self, value: Any, where: str, integer: bool = False, minimum: float | None = None) -> Any:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise self.fail(where, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {value}")
        return value

    def settings(self, model: str, settings: Mapping[str, Any], where: str) -> None:
        """Resolve settings exactly as a trial will, turning ConfigError into SpecError."""
        try:
            plan_run(model, settings)
        except ConfigError as error:
            raise self.fail(f"{where}.{error.field}" if error.field in settings else where, error.reason) from None


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (safe loading; never executes anything)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "", "no such file")
    try:
        content = load_yaml(path.read_text())
    except UnicodeDecodeError:
        raise SpecError(path, "", "not a text file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(path, where, f"invalid YAML: {problem}") from None
    if content is None:
        raise SpecError(path, "", "the file is empty")
    if not isinstance(content, Mapping):
        raise SpecError(path, "", f"must be a mapping of keys to values, got {type(content).__name__}")
    return dict(content)


def _check_overrides(model: str, overrides: Overrides) -> None:
    """`--set` values checked on their own first, so that an error names the flag, not the file."""
    try:
        plan_run(model, overrides.settings)
    except ConfigError as error:
        raise UsageError(f"--set {error.field}: {error.reason}") from None
    if overrides.num_samples is not None and overrides.num_samples < 1:
        raise UsageError(f"--num-samples: must be >= 1, got {overrides.num_samples}")


def _open(path: str | Path, keys: tuple[str, ...], other_key: str, other_kind: str, overrides: Overrides) -> tuple[_Checker, dict[str, Any], dict[str, Any]]:
    """Read a campaign file, apply the command line, check the keys every campaign shares.

    A file holding `other_key` is most likely the other kind of campaign: the unknown-key
    error then says which command it is for.
    """
    check = _Checker(path)
    raw = read_mapping(path)
    check.keys(raw, keys, "", f" (this looks like {other_kind})" if other_key in raw else "")
    if overrides.datasets is not None:
        raw["datasets"] = list(overrides.datasets)
    if overrides.data_options:
        raw["data_options"] = {**check.mapping(raw.get("data_options"), "data_options"), **overrides.data_options}
    if overrides.data_dir is not None:
        raw["data_dir"] = overrides.data_dir
    return check, raw, _shared(check, raw, overrides)


def _shared(check: _Checker, raw: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The keys sweeps and ablations share: name, model, datasets, data, resources, limits."""
    for key in ("name", "model", "datasets"):
        if key not in raw:
            raise check.fail(key, "missing (required)")
    name = raw["name"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in (".", ".."):
        raise check.fail("name", f"must be a plain folder name (letters, digits, . _ -), got {name!r}")
    if not isinstance(raw["model"], str):
        raise check.fail("model", f"must be a model name, got {raw['model']!r}")
    try:
        model = get_model(raw["model"]).name
    except ConfigError as error:
        raise check.fail("model", error.reason) from None
    _check_overrides(model, overrides)
    datasets = raw["datasets"]
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list) or not datasets:
        raise check.fail("datasets", "must be a non-empty list of dataset names")
    names = []
    for i, dataset in enumerate(datasets):
        try:
            names.append(get_dataset_info(str(dataset)).name)
        except DataError as error:
            raise check.fail(f"datasets[{i}]", str(error)) from None
    if len(set(names)) != len(names):
        raise check.fail("datasets", "lists a dataset twice")
    data_dir = raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise check.fail("data_dir", f"must be a path, got {data_dir!r}")
    data_options = check.mapping(raw.get("data_options"), "data_options")
    if overrides.smoke:
        names, data_options = ["synthetic"], {**data_options, **SMOKE_DATA}
    resources = check.mapping(raw.get("resources"), "resources")
    check.keys(resources, ("cpu", "gpu"), "resources")
    cpu = check.number(resources.get("cpu", 1), "resources.cpu", minimum=0)
    gpu = check.number(resources.get("gpu", 0), "resources.gpu", minimum=0)
    if cpu == 0 and gpu == 0:
        raise check.fail("resources", "a trial needs some cpu or gpu")
    return {
        "name": name + (SMOKE_SUFFIX if overrides.smoke else ""),
        "model": model,
        "datasets": tuple(names),
        "data_dir": data_dir,
        "data_options": data_options,
        "resources": Resources(float(cpu), float(gpu)),
        "max_concurrent": check.number(raw.get("max_concurrent", 4), "max_concurrent", integer=True, minimum=1),
        "max_failures": check.number(raw.get("max_failures", 2), "max_failures", integer=True, minimum=0),
        "smoke": overrides.smoke,
        "raw": raw,
    }


# --------------------------------------------------------------------------------------------
# Sweeps.


def _param(check: _Checker, name: str, raw: Any, earlier: dict[str, ParamSpec]) -> ParamSpec:
    where = f"space.{name}"
    spec = check.mapping(raw, where, allow_none=False)
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise check.fail(f"{where}.type", f"must be one of {', '.join(PARAM_TYPES)}, got {kind!r}")
    if kind == "categorical":
        check.keys(spec, ("type", "choices"), where)
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise check.fail(f"{where}.choices", "must be a non-empty list")
        if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise check.fail(f"{where}.choices", "must be numbers, strings, booleans or null (search a list-valued setting through one that derives it, e.g. num_experts for patch_sizes)")
        if len(set(map(repr, choices))) != len(choices):
            raise check.fail(f"{where}.choices", "lists a value twice")
        return ParamSpec(name, kind, choices=tuple(choices))
    check.keys(spec, ("type", "low", "high", "log", "step"), where)
    integer = kind == "int"
    bounds = {}
    for side in ("low", "high"):
        if side not in spec:
            raise check.fail(f"{where}.{side}", "missing (required)")
        value = spec[side]
        if isinstance(value, str):
            if value not in earlier:
                raise check.fail(f"{where}.{side}", f"names {value!r}, which is not an earlier parameter of the space")
            if _value_range(earlier[value]) is None:
                raise check.fail(f"{where}.{side}", f"names {value!r}, which is not numeric or is itself conditional")
        else:
            check.number(value, f"{where}.{side}", integer=integer)
        bounds[side] = value
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise check.fail(f"{where}.log", f"must be true or false, got {log!r}")
    step = spec.get("step")
    if step is not None:
        check.number(step, f"{where}.step", integer=integer)
        if step <= 0:
            raise check.fail(f"{where}.step", f"must be > 0, got {step}")
        if log and (not integer or step != 1):
            raise check.fail(f"{where}.step", "cannot be combined with log")
    param = ParamSpec(name, kind, bounds["low"], bounds["high"], log, step)
    low_max = _bound_range(param.low, earlier)[1]
    high_min = _bound_range(param.high, earlier)[0]
    if low_max > high_min:
        fixed = all(isinstance(b, (int, float)) for b in (param.low, param.high))  # else a bound names another parameter
        raise check.fail(where, f"low ({param.low}) {'exceeds' if fixed else 'can exceed'} high ({param.high})")
    if log and _bound_range(param.low, earlier)[0] <= 0:
        raise check.fail(f"{where}.low", "must be > 0 with log: true")
    return param


def _value_range(param: ParamSpec) -> tuple[float, float] | None:
    """Smallest and largest value a parameter can take (None if not numeric)."""
    if param.type == "categorical":
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in param.choices):
            return min(param.choices), max(param.choices)
        return None
    if isinstance(param.low, str) or isinstance(param.high, str):
        return None  # a bound that is itself conditional: resolved by _bound_range's caller
    return param.low, param.high


def _bound_range(bound: Any, earlier: dict[str, ParamSpec]) -> tuple[float, float]:
    if isinstance(bound, str):
        resolved = _value_range(earlier[bound])
        assert resolved is not None  # checked in _param
        return resolved
    return bound, bound


def _objectives(check: _Checker, raw: Any) -> tuple[Objective, ...]:
    items = raw if isinstance(raw, list) else [raw if raw is not None else {"metric": "val_mae", "mode": "min"}]
    if not items:
        raise check.fail("objective", "must name at least one metric")
    out = []
    for i, item in enumerate(items):
        where = "objective" if not isinstance(raw, list) else f"objective[{i}]"
        item = check.mapping(item, where, allow_none=False)
        check.keys(item, ("metric", "mode"), where)
        metric, mode = item.get("metric"), item.get("mode", "min")
        if metric not in OBJECTIVE_METRICS:
            raise check.fail(f"{where}.metric", f"unknown metric {metric!r}; valid: {', '.join(OBJECTIVE_METRICS)}")
        if mode not in ("min", "max"):
            raise check.fail(f"{where}.mode", f"must be min or max, got {mode!r}")
        out.append(Objective(metric, mode))
    if len({o.metric for o in out}) != len(out):
        raise check.fail("objective", "lists a metric twice")
    return tuple(out)


def _scheduler(check: _Checker, raw: Any, objectives: tuple[Objective, ...]) -> Scheduler:
    scheduler_raw = check.mapping(raw, "search.scheduler")
    check.keys(scheduler_raw, ("type", "grace_period", "reduction_factor"), "search.scheduler")
    scheduler_type = scheduler_raw.get("type", "fifo")
    if scheduler_type not in SCHEDULERS:
        raise check.fail("search.scheduler.type", f"unknown scheduler {scheduler_type!r}; valid: {', '.join(SCHEDULERS)}")
    if scheduler_type == "asha" and (len(objectives) > 1 or objectives[0].metric not in EPOCH_METRICS):
        raise check.fail("search.scheduler.type", f"asha stops trials on a per-epoch metric: use one objective among {', '.join(EPOCH_METRICS)}")
    return Scheduler(
        scheduler_type,
        check.number(scheduler_raw.get("grace_period", 5), "search.scheduler.grace_period", integer=True, minimum=1),
        check.number(scheduler_raw.get("reduction_factor", 3), "search.scheduler.reduction_factor", minimum=1.01),
    )


def parse_sweep(path: str | Path, overrides: Overrides = Overrides()) -> SweepSpec:
    """Read and validate a sweep file (see search_spaces/*.yaml) with the command line's overrides."""
    check, raw, shared = _open(path, SWEEP_KEYS, "variants", "an ablation file: run python -m harness.ablate", overrides)
    model = shared["model"]
    fixed = {**check.mapping(raw.get("fixed"), "fixed"), **overrides.settings}
    check.settings(model, fixed, "fixed")
    valid = set(field_names(get_model(model).config_cls)) | set(TRAIN_FIELDS)
    space_raw = check.mapping(raw.get("space"), "space", allow_none=False) if "space" in raw else None
    if not space_raw:
        raise check.fail("space", "missing or empty: name at least one hyperparameter to search")
    space: dict[str, ParamSpec] = {}
    for name, spec in space_raw.items():
        if name not in valid:
            raise check.fail(f"space.{name}", f"not a setting of model {model} or of the training loop; valid: {', '.join(sorted(valid))}")
        if name in fixed:
            raise check.fail(f"space.{name}", "is also in `fixed`" + (" (set by --set)" if name in overrides.settings else ""))
        space[name] = _param(check, name, spec, space)
    for param in space.values():  # each extreme value must be a valid setting
        for probe in _probes(param, space):
            check.settings(model, {**fixed, **probe}, "space")
    objectives = _objectives(check, raw.get("objective"))
    search = check.mapping(raw.get("search"), "search")
    check.keys(search, ("sampler", "num_samples", "seed", "scheduler"), "search")
    sampler = search.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise check.fail("search.sampler", f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if sampler == "grid" and any(p.type == "float" and p.step is None for p in space.values()):
        raise check.fail("search.sampler", "grid needs categorical, int or stepped float parameters")
    if sampler == "grid" and any(isinstance(p.low, str) or isinstance(p.high, str) for p in space.values()):
        raise check.fail("search.sampler", "grid cannot search a conditional space (a bound names another parameter)")
    points = grid_size(tuple(space.values())) if sampler == "grid" else None
    num_samples = check.number(search.get("num_samples", points or 20), "search.num_samples", integer=True, minimum=1)
    if overrides.num_samples is not None:
        num_samples = overrides.num_samples
    if points is not None and num_samples > points:  # the grid sampler would only repeat points
        if overrides.num_samples is not None:
            raise UsageError(f"--num-samples: {num_samples} is more than the grid's {points} points of {path}")
        raise check.fail("search.num_samples", f"{num_samples} is more than the grid's {points} points (leave it out to run each point once)")
    seed = check.number(search.get("seed", 0), "search.seed", integer=True)
    scheduler = _scheduler(check, search.get("scheduler"), objectives)
    user_fixed = dict(fixed)
    if overrides.smoke:
        fixed = {**fixed, **SMOKE_SETTINGS}
        num_samples = min(num_samples, SMOKE_TRIALS)
        if scheduler.type == "asha":
            scheduler = Scheduler("asha", 1, scheduler.reduction_factor)
    return SweepSpec(
        source=str(path),
        fixed=fixed,
        user_fixed=user_fixed,
        space=tuple(space.values()),
        objectives=objectives,
        sampler=sampler,
        num_samples=num_samples,
        search_seed=seed,
        scheduler=scheduler,
        **shared,
    )


def _probes(param: ParamSpec, space: dict[str, ParamSpec]) -> list[dict[str, Any]]:
    """Settings that put `param` at its extremes (with the parameters its bounds name)."""
    if param.type == "categorical":
        return [{param.name: c} for c in param.choices]
    cast = int if param.type == "int" else float
    references = {b for b in (param.low, param.high) if isinstance(b, str)}
    contexts = [{}] + [{r: v} for r in references for v in _bound_range(r, space)]
    probes = []
    for context in contexts:
        low = context.get(param.low, param.low) if isinstance(param.low, str) else param.low
        high = context.get(param.high, param.high) if isinstance(param.high, str) else param.high
        if isinstance(low, str) or isinstance(high, str):
            continue  # this bound's reference is not pinned in this context
        probes += [{**context, param.name: cast(low)}, {**context, param.name: cast(high)}]
    return probes


# --------------------------------------------------------------------------------------------
# Ablations.


def read_best_config(check: _Checker, base_from: Any, spec_path: str | Path, model: str, datasets: tuple[str, ...], smoke: bool) -> dict[str, dict[str, Any]]:
    """Each dataset's base settings from a sweep's best.yaml (`base_from`).

    A dataset the sweep searched gets its own best configuration; any other gets the file's
    overall `config`. A best.yaml of a --smoke sweep is only accepted by a --smoke campaign.
    """
    if not isinstance(base_from, str):
        raise check.fail("base_from", f"must be a path to a sweep's best.yaml, got {base_from!r}")
    best_path = Path(base_from)
    if not best_path.is_absolute() and not best_path.exists():
        best_path = Path(spec_path).parent / base_from
    if not best_path.is_file():
        raise check.fail("base_from", f"no such file: {base_from}")
    best = read_mapping(best_path)
    if best.get("model", model) != model:
        raise check.fail("base_from", f"{best_path} is a configuration of model {best.get('model')}, not {model}")
    if best.get("smoke") and not smoke:
        raise check.fail("base_from", f"{best_path} comes from a --smoke sweep (chosen on tiny data); use a real sweep's best.yaml or run with --smoke")
    overall = check.mapping(best.get("config", {}), f"base_from ({best_path}).config")
    per_dataset = check.mapping(best.get("per_dataset"), f"base_from ({best_path}).per_dataset")
    bases = {}
    for dataset in datasets:
        entry = check.mapping(per_dataset.get(dataset, {}), f"base_from ({best_path}).per_dataset.{dataset}")
        config = check.mapping(entry.get("config", overall), f"base_from ({best_path}).per_dataset.{dataset}.config")
        bases[dataset] = {k: v for k, v in config.items() if k != "seed"}
    return bases


def _grid(check: _Checker, raw: dict[str, Any], path: str | Path, shared: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The parts every grid campaign has: seeds, base, base_from (validated per dataset)."""
    model, datasets = shared["model"], shared["datasets"]
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise check.fail("seeds", "must be a non-empty list of integers")
    for i, seed in enumerate(seeds):
        check.number(seed, f"seeds[{i}]", integer=True)
    if len(set(seeds)) != len(seeds):
        raise check.fail("seeds", "lists a seed twice")
    base_from = raw.get("base_from")
    dataset_base = read_best_config(check, base_from, path, model, datasets, overrides.smoke) if base_from is not None else {}
    base = {**check.mapping(raw.get("base"), "base"), **overrides.settings}
    if "seed" in base:
        raise check.fail("base.seed", "seeds come from the `seeds` list")
    for dataset in datasets:
        check.settings(model, {**dataset_base.get(dataset, {}), **base}, "base")
    if overrides.smoke:
        base, seeds = {**base, **SMOKE_SETTINGS}, seeds[:SMOKE_SEEDS]
    return {"seeds": tuple(seeds), "base": base, "base_from": base_from, "dataset_base": dataset_base}


def parse_ablation(path: str | Path, overrides: Overrides = Overrides()) -> AblationSpec:
    """Read and validate an ablation campaign file (see ablations/*.yaml) with the command line's overrides."""
    check, raw, shared = _open(path, ABLATION_KEYS, "space", "a sweep file: run python -m harness.sweep", overrides)
    grid = _grid(check, raw, path, shared, overrides)
    variants_raw = check.mapping(raw.get("variants"), "variants", allow_none=False) if "variants" in raw else None
    if not variants_raw:
        raise check.fail("variants", "missing or empty: name at least one variant")
    variants: dict[str, dict[str, Any]] = {}
    for display, variant_overrides in variants_raw.items():
        variant_overrides = check.mapping(variant_overrides, f"variants.{display}")
        if "seed" in variant_overrides:
            raise check.fail(f"variants.{display}.seed", "seeds come from the `seeds` list")
        for dataset in shared["datasets"]:
            check.settings(shared["model"], {**grid["dataset_base"].get(dataset, {}), **grid["base"], **variant_overrides}, f"variants.{display}")
        variants[str(display)] = variant_overrides
    reference = raw.get("reference", next(iter(variants)))
    if reference not in variants:
        raise check.fail("reference", f"{reference!r} is not among the variants: {', '.join(variants)}")
    return AblationSpec(source=str(path), reference=str(reference), variants=variants, **grid, **shared)


def parse_sensitivity(path: str | Path, overrides: Overrides = Overrides()) -> SensitivitySpec:
    """Read and validate a one-at-a-time sensitivity study (a file with `vary:`, e.g.
    search_spaces/hephaestus_fig3.yaml) with the command line's overrides."""
    check, raw, shared = _open(path, SENSITIVITY_KEYS, "variants", "an ablation file: run python -m harness.ablate", overrides)
    model = shared["model"]
    grid = _grid(check, raw, path, shared, overrides)
    vary_raw = check.mapping(raw.get("vary"), "vary", allow_none=False) if "vary" in raw else None
    if not vary_raw:
        raise check.fail("vary", "missing or empty: name at least one parameter and its values")
    valid = set(field_names(get_model(model).config_cls)) | set(TRAIN_FIELDS)
    vary: dict[str, tuple[Any, ...]] = {}
    for name, values in vary_raw.items():
        if name not in valid or name == "seed":
            raise check.fail(f"vary.{name}", f"not a setting of model {model} or of the training loop; valid: {', '.join(sorted(valid - {'seed'}))}")
        if not isinstance(values, list) or not values:
            raise check.fail(f"vary.{name}", "must be a non-empty list of values")
        if not all(isinstance(v, (bool, int, float, str)) for v in values) or len(set(map(repr, values))) != len(values):
            raise check.fail(f"vary.{name}", "must list distinct numbers, strings or booleans")
        vary[name] = tuple(values)
    points: dict[str, tuple[tuple[str, Any], ...]] = {}
    skipped: list[dict[str, Any]] = []
    for dataset in shared["datasets"]:
        base = {**grid["dataset_base"].get(dataset, {}), **grid["base"]}
        resolved = plan_run(model, base).settings()
        chosen = []
        for name, values in vary.items():
            for value in values:
                if resolved.get(name) == value:
                    continue  # the base point itself: shared, trained once
                try:
                    plan_run(model, {**base, name: value})
                except ConfigError as error:
                    skipped.append({"dataset": dataset, "parameter": name, "value": value, "reason": str(error)})
                    continue
                chosen.append((name, value))
        points[dataset] = tuple(chosen)
    return SensitivitySpec(source=str(path), vary=vary, points=points, skipped=tuple(skipped), **grid, **shared)


def parse_search_file(path: str | Path, overrides: Overrides = Overrides()) -> SweepSpec | SensitivitySpec:
    """A file of search_spaces/: a search (`space:`) or a one-at-a-time study (`vary:`)."""
    raw = read_mapping(path)
    one_at_a_time = "space" not in raw and any(key in raw for key in ("vary", "seeds", "base", "base_from"))
    return parse_sensitivity(path, overrides) if one_at_a_time else parse_sweep(path, overrides)
