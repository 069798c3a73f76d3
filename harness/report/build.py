"""Build a campaign's report: run every section that applies, collect what each produced or why
it did not, and write index.md; the finished report replaces results/<name>/report/ in one rename.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import UsageError
from harness.records import atomic_write_text, make_shared_dir
from harness.report.context import Entry, ReportContext, Skipped
from harness.report.figures import ablation_figure, curves_figure, history_figure, pareto_figure
from harness.report.importance import importance_figure
from harness.report.index import write_index
from harness.report.load import PAPER_METRIC, Campaign, check_metric, load_campaign
from harness.report.oat import study_figures
from harness.report.parallel import parallel_figure
from harness.report.references import load_references
from harness.report.routing import ARTIFACT, routing_figures
from harness.report.sensitivity import sensitivity_figures
from harness.report.style import print_style
from harness.report.tables import ablation_table, best_trials_table, efficiency_table, failures_table, pareto_table

REPORT_FOLDER = "report"
ERRORS_LOG = "errors.log"


def _ablation(campaign: Campaign) -> bool:
    return campaign.kind == "ablation"


def _sweep(campaign: Campaign) -> bool:
    return campaign.kind == "sweep"


def _one_at_a_time(campaign: Campaign) -> bool:
    return campaign.kind == "sensitivity"


def _multi_objective(campaign: Campaign) -> bool:
    return campaign.kind == "sweep" and len(campaign.objectives()) > 1


def _routes(campaign: Campaign) -> bool:
    return any(ARTIFACT in kinds for kinds in campaign.artifacts.values()) or (campaign.path / "artifacts").is_dir()


def _always(campaign: Campaign) -> bool:
    return True


Section = Callable[[ReportContext], list[Entry]]
# (name, applies to the campaign?, section), in the order index.md lists them.
SECTIONS: tuple[tuple[str, Callable[[Campaign], bool], Section], ...] = (
    ("ablation table", _ablation, ablation_table),
    ("efficiency table", _always, efficiency_table),
    ("best trials", _sweep, best_trials_table),
    ("Pareto set", _multi_objective, pareto_table),
    ("unfinished trials", _always, failures_table),
    ("ablation chart", _ablation, ablation_figure),
    ("sensitivity study", _one_at_a_time, study_figures),
    ("sensitivity figures", _sweep, sensitivity_figures),
    ("parallel coordinates", _sweep, parallel_figure),
    ("hyperparameter importance", _sweep, importance_figure),
    ("optimisation history", _sweep, history_figure),
    ("Pareto front", _multi_objective, pareto_figure),
    ("routing case study", _routes, routing_figures),
    ("validation curves", _always, curves_figure),
)


def build_report(campaign_dir: Path, metric: str = PAPER_METRIC, reference: str | None = None,
                 references: Sequence[Path] = ()) -> Path:
    """Write <campaign_dir>/report/ (tables, figures, index.md) from the campaign folder alone.

    Args:
        campaign_dir: a campaign folder (results/<name>/) holding manifest.json and trials.csv.
        metric: which test metrics the tables and figures show: overall, h3, h6 or h12, or
            paper: each dataset at the horizon its published numbers are quoted at (overall
            where there are none).
        reference: the ablation variant the others are compared with (display or registry
            name); default: the spec's reference.
        references: reference files (CSV, see harness/report/references/README.md) read
            before the ones shipped for the campaign's model.

    Returns:
        The report folder.

    Raises:
        UsageError: the folder is not a campaign folder, `metric` / `reference` is invalid, or a
            reference file cannot be read.
            Nothing else: a section that cannot be produced is listed in index.md with the reason.
    """
    campaign = load_campaign(Path(campaign_dir))
    check_metric(metric)
    published = load_references(campaign.model, [Path(f) for f in references])
    notes: list[str] = []
    reference = resolve_reference(campaign, reference, notes)
    try:
        staging = make_shared_dir(Path(tempfile.mkdtemp(prefix=".report-", dir=campaign.path)))
    except OSError as error:
        raise UsageError(f"{campaign.path}: cannot write the report there ({error.strerror})") from None
    try:
        ctx = ReportContext(campaign, metric, reference, staging, published, notes)
        entries, not_produced = _run_sections(ctx)
        write_index(ctx, entries, not_produced)
        return _replace_folder(staging, campaign.path / REPORT_FOLDER)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def resolve_reference(campaign: Campaign, requested: str | None, notes: list[str]) -> str | None:
    """The reference variant's display name; UsageError when `requested` is not a variant."""
    variants = campaign.variants()
    if requested is not None:
        if campaign.kind != "ablation":
            raise UsageError(f"--reference {requested!r}: only ablation campaigns have variants; this is a {campaign.kind}")
        found = _find_variant(campaign, requested)
        if found is None:
            raise UsageError(f"--reference {requested!r}: not a variant of this campaign; variants: {', '.join(variants)}")
        return found
    if campaign.kind != "ablation" or not variants:
        return None
    named = campaign.spec.get("reference")
    found = _find_variant(campaign, str(named)) if named is not None else None
    if found is None:
        found = variants[0]
        notes.append(f"the spec names no reference variant among the trials' ({named!r}); compared against {found!r}, the first")
    return found


def _find_variant(campaign: Campaign, name: str) -> str | None:
    """The display name of the variant called `name` (its display or registry name), or None."""
    if name in campaign.variants():
        return name
    match = campaign.trials.loc[campaign.trials["variant"] == name, "variant_display"].dropna()
    return str(match.iloc[0]) if len(match) else None


def _run_sections(ctx: ReportContext) -> tuple[list[Entry], list[str]]:
    """Run every applicable section; a failure is reported (and logged), never raised."""
    entries: list[Entry] = []
    not_produced: list[str] = []
    errors: list[str] = []
    with print_style():
        for name, applies, section in SECTIONS:
            if not applies(ctx.campaign):
                continue
            try:
                entries += section(ctx)
            except Skipped as skipped:
                not_produced.append(f"{name}: {skipped}")
            except Exception as error:  # a section's bug or an odd record must not cost the rest of the report
                not_produced.append(f"{name}: could not be produced ({type(error).__name__}: {error}); see [{ERRORS_LOG}]({ERRORS_LOG})")
                errors.append(f"== {name}\n{traceback.format_exc()}")
    if errors:
        atomic_write_text(ctx.out / ERRORS_LOG, "\n".join(errors))
    return entries, not_produced


def _replace_folder(staging: Path, final: Path) -> Path:
    """Move the finished report into place, so a reader never sees half of one."""
    retired = final.with_name(f"{staging.name}-old")
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    return final
