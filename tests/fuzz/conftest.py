"""The fuzz run's size, printed at the end: requests per surface and operation, by status."""

from __future__ import annotations

import pytest

from ._harness import CALLS, EXAMPLES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per operation fuzzed: how many requests, and the statuses they got."""
    if not CALLS:
        return
    terminalreporter.section(f"schemathesis: {EXAMPLES} generated examples per operation and mode")
    for run, operations in CALLS.items():
        total = sum(sum(statuses.values()) for statuses in operations.values())
        terminalreporter.write_line(f"{run}: {len(operations)} operations, {total} requests")
        for label, statuses in sorted(operations.items()):
            spread = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
            terminalreporter.write_line(f"  {label:<40} {sum(statuses.values()):>5}  ({spread})")
