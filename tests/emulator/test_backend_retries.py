"""A provider retries its model backend's transient failures (408, 429, 5xx, timeouts):
the line is written once, with its last answer, and counted once."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from emulator import Emulator, TimingModel


def _run(emu: Emulator, ids: list[str]) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    client = emu.openai_client()
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
        }
        for cid in ids
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(10):
        batch = client.batches.retrieve(batch.id)
        if batch.status == "completed":
            break

    def read(file_id: str | None) -> list[dict[str, Any]]:
        return [json.loads(x) for x in client.files.content(file_id).text.splitlines()] if file_id else []

    return batch, read(batch.output_file_id), read(batch.error_file_id)


@pytest.mark.parametrize(("attempts", "succeeded"), [(3, True), (2, False), (1, False)])
def test_transient_fault_is_retried(attempts: int, succeeded: bool) -> None:
    """A fault that fails the first two attempts at a line: with three attempts the line
    succeeds, with fewer it fails with the backend's last answer; either way once."""
    with Emulator(timing=TimingModel(backend_attempts=attempts)) as emu:
        emu.faults.add("flaky-*", status_code=503, times=2)
        batch, out, err = _run(emu, ["flaky-1", "steady-1"])
        assert batch.request_counts.total == 2
        ids = sorted(r["custom_id"] for r in out + err)
        assert ids == ["flaky-1", "steady-1"]
        if succeeded:
            assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 0)
        else:
            assert [e["response"]["status_code"] for e in err] == [503]


def test_permanent_failures_are_not_retried_into_success() -> None:
    """A fault without `times` fails every attempt; a 400 is never retried."""
    with Emulator(timing=TimingModel(backend_attempts=5)) as emu:
        emu.faults.add("always-*", status_code=500)
        emu.faults.add("bad-*", status_code=400, times=1)
        _batch, out, err = _run(emu, ["always-1", "bad-1", "fine-1"])
        assert [r["custom_id"] for r in out] == ["fine-1"]
        assert sorted((e["custom_id"], e["response"]["status_code"]) for e in err) == [
            ("always-1", 500),
            ("bad-1", 400),
        ]


def test_transient_fault_over_the_admin_route() -> None:
    """`{"custom_id": ..., "status_code": 429, "times": 1}` and `backend_attempts` in the timing route."""
    with Emulator() as emu, emu.http_client() as http:
        assert (
            http.post("/_emulator/faults", json={"custom_id": "x-*", "status_code": 429, "times": 1}).json()["times"]
            == 1
        )
        assert http.put("/_emulator/timing", json={"backend_attempts": 2}).status_code == 200
        _batch, out, err = _run(emu, ["x-1"])
        assert [r["custom_id"] for r in out] == ["x-1"] and err == []
        assert (
            http.post("/_emulator/faults", json={"custom_id": "y", "status_code": 429, "times": 0}).status_code == 400
        )
