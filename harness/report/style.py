"""Plain, print-readable figures: one style, constrained layout, saved as PNG and PDF.

Figures are made with matplotlib.figure.Figure directly (rendered by the Agg canvas), so the
report neither touches pyplot's global state nor leaks open figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure

PNG_DPI = 150
PANEL_SIZE = (3.3, 2.6)  # inches per panel
MAX_PANELS_PER_ROW = 4
LEGEND_ENTRY_WIDTH = 2.6  # inches a legend entry may need, to choose the number of legend columns
PRINT_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # embed TrueType, so text stays text in the PDF
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


@contextmanager
def print_style() -> Iterator[None]:
    """The report's matplotlib style, active for everything drawn inside the block."""
    with matplotlib.rc_context(PRINT_STYLE):
        yield


def panel_grid(nrows: int, ncols: int, extra_height: float = 0.0, **subplots: object) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with nrows x ncols panels (always a 2-D array of Axes)."""
    width, height = PANEL_SIZE
    figure = Figure(figsize=(width * ncols, height * nrows + extra_height), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False, **subplots)
    return figure, axes


def save_figure(figure: Figure, out: Path, stem: str) -> tuple[str, str]:
    """Write <stem>.png and <stem>.pdf into `out`; return their names."""
    names = (f"{stem}.png", f"{stem}.pdf")
    figure.savefig(out / names[0], dpi=PNG_DPI)
    figure.savefig(out / names[1])
    return names


def bottom_legend(figure: Figure, handles: Sequence[Artist], labels: Sequence[str] | None = None) -> None:
    """A frameless legend under the panels, with as many columns as the figure's width allows."""
    ncols = max(1, min(len(handles), int(figure.get_figwidth() // LEGEND_ENTRY_WIDTH)))
    labels = list(labels) if labels is not None else [h.get_label() for h in handles]
    figure.legend(handles=list(handles), labels=labels, loc="outside lower center", ncols=ncols, frameon=False)


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the panels after the first `used` of a grid (row-major)."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def shorten(label: str, width: int = 18) -> str:
    """A tick label cut to `width` characters (with an ellipsis) so neighbours do not overlap."""
    return label if len(label) <= width else label[: width - 1] + "…"


