"""One campaign, end to end: check, load, run, keep records, verify, summarise, report.

    validated spec -> storage checked and locked -> datasets loaded once -> Ray -> Tuner runs
    (a restored one on --resume, then whatever is still owed) -> records verified against the
    plan (harness.ledger) -> derived files, summary, report

Every trial leaves its record whatever its fate; Ctrl-C or SIGTERM stops the trials, records
them as interrupted and prints the command that resumes the campaign.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import PreparedData, load_series, prepare
from harness.describe import describe_plan, dry_run_cost, epochs_per_trial
from harness.errors import UsageError
from harness.ledger import Owed, owed, set_aside_unfinished
from harness.manifest import MANIFEST, finish_manifest, new_manifest, read_manifest
from harness.progress import Progress
from harness.records import RECORDS_FOLDER, TrialRecord, read_records, write_json
from harness.spec import Campaign, SweepSpec, identity_difference
from harness.storage import CampaignLock, reserve_space, set_aside, storage_root

EXIT_INCOMPLETE = 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that do not change what a campaign computes."""

    address: str | None = None
    storage: str | None = None
    resume: bool = False
    fresh: bool = False
    dry_run: bool = False
    use_cache: bool = True
    report: bool = True
    checkpoint_every: int | None = None  # None: by time (harness.trial.CHECKPOINT_INTERVAL_S)
    command: str = ""  # the command line as typed, for the resume hint


def check_start(spec: Campaign, options: RunOptions, campaign_dir: Path, manifest: dict[str, Any] | None) -> None:
    """A new campaign needs an unused folder; --resume needs the same campaign in it."""
    if options.resume:
        if manifest is None:
            raise UsageError(f"--resume: nothing to resume at {campaign_dir} (no {MANIFEST}); run without --resume to start it")
        difference = identity_difference(manifest.get("identity", {}), spec.identity())
        if difference:
            raise UsageError(f"--resume: {campaign_dir} was started with other settings ({difference}); "
                             f"resume with the original file and flags, or start it under another name")
    elif manifest is not None and not options.fresh and not options.dry_run:
        state = manifest.get("status", "unknown")
        raise UsageError(f"{spec.source}: name: {campaign_dir} already holds this campaign ({state}); "
                         f"add --resume to continue it, --fresh to start it again (the old folder is kept), or use another name")


def load_datasets(spec: Campaign, log: Callable[[str], None]) -> dict[str, PreparedData]:
    """Load and prepare every dataset once, in the driver (a DataError stops before Ray starts)."""
    prepared = {}
    for name in spec.datasets:
        started = time.perf_counter()
        series = load_series(name, spec.data_dir, spec.data_options if name == "synthetic" else None)
        prepared[name] = prepare(series)
        counts = prepared[name].num_samples()
        log(f"dataset {name}: {series.values.shape[1]} nodes x {series.values.shape[0]} steps ({series.source}); "
            f"samples {counts['train']}/{counts['val']}/{counts['test']}; {time.perf_counter() - started:.1f}s")
    return prepared


# --------------------------------------------------------------------------------------------
# The campaign.


def run_campaign(spec: Campaign, options: RunOptions, log: Callable[[str], None] = print) -> int:
    """Run a validated campaign end to end; returns the exit code.

    0: every planned trial has a final record and at least one finished ok; 1: none finished
    ok, or trials are missing (the line says how to recover); 130 / 143: interrupted by
    SIGINT / SIGTERM (the line says how to resume); 2 (via UsageError): bad input.
    """
    log(describe_plan(spec))
    root = storage_root(options.storage)
    campaign_dir = root / spec.name
    manifest = read_manifest(campaign_dir)
    check_start(spec, options, campaign_dir, manifest)
    if options.dry_run:
        datasets = load_datasets(spec, log)
        log(dry_run_cost(spec, datasets))
        log("dry run: the campaign file and its datasets are valid; nothing was started")
        return 0
    CampaignLock(campaign_dir).refuse_if_held()  # before --fresh and the data load; taken for real below
    if options.fresh and manifest is not None:
        log(f"--fresh: the earlier campaign was moved to {set_aside(campaign_dir)}")
        manifest = None
    datasets = load_datasets(spec, log)  # a data problem stops here, before anything is written
    with CampaignLock(campaign_dir):
        return _run_locked(spec, options, campaign_dir, root, manifest, datasets, log)


