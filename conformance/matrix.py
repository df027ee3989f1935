"""`batchconf matrix RESULTS...`: a provider x capability table from `--results` files.

Rows are (profile, target) pairs, columns the capabilities, each cell the counts of one
capability's checks with a verdict symbol:

    ✅ every check that ran passed        ❌ a check failed or errored
    ⚠️ only known deviations (xfail) or a deviation that is gone (xpass: stale profile data)
    ⚪ nothing ran: not offered by the profile (deselected), skipped, or not run (the
       target has no controls)

Tests left out with -k/-m are not counted.

Several files merge: a check (row, nodeid) seen in more than one file keeps its last
result, in the order the files are given, so a re-run of a flaky target replaces the old
line. Writes Markdown (`--md`), self-contained HTML (`--html`), or Markdown on stdout.
Exit status: 0 written, 2 unreadable input or no results.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Cell", "Matrix", "build", "load", "main", "render_html", "render_markdown"]

# The suite's capabilities in reading order; others follow alphabetically.
_ORDER = (
    "files",
    "create",
    "lifecycle",
    "records",
    "validation",
    "cancel",
    "expiry",
    "pagination",
    "auth",
    "isolation",
    "metadata",
    "usage",
    "storage_layout",
)

PASS, FAIL, WARN, NONE = "✅", "❌", "⚠️", "⚪"


class MatrixError(Exception):
    """An input file is missing or holds a line that is not a result."""


@dataclass
class Cell:
    """The counts of one capability's checks on one target."""

    passed: int = 0
    failed: int = 0
    error: int = 0
    xfailed: int = 0
    xpassed: int = 0
    skipped: int = 0
    deselected: int = 0
    not_offered: int = 0
    reasons: set[str] = field(default_factory=set)

    def add(self, outcome: str, reason: str = "", kind: str = "") -> None:
        """Count one check's outcome (`kind`: why a deselected check was deselected)."""
        if outcome in ("passed", "failed", "error", "xfailed", "xpassed", "skipped", "deselected"):
            setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "deselected":
            if kind in ("capability", "scenario", "dialect", "applies"):
                self.not_offered += 1
            if reason:
                self.reasons.add(reason)

    @property
    def ran(self) -> int:
        """Checks that ran to a verdict."""
        return self.passed + self.failed + self.error + self.xfailed + self.xpassed

    @property
    def verdict(self) -> str:
        """The cell's symbol (see the module docstring)."""
        if self.failed or self.error:
            return FAIL
        if self.xfailed or self.xpassed:
            return WARN
        if self.passed:
            return PASS
        return NONE

    def text(self) -> str:
        """The cell as text: "✅ 12/12", "❌ 10/12 (2 failed)", "⚠️ 3/4 (1 known deviation)", "⚪ not offered"."""
        if not self.ran:
            if self.not_offered:
                return f"{NONE} not offered"
            return f"{NONE} skipped" if self.skipped else f"{NONE} not run"
        notes = []
        if self.failed:
            notes.append(f"{self.failed} failed")
        if self.error:
            notes.append(f"{self.error} error{'s' if self.error > 1 else ''}")
        if self.xfailed:
            notes.append(f"{self.xfailed} known deviation{'s' if self.xfailed > 1 else ''}")
        if self.xpassed:
            notes.append(f"{self.xpassed} stale deviation{'s' if self.xpassed > 1 else ''}")
        if self.skipped:
            notes.append(f"{self.skipped} skipped")
        suffix = f" ({', '.join(notes)})" if notes else ""
        return f"{self.verdict} {self.passed}/{self.ran}{suffix}"

    def detail(self) -> str:
        """All counts, for a tooltip."""
        parts = [
            f"{name}={getattr(self, name)}"
            for name in ("passed", "failed", "error", "xfailed", "xpassed", "skipped", "deselected")
            if getattr(self, name)
        ]
        if self.reasons:
            parts.append("deselected because: " + "; ".join(sorted(self.reasons)))
        return ", ".join(parts)


@dataclass
class Matrix:
    """Rows (profile, target) x capability columns of cells, plus what went into it."""

    rows: list[tuple[str, str]]
    columns: list[str]
    cells: dict[tuple[tuple[str, str], str], Cell]
    sources: list[str]
    runs: list[str]

    def cell(self, row: tuple[str, str], column: str) -> Cell:
        """The cell (empty if nothing was recorded)."""
        return self.cells.get((row, column), Cell())

    def overall(self, row: tuple[str, str]) -> Cell:
        """All capabilities of a row summed."""
        total = Cell()
        for column in self.columns:
            c = self.cell(row, column)
            for name in ("passed", "failed", "error", "xfailed", "xpassed", "skipped", "deselected", "not_offered"):
                setattr(total, name, getattr(total, name) + getattr(c, name))
        return total


