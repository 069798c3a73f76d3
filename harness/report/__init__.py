"""Reports of campaigns: the papers' tables and figures, rebuilt from a campaign folder alone.

    python -m harness.report results/<name> [--metric overall|h3|h6|h12] [--reference NAME]

writes results/<name>/report/: the ablation table (Markdown, LaTeX, CSV) and chart, sensitivity
figures, hyperparameter importance, optimisation history, Pareto front, efficiency table,
routing case study, validation curves, the list of unfinished trials, and index.md linking them.
"""

from harness.report.build import build_report

__all__ = ["build_report"]
