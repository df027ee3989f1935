"""Authentication: every operation refuses a request without a key or with a wrong one.

The checks use the ids of the `all_succeed` batch when it finished, and ids nobody holds
when it did not: authentication comes before any lookup, so a target whose batches all
break still gets its auth verdicts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from ..client import ApiClient, ApiResponse
from ..dialects import BatchParams, Input, adapter_for
from ..scenarios import Finished, ScenarioError

pytestmark = [pytest.mark.capability("auth"), pytest.mark.scenarios("all_succeed", optional=True)]


class _Unowned:
    """Stands in for the owner's batch when `all_succeed` did not finish: ids nobody holds."""

    def __init__(self, profile: Profile) -> None:
        self.batch_id = f"{profile.ids.batch}batchconf_auth_probe"
        self.created: dict[str, object] = {"input_file_id": f"{profile.ids.file}batchconf_auth_probe"}
        self.final: dict[str, object] = {}


def _owned(finished: Callable[[str], Finished], profile: Profile) -> Finished | _Unowned:
    try:
        return finished("all_succeed")
    except ScenarioError:
        return _Unowned(profile)


def _create(api: ApiClient, done: Finished | _Unowned, profile: Profile) -> ApiResponse:
    """A create request for the input of the owner's batch (or a small inline one)."""
    dialect = adapter_for(profile)
    if isinstance(done, Finished):
        view = dialect.view(done.created)
        params = BatchParams(window=view.window, endpoint=view.endpoint)
        source = dialect.input_of(done.created) or Input.of_content(strategies.build_valid(profile, 1).content)
    else:
        params = BatchParams(window=dialect.default_window(), endpoint=strategies.build_valid(profile, 1).endpoint)
        source = dialect.missing_input(0, api)
    return api.create_batch(dialect.create_body(source, params))


def _results(api: ApiClient, done: Finished | _Unowned, profile: Profile) -> ApiResponse:
    """A download of the owner's results behind `results_url`."""
    if not isinstance(done, Finished):
        pytest.skip("the all_succeed batch did not finish: there is no results URL to try without a key")
    url = done.final.get("results_url")
    if not isinstance(url, str):
        raise inv.violation(
            "results-url",
            f"completed batch {done.batch_id} has no results_url to fetch",
            received=url,
            expected="the URL of the results file",
            profile=profile,
            key="output.location",
        )
    return api.get_url(url)


#: One call per operation family, against a batch and a file that exist (for the owner).
CALLS: dict[str, Callable[[ApiClient, Finished | _Unowned, Profile], ApiResponse]] = {
    "list_batches": lambda api, done, profile: api.list_batches(limit=1),
    "retrieve_batch": lambda api, done, profile: api.retrieve_batch(done.batch_id),
    "create_batch": _create,
    "cancel_batch": lambda api, done, profile: api.cancel_batch(done.batch_id),
    "list_files": lambda api, done, profile: api.list_files(limit=1),
    "retrieve_file": lambda api, done, profile: api.retrieve_file(str(done.created["input_file_id"])),
    "file_content": lambda api, done, profile: api.file_content(str(done.created["input_file_id"])),
    "download_results": _results,
}


def _has_route(operation: str) -> Callable[[Profile], str | None]:
    def applies(profile: Profile) -> str | None:
        if operation == "download_results":
            if profile.output.location != "results_url":
                return f"its results are not behind a results URL (output.location = {profile.output.location!r})"
            return None
        if profile.http.route(operation) is None:
            return f"it has no {operation} operation (http.operations)"
        return None

    return applies


OPERATIONS = [pytest.param(name, marks=pytest.mark.applies.with_args(_has_route(name)), id=name) for name in CALLS]


def _call(name: str, api: ApiClient, done: Finished | _Unowned, profile: Profile) -> ApiResponse:
    return CALLS[name](api, done, profile)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_request_without_key_is_refused(
    operation: str, anon_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A request without credentials MUST be refused with the catalogue's 401 `missing_auth`
    envelope, whatever the operation."""
    response = _call(operation, anon_api, _owned(finished, bc_profile), bc_profile)
    inv.expect_error(response, bc_profile, "missing_auth")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_request_with_wrong_key_is_refused(
    operation: str, bad_key_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A request with a key that belongs to nobody MUST be refused with the catalogue's 401
    `unauthorized` envelope, whatever the operation."""
    response = _call(operation, bad_key_api, _owned(finished, bc_profile), bc_profile)
    inv.expect_error(response, bc_profile, "unauthorized")
