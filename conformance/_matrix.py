"""The matrix as data: result lines read, grouped into runs and merged into cells.

`conformance.matrix` describes the marks and runs the command; `_matrix_md` and
`_matrix_html` render what `build` returns.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._reports import normalise_nodeid

__all__ = [
    "COUNTS_NOTE",
    "DEVIATION",
    "FAIL",
    "KNOWN",
    "MARKS",
    "MERGE_NOTE",
    "NA",
    "PASS",
    "STALE",
    "TOTALS",
    "Cell",
    "Listed",
    "Matrix",
    "MatrixError",
    "Replacement",
    "Row",
    "Run",
    "build",
    "load",
]

# The marks: words, not glyphs, so that they read the same in a terminal, a diff and a screen
# reader; the HTML adds a colour per mark.
PASS, FAIL, DEVIATION, KNOWN, STALE, NA = "PASS", "FAIL", "DEVIATION", "KNOWN", "STALE", "N/A"

#: Each mark with its meaning, in order of precedence (a cell shows the first that applies).
MARKS: tuple[tuple[str, str], ...] = (
    (FAIL, "a check failed or errored (deviations in the same cell are counted in its note)"),
    (DEVIATION, "a check failed only on a profile fact marked unverified; it does not fail the run"),
    (STALE, "a known deviation no longer happens (xpass): the profile's data is stale"),
    (KNOWN, "a deviation the profile records as known (xfail)"),
    (PASS, "every check that ran passed"),
    (NA, "nothing ran: not offered by the profile, skipped, blocked by a failed scenario, or not run"),
)

#: Read under the legend.
COUNTS_NOTE = (
    "Counts are passed/ran. n/a counts checks that did not apply: not offered by the profile, or "
    "needing what the target lacks (admin routes, a webhook receiver)."
)

#: Heads the account of a merge.
MERGE_NOTE = (
    "What went into this matrix (a later run of the same name, target and profile replaces an "
    "earlier one check by check):"
)

#: A run's totals: (Cell attribute, column title).
TOTALS: tuple[tuple[str, str], ...] = (
    ("passed", "passed"),
    ("failed", "failed"),
    ("error", "errors"),
    ("deviation", "deviations"),
    ("xfailed", "known"),
    ("xpassed", "stale"),
    ("skipped", "skipped"),
    ("blocked", "blocked"),
    ("deselected", "n/a"),
)

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

# Outcomes counted by a cell, and those whose checks a cell lists (most severe first).
_COUNTED = ("passed", "failed", "error", "xfailed", "deviation", "xpassed", "skipped", "blocked", "deselected")
_LISTED = ("error", "failed", "deviation", "xpassed", "xfailed", "blocked")
#: How a listed outcome is named next to its check.
OUTCOME_WORDS = {
    "error": "error",
    "failed": "failed",
    "deviation": "deviation",
    "xpassed": "stale",
    "xfailed": "known",
    "blocked": "blocked",
}
# A listed reason is one line; a paragraph-long first line is cut.
_REASON_CHARS = 240


class MatrixError(Exception):
    """An input file is missing or holds a line that is not a result."""


@dataclass(frozen=True)
class Listed:
    """A check a cell lists: its outcome, the tests (one, or every test blocked for the same
    reason) and the first line of its message."""

    outcome: str
    tests: tuple[str, ...]
    reason: str

    @property
    def word(self) -> str:
        """The outcome as the reports name it ("failed", "deviation", "known", "stale", ...)."""
        return OUTCOME_WORDS.get(self.outcome, self.outcome)


@dataclass
class Cell:
    """The counts of one capability's checks in one run, and the checks worth reading."""

    passed: int = 0
    failed: int = 0
    error: int = 0
    xfailed: int = 0
    deviation: int = 0
    xpassed: int = 0
    skipped: int = 0
    blocked: int = 0
    deselected: int = 0
    not_offered: int = 0
    reasons: set[str] = field(default_factory=set)
    checks: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, outcome: str, reason: str = "", kind: str = "", test: str = "") -> None:
        """Count one check's outcome (`kind`: why a deselected check was deselected; `test`:
        the check's name, listed when the outcome is worth reading)."""
        if outcome in _COUNTED:
            setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "deselected":
            if kind in ("capability", "scenario", "dialect", "applies"):
                self.not_offered += 1
            if reason:
                self.reasons.add(reason)
        if outcome in _LISTED:
            self.checks.append((outcome, test, first_line(reason)))

    def merge(self, other: Cell) -> None:
        """Add another cell's counts (not its listed checks): a row's overall cell."""
        for name in (*_COUNTED, "not_offered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def ran(self) -> int:
        """Checks that ran to a verdict."""
        return self.passed + self.failed + self.error + self.xfailed + self.deviation + self.xpassed

    @property
    def verdict(self) -> str:
        """The cell's mark (see `MARKS`)."""
        if self.failed or self.error:
            return FAIL
        if self.deviation:
            return DEVIATION
        if self.xpassed:
            return STALE
        if self.xfailed:
            return KNOWN
        if self.passed:
            return PASS
        return NA

    def counts(self) -> str:
        """passed/ran ("10/12"), or what kept the checks from running ("not offered")."""
        if self.ran:
            return f"{self.passed}/{self.ran}"
        if self.blocked or self.skipped:
            return ""
        return "not offered" if self.not_offered else "not run"

    def notes(self) -> list[str]:
        """What is not a pass, counted: ["2 failed", "1 deviation", "3 blocked"]."""
        out = []
        for count, one, many in (
            (self.failed, "failed", "failed"),
            (self.error, "error", "errors"),
            (self.deviation, "deviation", "deviations"),
            (self.xpassed, "stale", "stale"),
            (self.xfailed, "known", "known"),
            (self.blocked, "blocked", "blocked"),
            (self.skipped, "skipped", "skipped"),
        ):
            if count:
                out.append(f"{count} {one if count == 1 else many}")
        return out

    def text(self) -> str:
        """The cell as text: "PASS 12/12", "FAIL 10/12 (1 failed, 1 deviation)",
        "DEVIATION 3/4 (1 deviation)", "N/A not offered", "N/A (4 blocked)"."""
        notes = self.notes()
        parts = [self.verdict, self.counts()]
        if notes:
            parts.append(f"({', '.join(notes)})")
        return " ".join(p for p in parts if p)

    def detail(self) -> str:
        """All counts, for a tooltip."""
        parts = [f"{name}={getattr(self, name)}" for name in _COUNTED if getattr(self, name)]
        if self.reasons:
            parts.append("deselected because: " + "; ".join(sorted(self.reasons)))
        return ", ".join(parts)

    def listed(self) -> list[Listed]:
        """The checks worth reading, most severe first; blocked checks grouped by reason (one
        failed scenario blocks many)."""
        singles = sorted((c for c in self.checks if c[0] != "blocked"), key=lambda c: (_LISTED.index(c[0]), c[1]))
        out = [Listed(outcome, (test,), reason) for outcome, test, reason in singles]
        blocked: dict[str, list[str]] = {}
        for outcome, test, reason in self.checks:
            if outcome == "blocked":
                blocked.setdefault(reason, []).append(test)
        out += [Listed("blocked", tuple(sorted(tests)), reason) for reason, tests in sorted(blocked.items())]
        return out


def first_line(message: str) -> str:
    """The first non-blank line of a message, cut to a readable length."""
    line = next((x.strip() for x in message.splitlines() if x.strip()), "")
    return line if len(line) <= _REASON_CHARS else line[: _REASON_CHARS - 1] + "…"


#: (name, target, profile): the identity of a row; runs with the same key merge into it.
RowKey = tuple[str, str, str]


@dataclass
class Run:
    """One run read from a results file: its identity, where it was read and what it held."""

    key: RowKey
    profile: str
    target: str
    started: str | None
    source: str
    checks: int = 0
    kept: int = 0

    @property
    def name(self) -> str:
        """The run's name (`--target-name`, or the profile and the target)."""
        return self.key[0]

    def describe(self) -> str:
        """One line naming the run: "acme (profile openai, target https://…, started …, from r.jsonl)"."""
        started = f"started {self.started}" if self.started else "start time not recorded"
        return f"{self.name} (profile {self.profile}, target {self.target}, {started}, from {self.source})"


@dataclass(frozen=True)
class Replacement:
    """Checks of an earlier run that a later run of the same name, target and profile
    replaced."""

    old: Run
    new: Run
    count: int

    def describe(self) -> str:
        """One line: which run lost how many checks to which."""
        whole = " (all of them)" if self.old.kept == 0 else ""
        return (
            f"{self.old.describe()}: {self.count} of {self.old.checks} checks{whole} replaced by the run "
            f"started {self.new.started or '(not recorded)'} from {self.new.source}"
        )


@dataclass
class Row:
    """A row of the matrix: the runs of one name, target and profile, merged."""

    key: RowKey
    label: str
    profile: str
    target: str
    started: str | None


@dataclass
class Matrix:
    """Rows (runs) x capability columns of cells, plus what went into it."""

    rows: list[Row]
    columns: list[str]
    cells: dict[tuple[RowKey, str], Cell]
    sources: list[str]
    runs: list[Run]
    replaced: list[Replacement]

    @property
    def labels(self) -> list[str]:
        """The rows' labels, in order."""
        return [row.label for row in self.rows]

    def row(self, label: str) -> Row:
        """The row with this label (KeyError if none)."""
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def cell(self, row: Row | str, column: str) -> Cell:
        """The cell of a row (or its label) and a capability (empty if nothing was recorded)."""
        key = (row if isinstance(row, Row) else self.row(row)).key
        return self.cells.get((key, column), Cell())

    def overall(self, row: Row | str) -> Cell:
        """All capabilities of a row summed."""
        total = Cell()
        for column in self.columns:
            total.merge(self.cell(row, column))
        return total

    def account(self) -> list[str]:
        """What the merge did, one line each: "merged: <run>" and "replaced: <run>: ..."."""
        lines = [f"merged: {run.describe()}" for run in self.runs if run.kept]
        lines += [f"replaced: {r.describe()}" for r in self.replaced]
        return lines


def _target_label(line: Mapping[str, Any]) -> str:
    if line.get("target_kind") == "emulator" or str(line.get("target", "")).startswith("emulator"):
        return "emulator"
    target = str(line.get("target", "?"))
    return urlsplit(target).netloc or target


def _name(line: Mapping[str, Any]) -> str:
    """The run's name; the plugin's default name (profile and full target) and files written
    before runs had names both read as "profile (host)"."""
    profile, target = str(line["profile"]), str(line.get("target", "?"))
    name = line.get("target_name")
    if not name or name == f"{profile} ({target})":
        return f"{profile} ({_target_label(line)})"
    return str(name)


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
    """Merge result lines into a matrix. A check (row, node id) seen in more than one run
    keeps its last result, so a later run of the same name, target and profile replaces an
    earlier one check by check; the matrix records which."""
    runs: dict[tuple[RowKey, str | None, str], Run] = {}
    latest: dict[tuple[RowKey, str], tuple[Mapping[str, Any], Run]] = {}
    moved: Counter[tuple[int, int]] = Counter()
    sources: list[str] = []
    for line in lines:
        if line.get("outcome") == "deselected" and line.get("reason_kind") == "option":
            # Left out with -k/-m: says nothing about the target, and must not hide the
            # result of another run.
            continue
        key: RowKey = (_name(line), _target_label(line), str(line["profile"]))
        source = str(line.get("_source", ""))
        if source and source not in sources:
            sources.append(source)
        started = str(line["started"]) if line.get("started") else None
        run = runs.setdefault(
            (key, started, source), Run(key, key[2], str(line.get("target", key[1])), started, source or "(input)")
        )
        run.checks += 1
        slot = (key, normalise_nodeid(str(line["nodeid"])))
        previous = latest.get(slot)
        if previous is not None and previous[1] is not run:
            moved[(id(previous[1]), id(run))] += 1
        latest[slot] = (line, run)
    by_id = {id(run): run for run in runs.values()}
    for _, run in latest.values():
        run.kept += 1
    replaced = [Replacement(by_id[old], by_id[new], count) for (old, new), count in moved.items()]

    cells: dict[tuple[RowKey, str], Cell] = {}
    columns: set[str] = set()
    for (key, nodeid), (line, _) in latest.items():
        column = str(line.get("capability") or "(none)")
        columns.add(column)
        cells.setdefault((key, column), Cell()).add(
            str(line["outcome"]),
            str(line.get("message") or ""),
            str(line.get("reason_kind") or ""),
            nodeid.rsplit("::", 1)[-1],
        )
    ordered = [c for c in _ORDER if c in columns] + sorted(columns - set(_ORDER))
    kept = [run for run in runs.values() if run.kept]
    return Matrix(_rows(kept), ordered, cells, sources, list(runs.values()), replaced)


def _rows(runs: list[Run]) -> list[Row]:
    """One row per key, showing its latest run's target and start time; a name shared by
    rows of different targets or profiles is told apart by them."""
    rows: dict[RowKey, Row] = {}
    for run in runs:
        row = rows.get(run.key)
        if row is None:
            rows[run.key] = Row(run.key, run.name, run.profile, run.target, run.started)
        elif run.started and (row.started is None or run.started > row.started):
            row.target, row.started = run.target, run.started
    names = Counter(key[0] for key in rows)
    for row in rows.values():
        if names[row.key[0]] > 1:
            row.label = f"{row.key[0]} [{row.profile}, {row.key[1]}]"
    return sorted(rows.values(), key=lambda r: (r.label, r.key))
