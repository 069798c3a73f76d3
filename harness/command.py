"""The command line of `python -m harness.sweep` and `python -m harness.ablate`."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable, Sequence

from harness.campaign import RunOptions, run_campaign
from harness.cli import parse_assignments
from harness.errors import UsageError
from harness.provenance import project_version
from harness.spec import Campaign, Overrides, Resources, parse_ablation, parse_search_file

PROGRAMS = {"sweep": "harness.sweep", "ablation": "harness.ablate"}


def build_parser(kind: str) -> argparse.ArgumentParser:
    """The shared flags, plus --num-samples for sweeps."""
    what = ("a hyperparameter search or a one-at-a-time sensitivity study (search_spaces/*.yaml)" if kind == "sweep"
            else "an ablation campaign (ablations/*.yaml)")
    parser = argparse.ArgumentParser(prog=f"python -m {PROGRAMS[kind]}", description=f"Run {what} on a local Ray or a Ray cluster.")
    parser.add_argument("file", help="the campaign file")
    parser.add_argument("--version", action="version", version=f"%(prog)s {project_version()}")
    what_runs = parser.add_argument_group("what runs (changes the campaign; --resume refuses a change)")
    what_runs.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                           help="a model or training setting for every trial, e.g. --set lr=1e-3 max_epochs=50 (into fixed / base)")
    what_runs.add_argument("--datasets", help="comma-separated datasets instead of the file's, e.g. pems08,metr-la")
    what_runs.add_argument("--data-option", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                           help="synthetic data options, e.g. --data-option nodes=40 days=14")
    what_runs.add_argument("--data-dir", help="folder with one sub-folder per dataset (instead of the file's data_dir)")
    if kind == "sweep":
        what_runs.add_argument("--num-samples", type=int, help="trials per dataset (instead of search.num_samples)")
    what_runs.add_argument("--smoke", action="store_true",
                           help="tiny synthetic data, 2 short epochs, few trials, in its own folder <name>-smoke: the whole path in minutes")
    how = parser.add_argument_group("how it runs")
    how.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: $RAY_ADDRESS, else a private local Ray)")
    how.add_argument("--storage", help="folder for results (default: ./results); on a cluster, storage every node sees")
    how.add_argument("--resume", action="store_true", help="continue an interrupted campaign: finished trials are kept, the rest run")
    how.add_argument("--fresh", action="store_true", help="start a campaign that already has a folder again (the old folder is kept, renamed)")
    how.add_argument("--dry-run", action="store_true", help="validate, load the data and print the plan and its cost; start nothing")
    how.add_argument("--no-cache", action="store_true", help="run trials again even when an identical finished one is cached")
    how.add_argument("--no-report", action="store_true", help="do not build the report at the end")
    how.add_argument("--max-concurrent", type=int, help="trials running at once (instead of max_concurrent)")
    how.add_argument("--cpus-per-trial", type=float, help="CPUs each trial reserves (instead of resources.cpu)")
    how.add_argument("--gpus-per-trial", type=float, help="GPUs each trial reserves; fractions allowed: 0.25 puts 4 trials on one GPU")
    how.add_argument("--checkpoint-every", type=int, metavar="N",
                     help="save a trial checkpoint every N epochs (default: after the first epoch that ends 30 s or more after the "
                          "last checkpoint, so a crash repeats at most about 30 s of training and short trials save none)")
    return parser


def parse_command(kind: str, argv: Sequence[str] | None) -> tuple[Campaign, RunOptions]:
    """Parse the command line and the campaign file it names, with the flags applied."""
    args = build_parser(kind).parse_args(argv)
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip()) if args.datasets is not None else None
    if datasets == ():
        raise UsageError("--datasets: name at least one dataset")
    overrides = Overrides(
        settings=parse_assignments(args.set, "--set"),
        datasets=datasets,
        data_options=parse_assignments(args.data_option, "--data-option"),
        data_dir=args.data_dir,
        num_samples=getattr(args, "num_samples", None),
        smoke=args.smoke,
    )
    spec = (parse_search_file if kind == "sweep" else parse_ablation)(args.file, overrides)
    changes = {}
    if args.max_concurrent is not None:
        changes["max_concurrent"] = _at_least(args.max_concurrent, 1, "--max-concurrent")
    if args.cpus_per_trial is not None or args.gpus_per_trial is not None:
        cpu = spec.resources.cpu if args.cpus_per_trial is None else _at_least(args.cpus_per_trial, 0, "--cpus-per-trial")
        gpu = spec.resources.gpu if args.gpus_per_trial is None else _at_least(args.gpus_per_trial, 0, "--gpus-per-trial")
        if cpu == 0 and gpu == 0:
            raise UsageError("--cpus-per-trial/--gpus-per-trial: a trial needs some cpu or gpu")
        changes["resources"] = Resources(cpu, gpu)
    if args.resume and args.fresh:
        raise UsageError("--resume and --fresh: choose one (continue the campaign, or start it again)")
    options = RunOptions(
        address=args.address, storage=args.storage, resume=args.resume, fresh=args.fresh, dry_run=args.dry_run,
        use_cache=not args.no_cache, report=not args.no_report,
        checkpoint_every=None if args.checkpoint_every is None else int(_at_least(args.checkpoint_every, 1, "--checkpoint-every")),
        command=shlex.join(["python", "-m", PROGRAMS[kind], *(sys.argv[1:] if argv is None else argv)]),
    )
    return dataclasses.replace(spec, **changes), options


def _at_least(value: float, minimum: float, flag: str) -> float:
    if value < minimum:
        raise UsageError(f"{flag}: must be >= {minimum}, got {value}")
    return value


def warn_unused_data_dir(spec: Campaign, log: Callable[[str], None]) -> None:
    """A --data-dir or data_dir that no dataset reads (only synthetic data) is said, not ignored."""
    if spec.data_dir is not None and all(d == "synthetic" for d in spec.datasets):
        log(f"warning: data_dir {spec.data_dir} is not used: every dataset of this campaign is synthetic "
            f"(name real ones with --datasets, e.g. --datasets pems08)")


def command(kind: str) -> Callable[[Sequence[str] | None], int]:
    """The main() of `python -m harness.sweep` (kind "sweep") or `harness.ablate` ("ablation")."""

    def main(argv: Sequence[str] | None = None) -> int:
        spec, options = parse_command(kind, argv)
        warn_unused_data_dir(spec, print)
        return run_campaign(spec, options)

    return main
