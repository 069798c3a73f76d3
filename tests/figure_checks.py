"""Print-readiness checks of a rendered matplotlib figure, from the extents matplotlib reports
for its texts: no two tick labels of an axis overlap, no two texts of the figure overlap, and no
text reaches beyond the canvas. Used by the report tests on every figure the report writes,
caught as it is saved (`captured_figures`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from harness.report.style import PNG_DPI

TOLERANCE_PX = 0.5  # extents may touch (anti-aliasing) by this much without counting as overlap


@contextmanager
def captured_figures() -> Iterator[dict[str, Figure]]:
    """Every figure saved inside the block, by file stem (the report saves each as PNG and PDF)."""
    figures: dict[str, Figure] = {}
    original = Figure.savefig

    def savefig(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        figures[Path(fname).stem] = self
        original(self, fname, *args, **kwargs)

    Figure.savefig = savefig
    try:
        yield figures
    finally:
        Figure.savefig = original


def layout_problems(figure: Figure, dpi: float = PNG_DPI) -> list[str]:
    """Every overlap and every text beyond the canvas, as one line each; [] when the figure is clean.

    The figure is drawn at `dpi` (the PNG's resolution) so that the layout is the one written.
    """
    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = drawn_texts(figure)
    extents = {id(t): _shrunk(t.get_window_extent(renderer)) for t in texts}
    problems = [f"{_describe(t)} reaches beyond the canvas" for t in texts if not _inside(extents[id(t)], figure.bbox)]
    tick_pairs = set()
    for axis in _visible_axes(figure):
        for first, second in combinations(drawn_tick_labels(axis), 2):
            tick_pairs.add(frozenset((id(first), id(second))))
            if extents[id(first)].overlaps(extents[id(second)]):
                problems.append(f"tick labels {first.get_text()!r} and {second.get_text()!r} overlap")
    for first, second in combinations(texts, 2):
        if frozenset((id(first), id(second))) not in tick_pairs and extents[id(first)].overlaps(extents[id(second)]):
            problems.append(f"{_describe(first)} and {_describe(second)} overlap")
    return problems


def drawn_texts(figure: Figure) -> list[Text]:
    """The texts the figure draws: visible, not empty, not in a hidden panel, tick labels only
    of the ticks inside their axis' view."""
    hidden = {id(t) for ax in figure.axes if not ax.get_visible() for t in ax.findobj(Text)}
    axes = _visible_axes(figure)
    every_tick_label = {id(t) for axis in axes for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                        for t in (tick.label1, tick.label2)}
    drawn_ticks = {id(t) for axis in axes for t in drawn_tick_labels(axis)}
    return [t for t in figure.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden
            and (id(t) not in every_tick_label or id(t) in drawn_ticks)]


def drawn_tick_labels(axis: Axis) -> list[Text]:
    """The visible, non-empty labels of the major and minor ticks inside the axis' view interval."""
    low, high = sorted(axis.get_view_interval())
    labels = []
    for locations, ticks in ((axis.get_majorticklocs(), axis.get_major_ticks()),
                             (axis.get_minorticklocs(), axis.get_minor_ticks())):
        for location, tick in zip(locations, ticks):
            if low <= location <= high or np.isclose(location, low) or np.isclose(location, high):
                labels += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text().strip()]
    return labels


def _visible_axes(figure: Figure) -> list[Axis]:
    return [axis for ax in figure.axes if ax.get_visible() for axis in (ax.xaxis, ax.yaxis)]


def _shrunk(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 + TOLERANCE_PX, box.y0 + TOLERANCE_PX, box.x1 - TOLERANCE_PX, box.y1 - TOLERANCE_PX)


def _inside(box: Bbox, canvas: Bbox) -> bool:
    return box.x0 >= canvas.x0 and box.y0 >= canvas.y0 and box.x1 <= canvas.x1 and box.y1 <= canvas.y1


def _describe(text: Text) -> str:
    return f"text {text.get_text()!r}"
