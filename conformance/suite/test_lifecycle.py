"""The lifecycle of every scenario batch: status path, terminal states, timestamps, counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .._target import Target
from ..client import ApiClient
from ..scenarios import Finished
from . import _support as sup

pytestmark = pytest.mark.capability("lifecycle")

#: The scenarios whose whole life these tests check (each reaches another terminal status).
LIFECYCLE_SCENARIOS = ("all_succeed", "mixed_results", "cancel_validating", "broken_lines", "missing_input_file")
SCENARIOS = [pytest.param(name, marks=pytest.mark.scenarios(name), id=name) for name in LIFECYCLE_SCENARIOS]


def _states(done: Finished) -> list[dict[str, Any]]:
    return sup.states(sup.view(done))


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_observed_state_validates(name: str, finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Every batch body the target answers (create and each poll) MUST validate against the
    dialect's batch schema."""
    done = finished(name)
    for index, state in enumerate(_states(done)):
        inv.check_schema(bc_profile, "batch", state, f"observation #{index} of batch {done.batch_id}")


@pytest.mark.parametrize("name", SCENARIOS)
def test_statuses_follow_the_graph(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """The statuses observed while polling MUST be a path of the profile's transition graph
    (on a target polled sparsely: each status reachable from the one before), starting at
    the initial status."""
    done = finished(name)
    inv.check_initial_status(done.created, bc_profile)
    statuses = inv.observed_statuses(_states(done))
    inv.check_status_path(statuses, bc_profile, every_transition=sup.every_transition(bc_target))


@pytest.mark.parametrize("name", SCENARIOS)
def test_terminal_status_stays(
    name: str, finished: Callable[[str], Finished], api: ApiClient, bc_profile: Profile
) -> None:
    """A batch in a terminal status MUST stay exactly as it is: polled again, its status,
    timestamps, counts and result references MUST be unchanged."""
    done = finished(name)
    again = inv.expect_ok(api.retrieve_batch(done.batch_id), bc_profile, "batch")
    states = [*_states(done), again]
    inv.check_terminal_stays(states, bc_profile)
    fields = sup.dialect(bc_profile).stable_fields()
    before = {k: done.final.get(k) for k in fields}
    after = {k: again.get(k) for k in fields}
    if before != after:
        raise inv.violation(
            "terminal-stays",
            f"batch {done.batch_id} changed after reaching terminal status {done.final.get('status')!r}",
            received=after,
            expected=before,
            profile=bc_profile,
            key="lifecycle.terminal",
        )


@pytest.mark.parametrize("name", SCENARIOS)
def test_timestamps_are_set_once_on_entry_and_ordered(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """Each status timestamp MUST be set when its status is entered (and for every status
    each path to the current one passes), MUST NOT be set for a status not yet entered,
    MUST NOT change once set, and the set timestamps MUST be ordered along the graph."""
    inv.check_timestamps(_states(finished(name)), bc_profile)


@pytest.mark.parametrize("name", SCENARIOS)
def test_expires_at_is_created_at_plus_window(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """`expires_at` MUST equal `created_at` plus the completion window, from creation on."""
    inv.check_expires_at(_states(finished(name)), bc_profile)


@pytest.mark.parametrize("name", SCENARIOS)
def test_request_counts_never_decrease_and_add_up(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """The counts (OpenAI `request_counts`, ScaiGrid `*_count`) MUST never decrease,
    `completed + failed` MUST never exceed `total`, and at a terminal status that accounts
    for every line they MUST add up to `total`."""
    inv.check_request_counts(_states(finished(name)), bc_profile)


@pytest.mark.parametrize("name", SCENARIOS)
def test_file_ids_appear_only_when_due(name: str, finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Result references MUST NOT appear before a terminal status (where the profile says
    so); at the end they MUST be set exactly when results exist: OpenAI, an output file
    exactly when a line succeeded and an error file exactly when a line failed (unless the
    profile says empty files are created); ScaiGrid, `results_url` when completed or
    cancelled after processing started, null otherwise."""
    inv.check_file_ids(_states(finished(name)), bc_profile)
