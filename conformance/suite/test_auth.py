"""Authentication: every operation refuses a request without a key or with a wrong one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas import Profile

from .. import invariants as inv
from ..client import ApiClient, ApiResponse
from ..scenarios import Finished

pytestmark = [pytest.mark.capability("auth"), pytest.mark.scenarios("all_succeed")]

#: One call per operation family, against a batch and a file that exist (for the owner).
CALLS: dict[str, Callable[[ApiClient, Finished], ApiResponse]] = {
    "list_batches": lambda api, done: api.list_batches(limit=1),
    "retrieve_batch": lambda api, done: api.retrieve_batch(done.batch_id),
    "create_batch": lambda api, done: api.create_batch(
        {
            "input_file_id": done.created["input_file_id"],
            "endpoint": done.created["endpoint"],
            "completion_window": done.created["completion_window"],
        }
    ),
    "cancel_batch": lambda api, done: api.cancel_batch(done.batch_id),
    "list_files": lambda api, done: api.list_files(limit=1),
    "retrieve_file": lambda api, done: api.retrieve_file(str(done.created["input_file_id"])),
    "file_content": lambda api, done: api.file_content(str(done.created["input_file_id"])),
}


def _call(name: str, api: ApiClient, done: Finished, profile: Profile) -> ApiResponse:
    route = profile.http.route(name)
    if route is None:
        pytest.skip(f"profile {profile.name!r} has no {name} operation (http.operations)")
    return CALLS[name](api, done)


@pytest.mark.parametrize("operation", list(CALLS))
def test_request_without_key_is_refused(
    operation: str, anon_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A request without credentials MUST be refused with the catalogue's 401 `missing_auth`
    envelope, whatever the operation."""
    response = _call(operation, anon_api, finished("all_succeed"), bc_profile)
    inv.expect_error(response, bc_profile, "missing_auth")


@pytest.mark.parametrize("operation", list(CALLS))
def test_request_with_wrong_key_is_refused(
    operation: str, bad_key_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A request with a key that belongs to nobody MUST be refused with the catalogue's 401
    `unauthorized` envelope, whatever the operation."""
    response = _call(operation, bad_key_api, finished("all_succeed"), bc_profile)
    inv.expect_error(response, bc_profile, "unauthorized")
