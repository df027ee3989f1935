"""The matrix as Markdown: the table (runs as rows), the legend, the totals of each run, the
listed checks of each run (a table cell is too narrow for them) and the merge account."""

from __future__ import annotations

import re

from ._matrix import COUNTS_NOTE, MARKS, MERGE_NOTE, TOTALS, Listed, Matrix, Row

__all__ = ["render_markdown"]


def render_markdown(matrix: Matrix) -> str:
    """The whole report as Markdown (GitHub's dialect)."""
    out = ["# batchconf conformance matrix", ""]
    header = ["run", *matrix.columns, "overall"]
    out.append("| " + " | ".join(_text(h) for h in header) + " |")
    out.append("|" + "|".join(" --- " for _ in header) + "|")
    for row in matrix.rows:
        cells = [matrix.cell(row, c).text() for c in matrix.columns]
        out.append("| " + " | ".join([_text(row.label), *cells, matrix.overall(row).text()]) + " |")
    out += ["", _legend(), "", "## Runs", ""]
    head = ["run", "profile", "target", "started", *(title for _, title in TOTALS)]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(" --- " for _ in head) + "|")
    for row in matrix.rows:
        total = matrix.overall(row)
        ident = [row.label, row.profile, row.target, row.started or "not recorded"]
        counts = [str(getattr(total, name)) for name, _ in TOTALS]
        out.append("| " + " | ".join([*(_text(x) for x in ident), *counts]) + " |")
    out.append("")
    details = [line for row in matrix.rows for line in _details(matrix, row)]
    if details:
        out += ["## Checks to read", "", *details]
    out += ["---", "", MERGE_NOTE, "", *(f"- {_text(line)}" for line in matrix.account()), ""]
    return "\n".join(out)


def _legend() -> str:
    marks = " · ".join(f"**{mark}** {meaning}" for mark, meaning in MARKS)
    return f"{marks}. {COUNTS_NOTE}"


def _details(matrix: Matrix, row: Row) -> list[str]:
    lines: list[str] = []
    for column in matrix.columns:
        cell = matrix.cell(row, column)
        listed = cell.listed()
        if not listed:
            continue
        lines.append(f"- **{_text(column)}**: {_text(cell.text())}")
        lines += [f"  - {_item(entry)}" for entry in listed]
    if not lines:
        return []
    return [f"### {_text(row.label)}", "", *lines, ""]


def _item(entry: Listed) -> str:
    tests = ", ".join(_code(t) for t in entry.tests)
    if entry.outcome == "blocked":
        count = f"{len(entry.tests)} " if len(entry.tests) > 1 else ""
        return f"{count}blocked: {_text(entry.reason) or 'no reason given'}: {tests}"
    return f"{tests} {entry.word}: {_text(entry.reason) or 'no message'}"


def _code(text: str) -> str:
    # A code span needs a fence longer than any run of backticks inside it; a pipe would
    # still end a table cell, but these spans sit in list items.
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# Underscores stay: inside words (storage_layout, test_x) they never emphasise.
_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]<>|"})


def _text(text: str) -> str:
    """Plain text, safe in a table cell or a list item: Markdown's punctuation escaped, one line."""
    return " ".join(text.split()).translate(_SPECIAL)
