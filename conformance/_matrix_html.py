"""The matrix as one self-contained HTML page: inline CSS, no scripts, nothing fetched.

Capabilities are rows and runs columns, so that a column per run stays readable on a
1280 px screen; with many runs the table scrolls sideways inside its box while the header
row and the capability column stay in place (sticky). Each mark has its own class and
colour, and its word is always written too, so that nothing rests on colour alone. Each cell
that has checks to read lists them (test name, outcome, first line of the message) in a
`<details>` element, which opens without scripts.
"""

from __future__ import annotations

import html

from ._matrix import COUNTS_NOTE, DEVIATION, FAIL, KNOWN, MARKS, MERGE_NOTE, NA, PASS, STALE, TOTALS, Cell, Matrix, Row

__all__ = ["MARK_CLASSES", "render_html"]

#: The CSS class of each mark's cell.
MARK_CLASSES = {PASS: "pass", FAIL: "fail", DEVIATION: "deviation", KNOWN: "known", STALE: "stale", NA: "na"}

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1d; background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
.scroll { max-width: 100%; max-height: 85vh; overflow: auto; border: 1px solid #ccc; }
table { border-collapse: separate; border-spacing: 0; }
th, td { border-right: 1px solid #ddd; border-bottom: 1px solid #ddd; padding: 0.35em 0.5em;
  vertical-align: top; text-align: left; }
table.matrix td, table.matrix thead th { min-width: 9em; max-width: 20em; overflow-wrap: anywhere; }
table.matrix thead th { position: sticky; top: 0; z-index: 2; background: #eef0f3; }
table.matrix tbody th { position: sticky; left: 0; z-index: 1; background: #f6f7f9; white-space: nowrap; }
table.matrix thead th.corner { left: 0; z-index: 3; }
th .meta { display: block; font-weight: normal; font-size: 0.8em; color: #555; }
tr.overall th, tr.overall td { border-top: 2px solid #999; }
.mark { font-weight: 700; letter-spacing: 0.02em; }
.legend .mark { padding: 0 0.3em; }
td.pass, .legend .pass { background: #e3f4e3; } .pass .mark, .legend .pass { color: #16621b; }
td.fail, .legend .fail { background: #fbe0e0; } .fail .mark, .legend .fail { color: #a3161b; }
td.deviation, .legend .deviation { background: #ffe9cc; } .deviation .mark, .legend .deviation { color: #8a4b00; }
td.known, .legend .known { background: #e4ecf7; } .known .mark, .legend .known { color: #234f8c; }
td.stale, .legend .stale { background: #efe4f7; } .stale .mark, .legend .stale { color: #5e2a84; }
td.na, .legend .na { background: #f4f4f4; color: #666; }
.notes { display: block; font-size: 0.85em; }
details { font-size: 0.85em; margin-top: 0.3em; }
details ul { margin: 0.3em 0 0; padding-left: 1.1em; }
details li { margin-bottom: 0.25em; }
code { font-size: 0.95em; }
table.totals td { text-align: right; } table.totals td.text { text-align: left; }
.legend, footer { color: #444; font-size: 0.9em; }
footer ul { padding-left: 1.2em; }
"""


def render_html(matrix: Matrix) -> str:
    """The whole report as one HTML page (see the module docstring)."""
    esc = html.escape
    head = '<th scope="col" class="corner">capability</th>' + "".join(_run_header(row) for row in matrix.rows)
    body = []
    for column in matrix.columns:
        tds = "".join(_cell(matrix.cell(row, column), with_checks=True) for row in matrix.rows)
        body.append(f'<tr><th scope="row">{esc(column)}</th>{tds}</tr>')
    overall = "".join(_cell(matrix.overall(row), with_checks=False) for row in matrix.rows)
    body.append(f'<tr class="overall"><th scope="row">overall</th>{overall}</tr>')
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>batchconf conformance matrix</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n",
        "<h1>batchconf conformance matrix</h1>\n",
        _legend(),
        '<div class="scroll">\n<table class="matrix">\n',
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n</div>\n",
        _totals(matrix),
        _footer(matrix),
        "</main>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _run_header(row: Row) -> str:
    esc = html.escape
    meta = [f"profile {row.profile}", row.target, f"started {row.started or 'not recorded'}"]
    spans = "".join(f'<span class="meta">{esc(m)}</span>' for m in meta)
    return f'<th scope="col" class="run"><span class="name">{esc(row.label)}</span>{spans}</th>'


def _cell(cell: Cell, *, with_checks: bool) -> str:
    esc = html.escape
    mark = cell.verdict
    counts = cell.counts()
    notes = cell.notes()
    inner = f'<span class="mark">{esc(mark)}</span>'
    if counts:
        inner += f' <span class="counts">{esc(counts)}</span>'
    if notes:
        inner += f'<span class="notes">{esc(", ".join(notes))}</span>'
    listed = cell.listed() if with_checks else []
    if listed:
        items = []
        for entry in listed:
            tests = ", ".join(f"<code>{esc(t)}</code>" for t in entry.tests)
            reason = esc(entry.reason or "no message")
            items.append(f'<li class="{esc(entry.outcome)}">{tests} <em>{esc(entry.word)}</em>: {reason}</li>')
        count = sum(len(e.tests) for e in listed)
        summary = f"{count} check{'s' if count != 1 else ''}"
        inner += f'<details><summary>{summary}</summary><ul class="checks">{"".join(items)}</ul></details>'
    title = esc(cell.detail(), quote=True)
    return f'<td class="{MARK_CLASSES[mark]}" title="{title}">{inner}</td>'


def _legend() -> str:
    esc = html.escape
    items = " · ".join(
        f'<span class="mark {MARK_CLASSES[mark]}">{esc(mark)}</span> {esc(meaning)}' for mark, meaning in MARKS
    )
    return f'<p class="legend">{items}. {esc(COUNTS_NOTE)}</p>\n'


def _totals(matrix: Matrix) -> str:
    esc = html.escape
    head = "".join(f'<th scope="col">{esc(t)}</th>' for t in ("run", "profile", "target", "started"))
    head += "".join(f'<th scope="col">{esc(title)}</th>' for _, title in TOTALS)
    rows = []
    for row in matrix.rows:
        total = matrix.overall(row)
        ident = [row.label, row.profile, row.target, row.started or "not recorded"]
        tds = "".join(f'<td class="text">{esc(x)}</td>' for x in ident)
        tds += "".join(f"<td>{getattr(total, name)}</td>" for name, _ in TOTALS)
        rows.append(f"<tr>{tds}</tr>")
    return (
        '<h2>Runs</h2>\n<div class="scroll">\n<table class="totals">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</div>\n"
    )


def _footer(matrix: Matrix) -> str:
    esc = html.escape
    merged = [line for line in matrix.account() if line.startswith("merged: ")]
    replaced = [line for line in matrix.account() if line.startswith("replaced: ")]
    out = [f'<footer class="merge">\n<p>{esc(MERGE_NOTE)}</p>\n']
    for title, lines in (("merged", merged), ("replaced", replaced)):
        if lines:
            items = "".join(f"<li>{esc(line.split(': ', 1)[1])}</li>" for line in lines)
            out.append(f'<p>{title}:</p>\n<ul class="{title}">{items}</ul>\n')
    out.append("</footer>\n")
    return "".join(out)