def _run_locked(spec: Campaign, options: RunOptions, campaign_dir: Path, root: Path, previous: dict[str, Any] | None,
                datasets: dict[str, PreparedData], log: Callable[[str], None]) -> int:
    import ray

    from harness.trial import TrialContext
    from harness.keeper import RecordKeeper
    from harness.search import reconcile_studies
    from harness.tuner import Cluster, Interrupts, TunerRun, restorable, run, start_ray

    address = options.address or os.environ.get("RAY_ADDRESS") or "local"
    for leftover in (campaign_dir / RECORDS_FOLDER).glob("**/.*.tmp"):  # a write a kill cut short; the file it replaces is whole
        leftover.unlink(missing_ok=True)
    reserve = reserve_space(campaign_dir, spec.total_trials)
    start_ray(options.address, campaign_dir)
    interrupts = Interrupts()
    try:
        cluster = Cluster.current()
        cluster.check_fits(spec)
        slots = cluster.slots(spec)
        log(f"ray: {cluster.nodes} node(s), {cluster.cpus:g} cpu, {cluster.gpus:g} gpu; up to {slots} trial(s) at once; results in {campaign_dir}")
        if spec.max_concurrent * spec.resources.cpu > cluster.cpus:
            log(f"warning: max_concurrent {spec.max_concurrent} x {spec.resources.cpu:g} cpu asks for more than the {cluster.cpus:g} cpu Ray has; at most {slots} trial(s) run at once")
        manifest = new_manifest(spec, previous, datasets, address, options.resume, options.command)
        manifest_path = campaign_dir / MANIFEST
        write_json(manifest_path, manifest)
        context = TrialContext(
            campaign=spec.name, model=spec.model, fixed=dict(spec.fixed) if isinstance(spec, SweepSpec) else {},
            campaign_dir=str(campaign_dir), storage_root=str(root), code_version=manifest["code_version"],
            use_cache=options.use_cache, checkpoint_every=options.checkpoint_every,
        )
        keeper = RecordKeeper(spec, campaign_dir, log, interrupts, reserve)
        records, _ = read_records(campaign_dir)
        todo = owed(spec, records)
        progress = Progress(spec, todo.count, epochs_per_trial(spec), slots, log, {r.trial_id for r in records if r.final})
        callbacks = [keeper, progress]
        unfinished = [r for r in records if not r.final]
        if options.resume and unfinished and manifest["runs"] and restorable(campaign_dir, manifest["runs"][-1]):
            log(f"resuming {manifest['runs'][-1]}: {len(unfinished)} unfinished trial(s) continue from their checkpoints")
            run(spec, TunerRun(manifest["runs"][-1]), context, datasets, callbacks, interrupts, restore=True)
        for _ in range(2):  # what is owed now; a second pass covers trials a restore could not continue
            if interrupts.stopped:
                break
            records, _ = read_records(campaign_dir)
            todo = owed(spec, records)
            set_aside_unfinished(campaign_dir, records)  # no run continues them now: what they owe runs anew
            if not todo.count:
                break
            label = f"run-{len(manifest['runs']) + 1}"
            manifest["runs"].append(label)
            write_json(manifest_path, manifest)
            progress.total = progress.done() + todo.count + len(progress.running)
            if records:
                log(f"{todo.count} trial(s) still to run ({todo.describe()})")
            run(spec, TunerRun.for_owed(label, todo), context, datasets, callbacks, interrupts, restore=False)
        if interrupts.stopped:
            keeper.interrupted(interrupts.reason)
    finally:
        ray.shutdown()
        reserve.unlink(missing_ok=True)

    keeper.derive(force=True)
    records, problems = read_records(campaign_dir)
    for problem in problems:
        log(f"warning: {problem}")
    todo = owed(spec, records)
    if isinstance(spec, SweepSpec):
        reconcile_studies(spec, campaign_dir, records, finished=not todo.count and not interrupts.stopped)
    status = "interrupted" if interrupts.stopped else "incomplete" if todo.count else "finished"
    try:
        finish_manifest(campaign_dir / MANIFEST, manifest, status, records)
    except OSError as error:
        log(f"warning: could not update {MANIFEST} ({error.strerror})")
    return summarise(spec, campaign_dir, records, todo, status, interrupts, options, log)


def resume_command(options: RunOptions) -> str:
    """The command that continues this campaign."""
    words = shlex.split(options.command) if options.command else ["python", "-m", "harness.<sweep|ablate>", "FILE"]
    words = [w for w in words if w not in ("--fresh", "--resume")]
    return shlex.join([*words, "--resume"])


def summarise(spec: Campaign, campaign_dir: Path, records: list[TrialRecord], todo: Owed, status: str, interrupts,
              options: RunOptions, log: Callable[[str], None]) -> int:
    """Print the closing lines, build the report, and choose the exit code."""
    counts = Counter(r.status for r in records)
    cached = sum(r.cached for r in records)
    log(f"[{spec.name}] {status}: {len(records)} trial record(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + (f" ({cached} from the cache)" if cached else ""))
    for record in records:
        if record.status in ("failed", "diverged"):
            log(f"  {record.trial_id} {record.status}: {record.reason}")
    ok = [r for r in records if r.status == "ok" and r.val.get("mae") is not None]
    if ok:
        best = min(ok, key=lambda r: r.val["mae"])
        test = best.test.get("overall", {}).get("mae")
        log(f"  best val_mae {best.val['mae']:.4f}: trial {best.trial_id} ({best.dataset}, {best.variant_display or best.variant})"
            + (f", test MAE {test:.4f}" if test is not None else ""))
    log(f"  records: {campaign_dir}/records/ (trials.csv, curves.csv" + (", best.yaml" if (campaign_dir / 'best.yaml').exists() else "") + ")")
    if options.report and ok:
        from harness.report import build_report

        try:
            log(f"  report: {build_report(campaign_dir) / 'index.md'}")
        except (OSError, UsageError) as error:
            log(f"warning: the report was not written ({error}); build it later with: python -m harness.report {campaign_dir}")
    if interrupts.stopped:
        done = sum(r.final for r in records)
        what = "interrupted" if interrupts.signum is not None else f"stopped: {interrupts.reason}"
        advice = "" if interrupts.signum is not None else "free some space, then "
        log(f"{what}: {done} done, {spec.total_trials - done} unfinished; {advice}resume with: {resume_command(options)}")
        return EXIT_SIGNAL.get(interrupts.signum, EXIT_INCOMPLETE)
    if todo.count:
        log(f"incomplete: {todo.describe()}; run again with: {resume_command(options)}")
        return EXIT_INCOMPLETE
    if todo.surplus:
        log(f"warning: more final records than planned ({'; '.join(todo.surplus)})")
    return 0 if ok else EXIT_INCOMPLETE
