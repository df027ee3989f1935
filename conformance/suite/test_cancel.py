"""Cancel: in each cancellable status with partial results kept; refused once terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..control import Control
from ..plugin import TestBudget
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup

pytestmark = pytest.mark.capability("cancel")

LINES = 4


def _cancel_targets(profile: Profile) -> set[str]:
    """What a cancel request may answer: the cancelling status, or cancelled at once."""
    return {s for s in (profile.lifecycle.status("cancelling"), profile.lifecycle.status("cancelled")) if s}


def _check_cancel_response(response_body: Any, profile: Profile, what: str) -> None:
    targets = _cancel_targets(profile)
    if response_body.get("status") not in targets:
        raise inv.violation(
            "cancel-response",
            f"{what}: the cancel response is not in a cancelling or cancelled status",
            received=response_body.get("status"),
            expected=sorted(targets),
            profile=profile,
            key="lifecycle.cancellable",
        )


def _check_cancelled(run: sup.Run, profile: Profile, target: Target, done_ids: set[str]) -> None:
    """The cancelled batch: the lines finished before the cancel kept among the successes,
    the others failures with the profile's cancelled code, and every invariant (each
    reported: one does not hide another)."""
    checks = inv.Checks()
    with checks:
        sup.expect_final_role(
            run,
            profile,
            "cancelled",
            "cancel-final",
            "a cancelled batch did not end cancelled",
            "lifecycle.transitions.cancelling",
        )
    with checks:
        kept = {line.get("custom_id") for line in run.output_lines}
        if not done_ids <= kept:
            raise inv.violation(
                "cancel-keeps-results",
                "lines finished before the cancel are missing from the success records",
                received=sorted(str(k) for k in kept),
                expected=f"at least {sorted(done_ids)}",
                profile=profile,
                key="output.unfinished_on_cancel",
            )
    if profile.output.unfinished_on_cancel == "error_file":
        with checks:
            inv.check_error_file_lines(
                run.error_lines, [profile.output.cancelled_code], profile, "output.cancelled_code"
            )
        with checks:
            inv.check_exactly_once(run.input_custom_ids, run.output_lines, run.error_lines)
    with checks:
        sup.check_run(run, profile, target)
    checks.raise_any()


@pytest.mark.scenarios("cancel_validating")
def test_cancel_right_after_create(finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target) -> None:
    """A batch cancelled right after create (in its initial status) MUST accept the cancel
    (a schema-valid batch in the cancelling or cancelled status), end cancelled, and keep
    every batch invariant; lines it read MUST each be accounted for once."""
    done = finished("cancel_validating")
    response = sc.CANCEL_RESPONSES.get(done.batch_id)
    if response is not None:
        body = inv.expect_ok(response, bc_profile, "batch")
        _check_cancel_response(body, bc_profile, "cancel right after create")
    run = sup.view(done)
    checks = inv.Checks()
    with checks:
        sup.expect_final_role(
            run,
            bc_profile,
            "cancelled",
            "cancel-final",
            "a batch cancelled right after create did not end cancelled",
            "lifecycle.cancellable",
        )
    with checks:
        sup.check_run(run, bc_profile, bc_target)
    checks.raise_any()


def _cancel_in(
    role: str,
    api: ApiClient,
    control: Control,
    waiter: Waiter,
    profile: Profile,
    target: Target,
    budget: TestBudget,
    finished_lines: int,
) -> None:
    status = sup.status_of(profile, role)
    if status not in profile.lifecycle.cancellable:
        pytest.skip(f"{status!r} is not cancellable in profile {profile.name!r} (lifecycle.cancellable)")
    lines = strategies.batch_size(profile, LINES)
    batch = strategies.build_valid(profile, lines, prefix=f"cancel-{role}-{target.seed}")
    budget.charge(lines, f"cancel while {role}")
    source = sup.stage_ok(api, profile, batch.content)
    with sup.manual_progression(control):
        created = sup.create_ok(api, profile, sup.batch_request(profile, source, batch.endpoint))
        stepped: list[dict[str, Any]] = [created]
        sup.drive_to(control, profile, created["id"], sup.status_of(profile, "in_progress"), stepped)
        if finished_lines:
            stepped.append(control.step(created["id"], lines=finished_lines))
        sup.drive_to(control, profile, created["id"], status, stepped)
        done_count = sup.dialect(profile).view(stepped[-1]).completed
        response = api.cancel_batch(created["id"])
    body = inv.expect_ok(response, profile, "batch")
    _check_cancel_response(body, profile, f"cancel while {status}")
    history = [*stepped[1:], body]
    run = sup.run_to_end(api, waiter, profile, created, batch.custom_ids, seen_before=history, timeout="cancel")
    done_ids = {str(line.get("custom_id")) for line in run.output_lines}
    if len(done_ids) < done_count:
        raise inv.violation(
            "cancel-keeps-results",
            f"{done_count} lines had succeeded before the cancel but the results hold {len(done_ids)} successes",
            received=sorted(done_ids),
            expected=f"{done_count} lines",
            profile=profile,
            key="output.unfinished_on_cancel",
        )
    _check_cancelled(run, profile, target, done_ids)


@pytest.mark.needs_control
def test_cancel_while_in_progress_keeps_finished_lines(
    api: ApiClient, control: Control, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A batch cancelled while in progress (one line finished) MUST end cancelled with the
    finished line among the successes and, where the profile says unfinished lines get
    error records, every other line a failure with the profile's cancelled code: each input
    line exactly once."""
    _cancel_in("in_progress", api, control, waiter, bc_profile, bc_target, bc_budget, finished_lines=1)


