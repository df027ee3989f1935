"""Expiry: the completion window passing mid-run, on targets whose clock the suite controls."""

from __future__ import annotations

from typing import Any, TypeAlias

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..control import Control
from ..plugin import TestBudget
from . import _support as sup

pytestmark = [pytest.mark.capability("expiry"), pytest.mark.needs_control]

LINES = 5
FINISHED = 2
#: The expired batch run to its end and the ids that had succeeded, or the violation met.
Expired: TypeAlias = sup.Deferred[tuple[sup.Run, set[str]]]


@pytest.fixture(scope="module")
def expired(
    api: ApiClient, control: Control, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> Expired:
    """A batch of LINES lines, FINISHED of them processed, then the window passes (the
    emulator's clock is advanced): the run to its end, and the ids that had succeeded."""
    bc_budget.charge(strategies.batch_size(bc_profile, LINES), "expiry")
    return sup.Deferred.of(lambda: _expire(api, control, waiter, bc_profile, bc_target))


def _expire(
    api: ApiClient, control: Control, waiter: Waiter, bc_profile: Profile, bc_target: Target
) -> tuple[sup.Run, set[str]]:
    batch = strategies.build_valid(
        bc_profile, strategies.batch_size(bc_profile, LINES), prefix=f"expiry-{bc_target.seed}"
    )
    source = sup.stage_ok(api, bc_profile, batch.content)
    with sup.manual_progression(control):
        created = sup.create_ok(api, bc_profile, sup.batch_request(bc_profile, source, batch.endpoint))
        stepped: list[dict[str, Any]] = [created]
        sup.drive_to(control, bc_profile, created["id"], sup.status_of(bc_profile, "in_progress"), stepped)
        stepped.append(control.step(created["id"], lines=FINISHED))
        window = bc_profile.windows[str(sup.dialect(bc_profile).view(created).window)]
        control.advance(window + 1)
        # Poll while still manual: under a timed progression the emulator would first catch
        # the batch up to the new time, finishing it before the window passed.
        run = sup.run_to_end(
            api, waiter, bc_profile, created, batch.custom_ids, seen_before=stepped[1:], timeout="expiry"
        )
    succeeded = {str(line.get("custom_id")) for line in run.output_lines}
    return run, succeeded


def test_window_passing_expires_the_batch(expired: Expired, bc_profile: Profile, bc_target: Target) -> None:
    """A batch still running when its completion window passes MUST enter the profile's
    expiry status (with its timestamp set) and keep every batch invariant."""
    run, _ = expired.get()
    sup.expect_final_role(
        run,
        bc_profile,
        bc_profile.expiry.enters,
        "expiry-status",
        "the completion window passed but the batch did not expire",
        "expiry.enters",
    )
    sup.check_run(run, bc_profile, bc_target)


def test_expired_batch_keeps_finished_lines(expired: Expired, bc_profile: Profile) -> None:
    """An expired batch MUST keep the lines finished before the window passed among its
    successes and, where the profile says so, give every unfinished line a failure record
    with the profile's expired code (not an HTTP failure): each input line exactly once.
    (ScaiGrid: the batch ends completed, with error records for the unfinished lines.)"""
    run, succeeded = expired.get()
    if len(succeeded) < FINISHED:
        raise inv.violation(
            "expiry-keeps-results",
            f"{FINISHED} lines had finished before the window passed; the results hold {len(succeeded)} successes",
            received=sorted(succeeded),
            expected=f"{FINISHED} lines",
            profile=bc_profile,
            key="output.unfinished_on_expiry",
        )
    if bc_profile.output.unfinished_on_expiry != "error_file":
        inv.check_exactly_once(run.input_custom_ids, run.output_lines, run.error_lines, complete=False)
        return
    non_http = inv.check_error_file_lines(
        run.error_lines, [bc_profile.output.expired_code], bc_profile, "output.expired_code"
    )
    if len(non_http) != len(run.input_custom_ids) - FINISHED:
        raise inv.violation(
            "expiry-unfinished",
            "the unfinished lines are not all failure records with the expired code",
            received=[line.get("custom_id") for line in non_http],
            expected=f"{len(run.input_custom_ids) - FINISHED} lines with error.code {bc_profile.output.expired_code!r}",
            profile=bc_profile,
            key="output.expired_code",
        )
    inv.check_exactly_once(run.input_custom_ids, run.output_lines, run.error_lines)


@pytest.mark.capability("cancel")
def test_cancel_of_an_expired_batch(expired: Expired, api: ApiClient, bc_profile: Profile) -> None:
    """Cancelling an expired batch MUST answer as the profile says: the `cancel_terminal`
    error (409 envelope), or 200 with the batch unchanged where cancel of that status is
    idempotent."""
    run, _ = expired.get()
    status = str(run.final.get("status"))
    response = api.cancel_batch(run.batch_id)
    if status in bc_profile.lifecycle.cancel_idempotent:
        body = inv.expect_ok(response, bc_profile, "batch")
        inv.check_terminal_stays([run.final, body], bc_profile)
    else:
        inv.expect_error(response, bc_profile, "cancel_terminal", status=status)
