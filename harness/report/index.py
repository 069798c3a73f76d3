"""index.md: the campaign in one paragraph, the trial counts, every table and figure with a
one-line caption, what was not produced and why, and the manifest's provenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.records import atomic_write_text
from harness.report.context import Entry, ReportContext
from harness.report.load import STATUS_ORDER

INDEX_NAME = "index.md"
STATE_WORDS = {
    "running": "still running",
    "interrupted": "interrupted (continue it with --resume)",
    "stopped": "not finished: its driver stopped without finishing it (continue it with --resume)",
    "incomplete": "incomplete: some planned trials are missing (continue it with --resume)",
}
# Manifest keys already shown at the top of the index.
SHOWN_KEYS = ("campaign", "kind", "spec", "skipped")


def write_index(ctx: ReportContext, entries: Sequence[Entry], not_produced: Sequence[str]) -> None:
    """Write ctx.out/index.md linking every entry."""
    lines = _header(ctx) + _trial_counts(ctx) + _skipped_values(ctx.campaign.manifest)
    tables = [e for e in entries if e.section == "tables"]
    figures = [e for e in entries if e.section == "figures"]
    if tables:
        lines += ["## Tables", ""]
        lines += [f"- **{e.title}**: {e.caption}. " + " · ".join(f"[{name}]({name})" for name in e.files) for e in tables]
        lines.append("")
    if figures:
        lines += ["## Figures", ""]
        for entry in figures:
            links = " · ".join(f"[{name.rsplit('.', 1)[-1].upper()}]({name})" for name in entry.files)
            lines += [f"### {entry.title}", "", f"{entry.caption}. {links}", "", f"![{entry.title}]({entry.files[0]})", ""]
    missing = [*not_produced, *ctx.campaign.notes, *ctx.notes]
    if missing:
        lines += ["## Left out, and why", ""] + [f"- {text}" for text in missing] + [""]
    lines += _provenance(ctx.campaign.manifest)
    atomic_write_text(ctx.out / INDEX_NAME, "\n".join(lines).rstrip() + "\n")


def _header(ctx: ReportContext) -> list[str]:
    campaign = ctx.campaign
    datasets = ", ".join(campaign.datasets()) or "none recorded"
    summary = (f"{campaign.kind.capitalize()} campaign of model **{campaign.model}** on {datasets}. "
               f"Test metrics: {ctx.metric} ({ctx.metric_description()}).")
    if campaign.kind == "ablation":
        summary += f" Reference variant: {ctx.reference or 'none'}."
    if campaign.kind == "sweep":
        summary += " Objective: " + ", ".join(f"{o.metric} ({o.mode})" for o in campaign.objectives()) + "."
    if campaign.kind == "sensitivity":
        vary = campaign.spec.get("vary")
        summary += (" Varied one at a time around the base setting: "
                    + "; ".join(f"{name} ({', '.join(map(str, values))})" for name, values in dict(vary or {}).items()) + ".")
    lines = [f"# Report: {campaign.name}", "", summary,
             "Rebuilt from the campaign folder alone by `python -m harness.report`.", ""]
    lines += _published(ctx)
    if campaign.state != "finished":
        lines += [f"**The campaign is {STATE_WORDS.get(campaign.state, campaign.state)}: this report shows the trials "
                  f"recorded so far.**", ""]
    return lines


def _published(ctx: ReportContext) -> list[str]:
    """Which published numbers the report sets beside the reproduced ones, and from where."""
    references = ctx.references
    if references.empty:
        return [f"No published numbers of {ctx.campaign.model} are known to the report (give some with --references FILE).", ""]
    tables = ", ".join(dict.fromkeys(references["table"]))
    files = ", ".join(dict.fromkeys(references["file"]))
    return [f"Published numbers compared where the campaign has the same dataset and setting: {tables} (from {files}).", ""]


def _skipped_values(manifest: dict[str, Any]) -> list[str]:
    """A sensitivity study's values the runner did not run (manifest 'skipped'), each with its reason."""
    skipped = [e for e in manifest.get("skipped") or [] if isinstance(e, dict)]
    if not skipped:
        return []
    lines = ["## Values not run", "", "| parameter | value | reason |", "|:---|:---|:---|"]
    lines += [f"| {e.get('parameter')} | {e.get('value')} | {str(e.get('reason', '')).replace('|', '/')} |" for e in skipped]
    return lines + [""]


def _trial_counts(ctx: ReportContext) -> list[str]:
    trials = ctx.campaign.trials
    counts = trials["status"].value_counts()
    statuses = [s for s in STATUS_ORDER if s in counts] + [s for s in counts.index if s not in STATUS_ORDER]
    lines = ["## Trials", "", "| status | trials |", "|:---|---:|"]
    lines += [f"| {status} | {counts[status]} |" for status in statuses]
    lines.append(f"| **all** | {len(trials)} |")
    lines.append("")
    cached = trials.get("cached")
    if cached is not None and cached.astype(str).str.lower().eq("true").any():
        lines += [f"{int(cached.astype(str).str.lower().eq('true').sum())} record(s) were reused from an earlier campaign.", ""]
    unfinished = len(ctx.campaign.unfinished)
    if unfinished:
        lines += [f"{unfinished} trial(s) did not finish: each is listed in [failures.md](failures.md) with its "
                  "reason, and none is part of any mean.", ""]
    elif len(trials):
        lines += ["Every trial finished.", ""]
    else:
        lines += ["trials.csv holds no trial.", ""]
    return lines


def _provenance(manifest: dict[str, Any]) -> list[str]:
    """The manifest's other scalar entries (one level of nesting flattened), e.g. git sha, versions."""
    items = []
    for key, value in manifest.items():
        if key in SHOWN_KEYS:
            continue
        if isinstance(value, dict):
            items += [(f"{key}.{k}", v) for k, v in value.items() if _is_scalar(v)]
        elif _is_scalar(value):
            items.append((key, value))
    if not items:
        return []
    return ["## Provenance", ""] + [f"- {key}: `{value}`" for key, value in items] + [""]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None
