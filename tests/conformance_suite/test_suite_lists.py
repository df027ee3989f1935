"""List checks look only at the run's own items: one test's leftovers never fail another."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.invariants import ContractViolation
from conformance.suite import _support as sup
from schemas import load_profile

PROFILE = load_profile("openai")


def _batch(batch_id: str, **changes: Any) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-abc",
        "completion_window": "24h",
        "status": "completed",
        "output_file_id": "file-out",
        "error_file_id": None,
        "created_at": 1,
        "in_progress_at": 2,
        "expires_at": 86401,
        "finalizing_at": 3,
        "completed_at": 4,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 1, "completed": 1, "failed": 0},
        "metadata": None,
    }
    batch.update(changes)
    return batch


def _page(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": list(items),
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }


# A leftover the target accepted although the contract says it should not have been: its
# metadata value is longer than the 512 characters the contract allows.
FOREIGN = _batch("batch_foreign", metadata={"k": "v" * 600})


def test_a_foreign_item_that_breaks_the_schema_is_not_judged() -> None:
    page = _page(_batch("batch_mine"), FOREIGN)
    assert sup.own_page(page, PROFILE, "batch_list", {"batch_mine"}) is page


def test_an_own_item_that_breaks_the_schema_fails() -> None:
    page = _page(_batch("batch_mine", status="done"), FOREIGN)
    with pytest.raises(ContractViolation, match="batch_list"):
        sup.own_page(page, PROFILE, "batch_list", {"batch_mine"})


def test_without_owned_ids_every_item_is_judged() -> None:
    with pytest.raises(ContractViolation):
        sup.own_page(_page(FOREIGN), PROFILE, "batch_list", None)


def test_the_envelope_is_judged_whatever_the_items() -> None:
    page = _page(FOREIGN)
    del page["has_more"]
    with pytest.raises(ContractViolation):
        sup.own_page(page, PROFILE, "batch_list", set())


def test_a_walk_skips_foreign_items_but_keeps_them_in_the_list() -> None:
    from conformance.client import ApiResponse

    page = _page(_batch("batch_mine"), FOREIGN)
    response = ApiResponse(200, {}, b"", page, operation="list_batches", method="GET", url="/v1/batches")
    items = sup.walk_list(lambda after: response, PROFILE, "batch_list", limit=5, owned={"batch_mine"})
    assert [item["id"] for item in items] == ["batch_mine", "batch_foreign"]
