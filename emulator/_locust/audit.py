"""The lost-nothing audit of one finished batch, without Locust (so that tests import it).

`users.py` calls it for every batch a Locust user saw through to a terminal status, and
reports what it returns as a failed `AUDIT` pseudo-request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["AuditFailure", "audit_problems"]


class AuditFailure(AssertionError):
    """A result file lost, duplicated or invented a request, or its counts disagree."""


def audit_problems(
    submitted: list[str],
    status: str,
    counts: dict[str, Any],
    results: list[tuple[str, bool]],
    *,
    cancel_drops: bool = False,
) -> list[str]:
    """What is wrong with a finished batch: `counts` holds total/completed/failed,
    `results` one (custom_id, succeeded) per line of its result files; `cancel_drops`: a
    cancelled batch leaves its unfinished requests out of the results (the profile's
    `output.unfinished_on_cancel` is "dropped")."""
    seen = Counter(cid for cid, _ in results)
    ok_lines = sum(1 for _, ok in results if ok)
    err_lines = len(results) - ok_lines
    wanted = set(submitted)
    # A batch cancelled before it read its input (total 0) owes no lines; nor does a
    # cancelled batch of a provider whose profile drops the unfinished requests (Scaleway):
    # then only what came back is checked (once each, counted).
    owed = submitted
    if status == "cancelled" and (not counts.get("total") or cancel_drops):
        owed = []
    problems = []
    if status == "failed":
        problems.append("batch failed: its valid requests were never run")
    if (owed or counts.get("total")) and counts.get("total") != len(submitted):
        problems.append(f"total={counts.get('total')} for {len(submitted)} submitted lines")
    missing = [c for c in owed if seen[c] == 0]
    dups = [c for c, n in seen.items() if n > 1 and c in wanted]
    strangers = [c for c in seen if c not in wanted]
    if missing:
        problems.append(f"{len(missing)} custom_ids missing (e.g. {missing[0]})")
    if dups:
        problems.append(f"{len(dups)} custom_ids more than once (e.g. {dups[0]})")
    if strangers:
        problems.append(f"{len(strangers)} custom_ids never submitted (e.g. {strangers[0][:80]})")
    if counts.get("completed") != ok_lines or counts.get("failed") != err_lines:
        problems.append(
            f"counts completed={counts.get('completed')} failed={counts.get('failed')} but the results hold "
            f"{ok_lines} succeeded and {err_lines} failed lines"
        )
    return problems
