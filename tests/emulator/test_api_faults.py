"""API-level faults: 429 with Retry-After, 5xx and stalls on chosen operations, for a count or
a fraction of calls, so that a client's retry logic can be tested (the openai SDK retries
408/409/429/5xx)."""

from __future__ import annotations

import httpx
import openai
import pytest

from emulator import ApiFault, Emulator
from tests.emulator._support import ServerTarget


def test_sdk_retries_through_two_429s() -> None:
    """Two 429s with Retry-After on retrieve: an SDK allowed two retries gets the batch; one
    allowed none gets RateLimitError with the dialect's envelope; the rule counts its hits."""
    with Emulator() as emu:
        batches = emu.openai_client().batches
        created = emu.openai_client().files.create(file=("a.jsonl", b'{"a": 1}\n'), purpose="batch")
        batch = batches.create(input_file_id=created.id, endpoint="/v1/chat/completions", completion_window="24h")
        rule = emu.api_faults.add("retrieve_batch", status_code=429, retry_after=0, count=2)
        with pytest.raises(openai.RateLimitError) as caught:
            batches.retrieve(batch.id)
        assert caught.value.response.headers["retry-after"] == "0"
        assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "rate_limit_exceeded"
        assert emu.openai_client(max_retries=2).batches.retrieve(batch.id).id == batch.id
        assert rule.hits == 2
        assert batches.retrieve(batch.id).id == batch.id  # the rule is spent


def test_only_the_chosen_operation_fails() -> None:
    """A 503 on create_batch leaves list and retrieve alone; admin routes are never failed."""
    with Emulator() as emu, emu.http_client() as http:
        emu.api_faults.add("create_batch", status_code=503)
        refused = http.post("/v1/batches", json={"input_file_id": "file-x", "endpoint": "/v1/chat/completions"})
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "server_error"
        assert http.get("/v1/batches").status_code == 200
        assert http.get("/_emulator/info").status_code == 200


def test_fraction_is_seeded() -> None:
    """`fraction` fails about that share of calls, the same calls for the same seed."""

    def pattern(seed: int) -> list[int]:
        with Emulator(seed=seed) as emu, emu.http_client() as http:
            emu.api_faults.add("list_batches", status_code=500, fraction=0.5)
            return [http.get("/v1/batches").status_code for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert 8 <= first.count(500) <= 32 and set(first) == {200, 500}


def test_stall_outlasts_a_short_client_timeout(server: ServerTarget) -> None:
    """Served, a stalled call holds the client past its timeout; the SDK, allowed one retry,
    times out once and then gets its answer (the rule fails one call)."""
    with httpx.Client(base_url=server.root_url, timeout=10) as admin:
        added = admin.post("/_emulator/api-faults", json={"operation": "list_batches", "stall_seconds": 2, "count": 1})
        assert added.status_code == 200, added.text
        try:
            client = openai.OpenAI(api_key=server.api_keys[0], base_url=server.base_url, timeout=0.5, max_retries=1)
            assert client.batches.list().data is not None
            rules = admin.get("/_emulator/api-faults").json()["data"]
            assert [r["hits"] for r in rules] == [1]
        finally:
            admin.delete("/_emulator/api-faults")


def test_admin_routes_and_refusals() -> None:
    """POST /_emulator/api-faults adds a rule, GET lists it with its hits, DELETE clears; bad
    rules get a 400 naming the problem."""
    with Emulator() as emu, emu.http_client() as http:
        added = http.post("/_emulator/api-faults", json={"operation": "list_*", "status_code": 502, "count": 1})
        assert added.status_code == 200, added.text
        assert http.get("/v1/batches").status_code == 502
        listed = http.get("/_emulator/api-faults").json()["data"]
        assert listed[0]["hits"] == 1 and listed[0]["operation"] == "list_*"
        for bad in ({"status_code": 418}, {"status_code": 429, "stall_seconds": 1}, {"oops": 1}, {"count": 0}):
            refused = http.post("/_emulator/api-faults", json=bad)
            assert refused.status_code == 400, bad
        assert http.delete("/_emulator/api-faults").json() == {"data": []}
    with pytest.raises(ValueError):
        ApiFault(status_code=429, fraction=0)
