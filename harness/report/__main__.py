"""`python -m harness.report DIR`: the tables and figures of one campaign folder.

    python -m harness.report results/hephaestus-ablation
    python -m harness.report results/hephaestus-ablation --metric h12 --reference "w/o PTA"
    python -m harness.report results/my-study --references my_numbers.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import run_command
from harness.report.build import build_report
from harness.report.load import METRIC_CHOICES, PAPER_METRIC, load_campaign


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description="Write a campaign's tables and figures into DIR/report/.")
    parser.add_argument("campaign", type=Path, metavar="DIR", help="a campaign folder, e.g. results/<name>")
    parser.add_argument("--metric", default=PAPER_METRIC, metavar="|".join(METRIC_CHOICES),
                        help="test metrics shown: overall (12-step average), h3, h6, h12, or paper (the default): each "
                             "dataset at the horizon its published numbers are quoted at, overall where there are none")
    parser.add_argument("--reference", help="ablation variant the others are compared with (default: the spec's reference)")
    parser.add_argument("--references", type=Path, action="append", default=[], metavar="FILE",
                        help="a CSV of published numbers (columns in harness/report/references/README.md), read before "
                             "the files shipped for the campaign's model; may be repeated")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = build_report(args.campaign, args.metric, args.reference, args.references)
    state = load_campaign(args.campaign).state
    if state != "finished":
        print(f"note: the campaign is {state}: this report shows the trials recorded so far")
    print(f"wrote {report / 'index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
