"""Plain, print-readable figures: one style, constrained layout, saved as PNG and PDF.

Figures are made with matplotlib.figure.Figure directly (rendered by the Agg canvas), so the
report neither touches pyplot's global state nor leaks open figures.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

PNG_DPI = 150
PANEL_SIZE = (3.3, 2.6)  # inches per panel
MAX_PANELS_PER_ROW = 4
LEGEND_ENTRY_WIDTH = 2.6  # inches a legend entry may need, to choose the number of legend columns
LEGEND_ROW_HEIGHT = 0.22  # inches one more row of a bottom legend takes from the panels unless the figure grows
CHARACTERS_PER_INCH = 14  # of 9-point text, to wrap a figure's title to its width
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
OUTLIER_QUANTILE = 0.95  # views of many trials stop at this quantile when a few values are far above
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
    """A frameless legend under the panels, with as many columns as the figure's width allows; the
    figure grows by each row beyond the first, so that a long legend never squeezes the panels
    (and their axis labels) off the canvas."""
    ncols = max(1, min(len(handles), int(figure.get_figwidth() // LEGEND_ENTRY_WIDTH)))
    figure.set_figheight(figure.get_figheight() + (math.ceil(len(handles) / ncols) - 1) * LEGEND_ROW_HEIGHT)
    labels = list(labels) if labels is not None else [h.get_label() for h in handles]
    figure.legend(handles=list(handles), labels=labels, loc="outside lower center", ncols=ncols, frameon=False)


def figure_title(figure: Figure, text: str) -> None:
    """A title over all panels, wrapped to the figure's width."""
    width = int(figure.get_figwidth() * CHARACTERS_PER_INCH)
    figure.suptitle(textwrap.fill(text, width), fontsize=PRINT_STYLE["axes.titlesize"])


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the panels after the first `used` of a grid (row-major)."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def shorten(label: str, width: int = 30) -> str:
    """A tick label cut to `width` characters (with an ellipsis) so neighbours do not overlap."""
    return label if len(label) <= width else label[: width - 1] + "…"




def compact_number(value: float) -> str:
    """A tick label: '0.001', '50', '3e-5', '2e+06' (at most two significant digits shown)."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.2g}" if abs(value) < 1 else f"{value:g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def integer_ticks(axis: Axis) -> None:
    """Ticks of a count (trial number, epoch) only at whole numbers."""
    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def value_ticks(axis: Axis, positions: Sequence[float], labels: Sequence[str]) -> None:
    """Ticks exactly at the values drawn, labelled by them, and no others (no minor ticks)."""
    axis.set_ticks(list(positions), list(labels))
    axis.set_minor_locator(NullLocator())


def wrapped_labels(labels: Sequence[str], width: float = PANEL_SIZE[0]) -> list[str]:
    """Tick labels wrapped onto lines short enough that neighbours on an axis `width` inches wide
    do not touch (upright text reads better in print than slanted text)."""
    room = max(6, int(width * CHARACTERS_PER_INCH / max(len(labels), 1)) - 1)
    return [textwrap.fill(label, room) for label in labels]


def log_ticks(axis: Axis, low: float, high: float) -> None:
    """Labelled ticks on a log axis that never crowd: decades when the range spans two or more,
    else 1-2-5 (or 1-3) steps; minor ticks unlabelled."""
    decades = np.log10(high) - np.log10(low)
    steps = (1.0,) if decades >= 2 else (1.0, 3.0) if decades >= 1 else (1.0, 2.0, 5.0)
    exponents = np.arange(np.floor(np.log10(low)) - 1, np.ceil(np.log10(high)) + 1)
    ticks = [s * 10.0 ** e for e in exponents for s in steps]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda value, _: compact_number(value)))
    axis.set_minor_formatter(NullFormatter())


def limit_outliers(ax: Axes, values: np.ndarray) -> str:
    """Stop the y axis at a high quantile when a few values sit far above the rest.

    Returns a title suffix saying how many values the axis leaves out ('' when none).
    """
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return ""
    low, cap, median = values.min(), np.quantile(values, OUTLIER_QUANTILE), np.median(values)
    if values.max() - median <= 4 * (cap - median):
        return ""
    margin = 0.05 * (cap - low) or 0.05 * abs(cap) or 1.0
    ax.set_ylim(low - margin, cap + margin)
    return f" ({int((values > cap + margin).sum())} above the axis)"
