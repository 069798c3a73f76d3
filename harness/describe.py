"""What a campaign will run, in words: the plan printed at the start and by --dry-run, and a
rough cost (trials x epochs, and the time they take where a probe or the cache can tell)."""

from __future__ import annotations

import json
import os

from harness.data import PreparedData
from harness.experiment import probe_epoch_seconds
from harness.ledger import grid_cells
from harness.plan import plan_run, set_aside_by_variant
from harness.progress import duration
from harness.spec import AblationSpec, Campaign, GridSpec, SweepSpec
from models.registry import get_model


def trial_settings(spec: Campaign) -> list[tuple[str, dict]]:
    """(dataset, settings) of the trials whose settings are known before they run: every grid
    cell, or each dataset's fixed settings of a sweep (its searched values come later)."""
    if isinstance(spec, SweepSpec):
        return [(dataset, dict(spec.fixed)) for dataset in spec.datasets]
    return [(cell.dataset, cell.settings) for cell in grid_cells(spec)]


def epochs_per_trial(spec: Campaign) -> int:
    """The most epochs any trial of the campaign may train."""
    return max(plan_run(spec.model, settings).train_config.max_epochs for _, settings in trial_settings(spec))


def describe_plan(spec: Campaign) -> str:
    """The plan: what runs on which data, with which settings and resources."""
    lines = [f"{spec.kind} {spec.name}: model {spec.model} on {', '.join(spec.datasets)}"]
    if isinstance(spec, SweepSpec):
        objective = ", ".join(f"{o.mode} {o.metric}" for o in spec.objectives)
        lines.append(f"  {spec.num_samples} trials per dataset, sampler {spec.sampler} (seed {spec.search_seed}), "
                     f"scheduler {spec.scheduler.type}, objective {objective}")
        lines.append(f"  fixed: {json.dumps(dict(spec.fixed))}")
        lines += [f"  search {p.name}: {json.dumps(p.as_dict())}" for p in spec.space]
    else:
        lines += _grid_lines(spec)
    lines.append(f"  per trial: {spec.resources.cpu:g} cpu, {spec.resources.gpu:g} gpu; at most {spec.max_concurrent} at once; "
                 f"{spec.max_failures} retries")
    return "\n".join(lines)


def _grid_lines(spec: GridSpec) -> list[str]:
    """The cells, bases and variants (or varied parameters) of a grid campaign."""
    if isinstance(spec, AblationSpec):
        lines = [f"  {spec.total_trials} trials = {len(spec.variants)} variants x {len(spec.datasets)} datasets x "
                 f"{len(spec.seeds)} seeds; reference {spec.reference!r}"]
    else:
        per_dataset = ", ".join(f"{d}: 1 base + {len(spec.points[d])}" for d in spec.datasets)
        lines = [f"  {spec.total_trials} trials = ({per_dataset}) points x {len(spec.seeds)} seeds, one parameter varied at a time"]
    lines.append(f"  base: {json.dumps(dict(spec.base))}")
    lines += [f"  base of {dataset} from {spec.base_from}: {json.dumps(dict(base))}" for dataset, base in spec.dataset_base.items()]
    if isinstance(spec, AblationSpec):
        entry = get_model(spec.model)
        for display, overrides in spec.variants.items():
            variant, _ = entry.split_variant(overrides)
            switches = f" (switches {json.dumps(dict(variant.switches))})" if variant.switches else ""
            lines.append(f"  variant {display}: {json.dumps(dict(overrides))}{switches}")
            replaced = {name: values for dataset in spec.datasets
                        for name, values in set_aside_by_variant(spec.model, spec.settings_for(dataset, display, 0)).items()}
            lines += [f"    (the variant sets {name} = {json.dumps(new)} over the base's {json.dumps(given)})" for name, (given, new) in replaced.items()]
    else:
        lines += [f"  vary {name}: {json.dumps(list(values))}" for name, values in spec.vary.items()]
        lines += [f"  skipped {s['parameter']}={s['value']} on {s['dataset']}: {s['reason']}" for s in spec.skipped]
    return lines


def local_slots(spec: Campaign) -> int:
    """How many trials this machine runs at once (its CPUs; GPUs are not counted here)."""
    cpus = os.cpu_count() or 1
    return max(1, min(spec.max_concurrent, int(cpus // spec.resources.cpu) if spec.resources.cpu else spec.max_concurrent))


def dry_run_cost(spec: Campaign, datasets: dict[str, PreparedData]) -> str:
    """'cost: N trials x up to E epochs = T epochs; ~S s per epoch (probe) -> up to D on K at once'.

    The seconds per epoch come from a probe of the first trial's settings on each dataset (a few
    training steps on this machine, see harness.experiment.probe_epoch_seconds): a rough guide,
    since searched settings (batch size, width) and another machine change it.
    """
    epochs = epochs_per_trial(spec)
    budget = spec.total_trials * epochs
    text = f"cost: {spec.total_trials} trials x up to {epochs} epochs = {budget:,} epochs"
    if isinstance(spec, SweepSpec) and spec.scheduler.type == "asha":
        text += " (fewer: ASHA stops many trials early)"
    first: dict[str, dict] = {}
    for dataset, settings in trial_settings(spec):
        first.setdefault(dataset, settings)
    seconds = {name: probe_epoch_seconds(plan_run(spec.model, first[name]), data) for name, data in datasets.items()}
    per_trial = sum(seconds.values()) / len(seconds) * epochs
    slots = local_slots(spec)
    text += (f"; ~{sum(seconds.values()) / len(seconds):.2g} s per epoch (probe of the first trial's settings on this machine)"
             f" -> up to ~{duration(per_trial * spec.total_trials / slots)} with {slots} trial(s) at once here")
    return text