def _has_finalizing(profile: Profile) -> str | None:
    if profile.lifecycle.status("finalizing") is None:
        return "its lifecycle has no finalizing status (lifecycle.roles)"
    return None


@pytest.mark.needs_control
@pytest.mark.applies.with_args(_has_finalizing)
def test_cancel_while_finalizing_keeps_every_line(
    api: ApiClient, control: Control, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A batch cancelled while finalizing (every line finished) MUST end cancelled with every
    line's result kept, each input line exactly once across the result records."""
    _cancel_in(
        "finalizing",
        api,
        control,
        waiter,
        bc_profile,
        bc_target,
        bc_budget,
        finished_lines=strategies.batch_size(bc_profile, LINES),
    )


@pytest.mark.scenarios("all_succeed")
def test_cancel_of_a_completed_batch_is_refused(
    api: ApiClient, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """Cancelling a completed batch MUST be refused with the catalogue's `cancel_terminal`
    error (409 envelope) and leave the batch completed."""
    done = finished("all_succeed")
    status = str(done.final.get("status"))
    inv.expect_error(api.cancel_batch(done.batch_id), bc_profile, "cancel_terminal", status=status)
    again = inv.expect_ok(api.retrieve_batch(done.batch_id), bc_profile, "batch")
    inv.check_terminal_stays([done.final, again], bc_profile)


@pytest.mark.scenarios("broken_lines")
def test_cancel_of_a_failed_batch_is_refused(
    api: ApiClient, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """Cancelling a batch that failed validation MUST be refused with the catalogue's
    `cancel_terminal` error (409 envelope)."""
    done = finished("broken_lines")
    status = str(done.final.get("status"))
    if status in bc_profile.lifecycle.cancel_idempotent:
        pytest.skip(f"profile {bc_profile.name!r} answers cancel of {status!r} with 200 (lifecycle.cancel_idempotent)")
    inv.expect_error(api.cancel_batch(done.batch_id), bc_profile, "cancel_terminal", status=status)


@pytest.mark.scenarios("cancel_validating")
def test_cancel_of_a_cancelled_batch_is_idempotent(
    api: ApiClient, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """Cancelling a batch that is already cancelled MUST answer as the profile says: 200 with
    the batch unchanged where cancel is idempotent, else the `cancel_terminal` error."""
    done = finished("cancel_validating")
    status = str(done.final.get("status"))
    response = api.cancel_batch(done.batch_id)
    if status not in bc_profile.lifecycle.cancel_idempotent:
        inv.expect_error(response, bc_profile, "cancel_terminal", status=status)
        return
    body = inv.expect_ok(response, bc_profile, "batch")
    inv.check_terminal_stays([done.final, body], bc_profile)