def _target_label(line: Mapping[str, Any]) -> str:
    if line.get("target_kind") == "emulator" or str(line.get("target", "")).startswith("emulator"):
        return "emulator"
    target = str(line.get("target", "?"))
    return urlsplit(target).netloc or target


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every result line of the files, in order; raises `MatrixError` naming file and line."""
    lines: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MatrixError(f"{path}: cannot read: {exc.strerror or exc}") from None
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise MatrixError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(value, dict) or not {"nodeid", "outcome", "profile"} <= value.keys():
                raise MatrixError(f"{path}:{number}: not a batchconf result line (needs nodeid, outcome, profile)")
            value["_source"] = str(path)
            lines.append(value)
    return lines


def build(lines: Iterable[Mapping[str, Any]]) -> Matrix:
    """Merge result lines into a matrix (the last line of a (row, nodeid) wins)."""
    latest: dict[tuple[tuple[str, str], str], Mapping[str, Any]] = {}
    sources: list[str] = []
    runs: list[str] = []
    for line in lines:
        if line.get("outcome") == "deselected" and line.get("reason_kind") == "option":
            # Left out with -k/-m: says nothing about the target, and must not hide the
            # result of another run.
            continue
        row = (str(line["profile"]), _target_label(line))
        latest[(row, str(line["nodeid"]))] = line
        src = str(line.get("_source", ""))
        if src and src not in sources:
            sources.append(src)
        target = line.get("target", row[1])
        run = f"{row[0]} on {target} (seed {line.get('seed', '?')}, batchconf {line.get('harness', '?')})"
        if run not in runs:
            runs.append(run)
    rows: list[tuple[str, str]] = []
    columns: set[str] = set()
    cells: dict[tuple[tuple[str, str], str], Cell] = {}
    for (row, _), line in latest.items():
        if row not in rows:
            rows.append(row)
        column = str(line.get("capability") or "(none)")
        columns.add(column)
        cells.setdefault((row, column), Cell()).add(
            str(line["outcome"]), str(line.get("message") or ""), str(line.get("reason_kind") or "")
        )
    ordered = [c for c in _ORDER if c in columns] + sorted(columns - set(_ORDER))
    return Matrix(sorted(rows), ordered, cells, sources, runs)


def _row_label(row: tuple[str, str]) -> str:
    return f"{row[0]} ({row[1]})"


def render_markdown(matrix: Matrix) -> str:
    """A Markdown table with a legend and the list of merged runs."""
    header = ["provider (target)", *matrix.columns, "overall"]
    out = ["# batchconf conformance matrix", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join(" --- " for _ in header) + "|")
    for row in matrix.rows:
        cells = [matrix.cell(row, c).text() for c in matrix.columns]
        out.append("| " + " | ".join([_md_escape(_row_label(row)), *cells, matrix.overall(row).text()]) + " |")
    out += [
        "",
        f"{PASS} all checks passed · {FAIL} a check failed · {WARN} known deviation (xfail) or stale deviation "
        f"(xpass) · {NONE} not offered by the profile, or skipped. Counts are passed/ran.",
        "",
        "Runs merged:",
        "",
        *[f"- {_md_escape(run)}" for run in matrix.runs],
        "",
    ]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: center; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.pass { background: #e7f6e7; } td.fail { background: #fbe3e3; }
td.warn { background: #fff5d6; } td.none { background: #f7f7f7; color: #777; }
p.legend, ul.runs { color: #555; font-size: 0.9em; }
"""

_CLASS = {PASS: "pass", FAIL: "fail", WARN: "warn", NONE: "none"}


def render_html(matrix: Matrix) -> str:
    """A self-contained HTML page (inline CSS, no scripts); each cell's title holds all its
    counts and deselection reasons."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in ["provider (target)", *matrix.columns, "overall"])
    body = []
    for row in matrix.rows:
        tds = [f"<td>{esc(_row_label(row))}</td>"]
        for cell in [*(matrix.cell(row, c) for c in matrix.columns), matrix.overall(row)]:
            tds.append(f'<td class="{_CLASS[cell.verdict]}" title="{esc(cell.detail())}">{esc(cell.text())}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    runs = "".join(f"<li>{esc(run)}</li>" for run in matrix.runs)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>batchconf conformance matrix</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>batchconf conformance matrix</h1>\n"
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"
        f'<p class="legend">{PASS} all checks passed · {FAIL} a check failed · {WARN} known deviation (xfail) '
        f"or stale deviation (xpass) · {NONE} not offered by the profile, or skipped. Counts are passed/ran.</p>\n"
        f'<p>Runs merged:</p>\n<ul class="runs">{runs}</ul>\n</body>\n</html>\n'
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchconf matrix",
        description="Merge batchconf --results files into a provider x capability matrix.",
    )
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="results files (JSON lines)")
    parser.add_argument("--md", type=Path, metavar="OUT.md", help="write the Markdown table here")
    parser.add_argument("--html", type=Path, metavar="OUT.html", help="write the HTML page here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 written, 2 bad input or usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        lines = load(args.results)
    except MatrixError as exc:
        print(f"batchconf matrix: {exc}", file=sys.stderr)
        return 2
    if not lines:
        print("batchconf matrix: the results files hold no result lines", file=sys.stderr)
        return 2
    matrix = build(lines)
    markdown = render_markdown(matrix)
    try:
        if args.md:
            args.md.parent.mkdir(parents=True, exist_ok=True)
            args.md.write_text(markdown, encoding="utf-8")
        if args.html:
            args.html.parent.mkdir(parents=True, exist_ok=True)
            args.html.write_text(render_html(matrix), encoding="utf-8")
    except OSError as exc:
        print(f"batchconf matrix: cannot write: {exc}", file=sys.stderr)
        return 2
    if not args.md and not args.html:
        sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
