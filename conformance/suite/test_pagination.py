"""List pagination: limit, after, has_more, first_id, last_id; every walk bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from ..client import ApiClient
from ..scenarios import Finished
from . import _support as sup

pytestmark = [pytest.mark.capability("pagination"), pytest.mark.scenarios("all_succeed", "broken_lines")]

#: Batches this module knows exist (created up front by the main principal).
KNOWN = ("all_succeed", "broken_lines")


def _known_ids(finished: Callable[[str], Finished]) -> list[str]:
    return [finished(name).batch_id for name in KNOWN]


def _walk_batches(api: ApiClient, profile: Profile, ids: list[str], limit: int) -> list[dict[str, Any]]:
    wanted = set(ids)
    return sup.walk_list(
        lambda after: api.list_batches(limit=limit, after=after),
        profile,
        "batch_list",
        limit=limit,
        stop=lambda items: wanted <= {item["id"] for item in items},
        owned=api.owned,
    )


def test_batch_list_walk_finds_every_batch(
    api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Walking the batch list one small page at a time (`limit`, then `after` = the last id)
    MUST reach every batch of the caller, each page holding at most `limit` items, naming
    its first and last ids, saying `has_more`, and repeating no earlier item."""
    ids = _known_ids(finished)
    items = _walk_batches(api, bc_profile, ids, limit=1)
    missing = sorted(set(ids) - {item["id"] for item in items})
    if missing:
        raise inv.violation(
            "list-walk",
            f"the batch list walk (limit=1, at most {sup.MAX_PAGES} pages) did not reach every batch",
            received=[item["id"] for item in items[:20]],
            expected=f"pages reaching {missing}",
            profile=bc_profile,
            key="http.operations.list_batches",
        )


def test_batch_list_first_page_says_has_more(
    api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A page of `limit=1` while the caller has several batches MUST hold one batch and say
    `has_more: true`."""
    _known_ids(finished)
    page = sup.own_page(inv.expect_ok(api.list_batches(limit=1), bc_profile, None), bc_profile, "batch_list", api.owned)
    inv.check_list_page(page, bc_profile, "the first page of the batch list (limit=1)")
    if len(page["data"]) != 1 or page["has_more"] is not True:
        raise inv.violation(
            "list-has_more",
            "the first page (limit=1) of a list of several batches is wrong",
            received={"items": len(page["data"]), "has_more": page["has_more"]},
            expected={"items": 1, "has_more": True},
            source=inv.SPEC_LIST,
        )


def test_batch_list_order(api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]) -> None:
    """The batch list MUST follow the profile's order (newest first for `desc`) by `created_at`."""
    ids = _known_ids(finished)
    items = _walk_batches(api, bc_profile, ids, limit=2)
    stamps = [item["created_at"] for item in items]
    order = bc_profile.batches.list_order
    ordered = sorted(stamps, reverse=order == "desc")
    if stamps != ordered:
        raise inv.violation(
            "list-order",
            f"the batch list is not in {order} order of created_at",
            received=stamps[:20],
            expected=ordered[:20],
            profile=bc_profile,
            key="batches.list_order",
            observed=next(
                (o for o in ("asc", "desc") if stamps == sorted(stamps, reverse=o == "desc")), inv.NOT_OBSERVED
            ),
        )


def _files_api(profile: Profile) -> str | None:
    return None if profile.files.api else "it has no Files API (files.api = false)"


@pytest.mark.applies.with_args(_files_api)
def test_file_list_walk_is_bounded_and_consistent(
    api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """Walking the file list with `limit` and `after` MUST behave like the batch list: pages of
    at most `limit` files, first and last ids named, `has_more` sent, no file repeated, and
    the input file of a known batch reached."""
    wanted = str(finished("all_succeed").created["input_file_id"])
    items = sup.walk_list(
        lambda after: api.list_files(limit=2, after=after, purpose=bc_profile.files.batch_purpose),
        bc_profile,
        "file_list",
        limit=2,
        stop=lambda got: any(item["id"] == wanted for item in got),
        owned=api.owned,
    )
    if not any(item["id"] == wanted for item in items):
        raise inv.violation(
            "list-walk",
            f"the file list walk (limit=2, at most {sup.MAX_PAGES} pages) did not reach input file {wanted}",
            received=[item["id"] for item in items[:20]],
            expected=f"pages reaching {wanted}",
            profile=bc_profile,
            key="http.operations.list_files",
        )
