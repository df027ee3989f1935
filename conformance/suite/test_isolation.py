"""Isolation between principals: another key neither sees nor touches my batches and files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas import Profile

from .. import invariants as inv
from ..client import ApiClient
from ..scenarios import Finished
from . import _support as sup

pytestmark = [pytest.mark.capability("isolation"), pytest.mark.scenarios("all_succeed")]


def test_other_key_cannot_read_my_batch(
    other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal retrieving my batch MUST get the catalogue's 404 `batch_not_found`,
    as if it did not exist."""
    batch_id = finished("all_succeed").batch_id
    inv.expect_error(other_api.retrieve_batch(batch_id), bc_profile, "batch_not_found", id=batch_id)


@pytest.mark.capability("cancel")
def test_other_key_cannot_cancel_my_batch(
    other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal cancelling my batch MUST get the catalogue's 404 `batch_not_found`
    (not the 409 an owner gets: that would reveal the batch)."""
    batch_id = finished("all_succeed").batch_id
    inv.expect_error(other_api.cancel_batch(batch_id), bc_profile, "batch_not_found", id=batch_id)


def _files_api(profile: Profile) -> str | None:
    return None if profile.files.api else "it has no Files API (files.api = false)"


def _results_url(profile: Profile) -> str | None:
    if profile.output.location != "results_url":
        return f"its results are not behind a results URL (output.location = {profile.output.location!r})"
    return None


@pytest.mark.applies.with_args(_files_api)
@pytest.mark.parametrize("operation", ["retrieve_file", "file_content"])
def test_other_key_cannot_read_my_files(
    operation: str, other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal retrieving or downloading my input or output file MUST get the
    catalogue's 404 `file_not_found`."""
    done = finished("all_succeed")
    call = other_api.retrieve_file if operation == "retrieve_file" else other_api.file_content
    for file_id in (done.created["input_file_id"], done.final.get("output_file_id")):
        if file_id is not None:
            inv.expect_error(call(str(file_id)), bc_profile, "file_not_found", id=file_id)


def test_other_key_does_not_list_my_batches(
    other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal's batch list (walked, bounded) MUST NOT contain my batch."""
    batch_id = finished("all_succeed").batch_id
    items = sup.walk_list(
        lambda after: other_api.list_batches(limit=100, after=after), bc_profile, "batch_list", limit=100
    )
    if any(item["id"] == batch_id for item in items):
        raise inv.violation(
            "isolation-list",
            "another principal's batch list shows my batch",
            received=batch_id,
            expected="a list without it",
            profile=bc_profile,
            key="capabilities.isolation",
        )


@pytest.mark.applies.with_args(_results_url)
def test_other_key_cannot_read_my_results(
    other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal fetching my batch's `results_url` MUST get the catalogue's 404
    `batch_not_found`, as if the batch did not exist."""
    done = finished("all_succeed")
    url = done.final.get("results_url")
    if not isinstance(url, str):
        raise inv.violation(
            "results-url",
            "a completed batch has no results_url to fetch",
            received=url,
            expected="the URL of the results file",
            profile=bc_profile,
            key="output.location",
        )
    inv.expect_error(other_api.get_url(url), bc_profile, "batch_not_found", id=done.batch_id)


@pytest.mark.applies.with_args(_files_api)
def test_other_key_does_not_list_my_files(
    other_api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Another principal's file list (walked, bounded) MUST NOT contain my input file."""
    file_id = finished("all_succeed").created["input_file_id"]
    items = sup.walk_list(
        lambda after: other_api.list_files(limit=100, after=after), bc_profile, "file_list", limit=100
    )
    if any(item["id"] == file_id for item in items):
        raise inv.violation(
            "isolation-list",
            "another principal's file list shows my file",
            received=file_id,
            expected="a list without it",
            profile=bc_profile,
            key="capabilities.isolation",
        )
