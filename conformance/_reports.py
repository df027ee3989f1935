"""The `--results` file: one JSON line per check, redacted.

Each selected test yields one line once its teardown is reported, with its outcome folded
from the setup, call and teardown reports; each deselected test yields one line with the
reason. Every line also carries the run's meta (its name, start time, profile, target, seed
and harness version), so that `conformance.matrix` can merge files of different runs.

Outcomes (`OUTCOMES`): pytest's own (passed, failed, error, skipped, xfailed, xpassed), plus
"deselected" (not offered by the profile, or left out), and two the plugin signals on a
skipped report with the user property `("batchconf_outcome", ...)`:

- "deviation": the check failed only on a profile fact marked unverified; the message names
  the fact, its source, what was received and what was expected.
- "blocked": the check did not run because a scenario it depends on failed; the message names
  the scenario.

Node ids do not depend on the directory the run started from: a suite test's id is cut to
start at `conformance/suite/` (see `normalise_nodeid`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only for annotations: `batchconf matrix` imports this module and need not load pytest.
    from pytest import TestReport

__all__ = ["OUTCOMES", "OUTCOME_PROPERTY", "ItemInfo", "ResultsRecorder", "normalise_nodeid"]

#: Every outcome a line may carry.
OUTCOMES = (
    "passed",
    "failed",
    "error",
    "skipped",
    "blocked",
    "xfailed",
    "deviation",
    "xpassed",
    "deselected",
)

#: The user property (name) by which the plugin marks a skipped report as a "deviation" or
#: "blocked" (its value).
OUTCOME_PROPERTY = "batchconf_outcome"
_SIGNALLED = ("deviation", "blocked")

# Where the suite's modules sit inside the distribution: pytest names them relative to its
# rootdir, which depends on the directory the run started from (`../../.venv/lib/...`).
_SUITE_PREFIX = "conformance/suite/"
_SUITE_DIR = Path(__file__).resolve().parent / "suite"

# A failure message keeps this many lines: enough for the violated rule and what was
# received; the whole traceback is in JUnit.
_MESSAGE_LINES = 12
_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class ItemInfo:
    """What the plugin knows of a collected test: its function name, capability marker,
    declared scenarios and file (`item.path`; None for an item that is no file's, such as a
    scenario's)."""

    nodeid: str
    test: str
    capability: str | None
    scenarios: tuple[str, ...] = ()
    path: Path | None = None


@dataclass
class _Pending:
    info: ItemInfo
    outcome: str | None = None
    message: str = ""
    duration: float = 0.0


@dataclass
class ResultsRecorder:
    """Folds test reports into result lines. `meta` (target_name, started, profile, target,
    target_kind, seed, harness) is added to every line; `redact` cleans every string; node ids
    are normalised (`normalise_nodeid`)."""

    meta: Mapping[str, Any]
    redact: Callable[[str], str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def deselected(self, info: ItemInfo, reason: str, kind: str) -> None:
        """Record a deselected test; `kind` is "capability", "dialect", "applies",
        "controls", "scenario", "receiver" or "option" (pytest's -k/-m)."""
        self._emit(info, "deselected", reason, 0.0, reason_kind=kind)

    def report(self, report: TestReport, info: ItemInfo) -> None:
        """Fold one phase report of a test; the line is emitted at teardown."""
        pending = self._pending.setdefault(report.nodeid, _Pending(info))
        pending.duration += float(report.duration or 0.0)
        outcome, message = _classify(report)
        if outcome is not None and _rank(outcome) > _rank(pending.outcome):
            pending.outcome, pending.message = outcome, message
        if report.when == "teardown":
            del self._pending[report.nodeid]
            self._emit(info, pending.outcome or "passed", pending.message, pending.duration)

    def flush(self) -> None:
        """Emit tests whose teardown never came (an interrupted run) with what is known."""
        for pending in self._pending.values():
            self._emit(pending.info, pending.outcome or "error", pending.message or "interrupted", pending.duration)
        self._pending.clear()

    def _emit(self, info: ItemInfo, outcome: str, message: str, duration: float, **extra: Any) -> None:
        line: dict[str, Any] = {
            "nodeid": self.redact(normalise_nodeid(info.nodeid, info.path)),
            "test": info.test,
            "capability": info.capability,
            "outcome": outcome,
            **self.meta,
            "duration": round(duration, 6),
            "message": self.redact(_shorten(message)),
        }
        if info.scenarios:
            line["scenarios"] = list(info.scenarios)
        line.update(extra)
        self.lines.append(line)

    def write(self, path: Path) -> None:
        """Write every line (JSON, one per line) to `path`, creating its folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for line in self.lines:
                fh.write(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n")


def normalise_nodeid(nodeid: str, file: Path | None = None) -> str:
    """A suite test's node id from `conformance/suite/` on, whatever prefix pytest gave its
    path; any other id unchanged.

    pytest names a test by its path relative to its rootdir or to the argument that found it,
    so the name depends on where the run started: `../../.venv/lib/python3.11/site-packages/
    conformance/suite/test_x.py::t`, or `suite/test_x.py::t` under `--pyargs conformance`.
    Given the test's `file`, it is compared with the suite's own folder; without it (a results
    file read later) only a path through a `conformance/suite/` folder is recognised.
    """
    path, sep, rest = nodeid.partition("::")
    if file is not None:
        try:
            inside = file.resolve().relative_to(_SUITE_DIR)
        except ValueError:
            pass
        else:
            return _SUITE_PREFIX + inside.as_posix() + sep + rest
    if path.startswith(_SUITE_PREFIX):
        return nodeid
    # The last occurrence at a path component boundary: a folder merely ending in
    # "conformance" (myconformance/suite/) is not the suite.
    at = path.rfind("/" + _SUITE_PREFIX)
    if at < 0:
        return nodeid
    return path[at + 1 :] + sep + rest


# Which outcome of the three phases describes the test: an error in setup or teardown wins
# over the call's outcome, a failure over a pass. Blocked ranks like skipped; a deviation
# (a failure on an unverified fact) above a known deviation and below a failure.
_RANKS = {
    None: 0,
    "passed": 1,
    "skipped": 2,
    "blocked": 2,
    "xfailed": 3,
    "deviation": 4,
    "xpassed": 5,
    "failed": 6,
    "error": 7,
}


def _rank(outcome: str | None) -> int:
    return _RANKS.get(outcome, 0)


def _classify(report: TestReport) -> tuple[str | None, str]:
    wasxfail = getattr(report, "wasxfail", None)
    if report.outcome == "passed":
        if report.when != "call":
            return None, ""
        if wasxfail is not None:
            return "xpassed", str(wasxfail)
        return "passed", ""
    if report.outcome == "skipped":
        if wasxfail is not None:
            return "xfailed", str(wasxfail).removeprefix("reason: ")
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        return _signalled(report) or "skipped", reason.removeprefix("Skipped: ")
    # failed
    text = _failure_text(report)
    if report.when != "call":
        return "error", text
    if isinstance(report.longrepr, str) and report.longrepr.startswith("[XPASS(strict)]"):
        # A known deviation that no longer happens: the profile's data is stale.
        return "xpassed", report.longrepr
    return "failed", text


def _signalled(report: TestReport) -> str | None:
    """The outcome the plugin signalled ("deviation" or "blocked"), if any; the last mark wins."""
    found = None
    for name, value in report.user_properties:
        if name == OUTCOME_PROPERTY and value in _SIGNALLED:
            found = str(value)
    return found


def _failure_text(report: TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message:
        return message
    return report.longreprtext


def _shorten(message: str) -> str:
    lines = message.strip().splitlines()
    text = "\n".join(lines[:_MESSAGE_LINES])
    if len(lines) > _MESSAGE_LINES:
        text += f"\n… ({len(lines) - _MESSAGE_LINES} more lines)"
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + "…"
    return text
