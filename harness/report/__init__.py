"""Reports of campaigns: the papers' tables and figures, rebuilt from a campaign folder alone.

    python -m harness.report results/<name> [--metric paper|overall|h3|h6|h12] [--reference NAME]
                                            [--references FILE ...]

writes results/<name>/report/: the ablation table (Markdown, LaTeX, CSV) and chart, the
one-at-a-time sensitivity study, a sweep's marginal sensitivity plots, parallel coordinates,
hyperparameter importance, optimisation history and Pareto front, the efficiency table, routing
case study, validation curves, the list of unfinished trials, and index.md linking them. Published
numbers (harness/report/references/) are set beside the reproduced ones where the paper has them.
"""

from harness.report.build import build_report

__all__ = ["build_report"]
