"""What a check's report says: deviations, blocked tests, and short failure reports.

Three rewrites of pytest's reports, each for a reason a provider's engineer would give:

- A check that failed only on a profile fact marked unverified is a *deviation*: what we
  inferred about the provider, not evidence that it broke the contract. Its report becomes
  a skip carrying the user property `("batchconf_outcome", "deviation")` and the one-paragraph
  reason (fact, source, received, expected); the terminal counts it as "deviated", the
  results file and the matrix count it apart, and the exit status is untouched. A strict run
  (`--strict`) leaves the failure as it is.
- A test whose scenario failed is *blocked*: skipped, with the property
  `("batchconf_outcome", "blocked")` and a reference to the scenario's own report, where the
  cause is reported once.
- A failure's longrepr is, by default, the violation's own text (what, received, expected,
  where the contract says so) rather than pages of traceback; `--tb=long` (or any explicit
  `--tb`, or `--full-trace`) gives pytest's tracebacks back.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = [
    "BLOCKED",
    "DEVIATION",
    "OUTCOME_PROPERTY",
    "batchconf_outcome",
    "make_blocked",
    "make_deviation",
    "shorten_failure",
    "teststatus",
]

#: The user property that names batchconf's own outcome of a report.
OUTCOME_PROPERTY = "batchconf_outcome"
DEVIATION = "deviation"
BLOCKED = "blocked"

# A failure report keeps this many lines of an exception that is not a ContractViolation
# (a harness error, a plain assert): enough to say what happened, not a traceback.
_SHORT_LINES = 30


def batchconf_outcome(report: pytest.TestReport) -> str | None:
    """ "deviation", "blocked" or None for an ordinary report."""
    # Collection reports have no user properties.
    for name, value in getattr(report, "user_properties", ()):
        if name == OUTCOME_PROPERTY:
            return str(value)
    return None


def _location(report: pytest.TestReport) -> tuple[str, int]:
    path, lineno, _ = report.location
    return path, (lineno or 0) + 1


def make_deviation(item: pytest.Item, report: pytest.TestReport, fact: str, message: str) -> None:
    """Turn a failed call report into a deviation on `fact` (`"key (source: ...)"`)."""
    path, lineno = _location(report)
    report.outcome = "skipped"
    report.longrepr = (path, lineno, f"deviation from an inferred expectation ({fact}): {message}")
    _mark(item, report, DEVIATION)


def make_blocked(item: pytest.Item, report: pytest.TestReport) -> None:
    """Mark a setup report skipped because a scenario failed as blocked."""
    _mark(item, report, BLOCKED)


def _mark(item: pytest.Item, report: pytest.TestReport, outcome: str) -> None:
    report.user_properties.append((OUTCOME_PROPERTY, outcome))
    # The item's too: JUnit writes the properties of the teardown report, made later.
    item.user_properties.append((OUTCOME_PROPERTY, outcome))


def shorten_failure(report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Replace a failure's traceback with the exception's own account of itself."""
    from ._contract import ContractViolation

    exc = excinfo.value
    if isinstance(exc, ContractViolation):
        text = str(exc)
    else:
        lines = excinfo.exconly().splitlines()
        text = "\n".join(lines[:_SHORT_LINES])
        if len(lines) > _SHORT_LINES:
            text += f"\n… ({len(lines) - _SHORT_LINES} more lines; --tb=long shows everything)"
    path, lineno = _location(report)
    report.longrepr = f"{path}:{lineno}: {report.head_line or report.nodeid}\n{text}"


def teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, Any]]] | None:
    """The terminal's category, letter and word for batchconf's own outcomes."""
    kind = batchconf_outcome(report)
    if kind == DEVIATION and report.when == "call":
        return "deviated", "D", ("DEVIATION", {"yellow": True})
    if kind == BLOCKED and report.when == "setup":
        return "blocked", "b", ("BLOCKED", {"yellow": True})
    return None
