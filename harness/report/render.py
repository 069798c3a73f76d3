"""Write one table as Markdown, LaTeX (booktabs) and CSV.

A `Table` holds display cells (text, an optional plain detail after it, bold, a significance
mark); the CSV is written from the numbers behind it, not from the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.records import atomic_write_text

SIGNIFICANCE_MARK = "*"
MISSING = "–"


@dataclass(frozen=True)
class Cell:
    """A table cell: `text` (bold when best), then `detail` (e.g. "(+3.1%)"), then the mark."""

    text: str
    detail: str = ""
    bold: bool = False
    mark: bool = False


@dataclass(frozen=True)
class Table:
    """A table's title, column labels, rows and footnotes.

    `groups` are spanning labels ((label, number of columns), ...) over the columns that follow
    the first `stub` columns, e.g. one group per dataset over its MAE / RMSE / MAPE.
    """

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell | str]]
    notes: Sequence[str] = ()
    groups: Sequence[tuple[str, int]] = ()
    stub: int = 1


def decimals_of(value: float, decimals: int = 2) -> int:
    """Decimal places to show `value` with: `decimals`, one more when it is below 1 in size."""
    return decimals + 1 if pd.notna(value) and abs(value) < 1 else decimals


def format_number(value: float, decimals: int | None = None) -> str:
    """A number with `decimals` places (default: decimals_of(value)); '–' when missing."""
    if pd.isna(value):
        return MISSING
    return f"{value:.{decimals_of(value) if decimals is None else decimals}f}"


def signed_percent(value: float) -> str:
    """'+3.1%', '-0.4%', and '+0.0%' for anything that rounds to zero (never '-0.0%')."""
    return f"{round(value, 1) or 0.0:+.1f}%"


def to_markdown(table: Table) -> str:
    """The table as a GitHub-flavoured Markdown table with its title and footnotes."""
    labels = list(table.columns[: table.stub])
    leaf_labels = iter(table.columns[table.stub:])
    for group, span in table.groups:
        labels += [f"{group} {next(leaf_labels)}" for _ in range(span)]
    labels += list(leaf_labels)
    lines = [f"**{table.title}**", "", _markdown_row(labels)]
    lines.append("|" + "|".join([":---"] * table.stub + ["---:"] * (len(labels) - table.stub)) + "|")
    lines += [_markdown_row([_markdown_cell(c) for c in row]) for row in table.rows]
    if table.notes:
        lines.append("")
        lines += [note.replace("*", "\\*") + "  " for note in table.notes]
    return "\n".join(lines) + "\n"


def to_latex(table: Table, label: str) -> str:
    """The table as a booktabs LaTeX table; the footnotes go into the caption."""
    n_columns = len(table.columns)
    caption = " ".join([_latex_escape(table.title) + "."] + [_latex_escape(n) for n in table.notes])
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{label}}}",
        r"\begin{tabular}{" + "l" * table.stub + "r" * (n_columns - table.stub) + "}",
        r"\toprule",
    ]
    if table.groups:
        spans, rules, start = [""] * table.stub, [], table.stub + 1
        for group, span in table.groups:
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{_latex_escape(group)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines += [" & ".join(spans) + r" \\", "".join(rules)]
    lines.append(" & ".join(_latex_escape(c) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_latex_cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(out: Path, stem: str, table: Table, numbers: pd.DataFrame, latex: bool = True) -> tuple[str, ...]:
    """Write <stem>.md, <stem>.csv (from `numbers`) and, when `latex`, <stem>.tex; return the names."""
    names = [f"{stem}.md", f"{stem}.csv"]
    atomic_write_text(out / names[0], to_markdown(table))
    atomic_write_text(out / names[1], numbers.to_csv(index=False))
    if latex:
        names.append(f"{stem}.tex")
        atomic_write_text(out / names[2], to_latex(table, stem))
    return tuple(names)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _markdown_cell(cell: Cell | str) -> str:
    if isinstance(cell, str):
        return cell
    text = f"**{cell.text}**" if cell.bold else cell.text
    if cell.detail:
        text += f" {cell.detail}"
    return text + ("\\" + SIGNIFICANCE_MARK if cell.mark else "")


def _latex_cell(cell: Cell | str) -> str:
    if isinstance(cell, str):
        return _latex_escape(cell)
    text = rf"\textbf{{{_latex_escape(cell.text)}}}" if cell.bold else _latex_escape(cell.text)
    if cell.detail:
        text += r"\," + rf"{{\scriptsize {_latex_escape(cell.detail)}}}"
    return text + (rf"$^{{{SIGNIFICANCE_MARK}}}$" if cell.mark else "")


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "×": r"$\times$", "–": "--", "*": r"$^{*}$", "<": r"$<$", ">": r"$>$",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
