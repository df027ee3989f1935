"""Storage faults during a batch: S3 errors and slowness on reading the input and writing the
results, through the official SDK. A transient error is retried and the batch ends with the
right records, each written once; a store that keeps failing fails the batch with a
batch-level error naming the failure; slowness holds the phase in clock seconds."""

from __future__ import annotations

import inspect
import io
import json
from typing import Any

import openai
import pytest

from emulator import Emulator, TimingModel
from emulator._storage import ObjectStore
from emulator.model.storage_faults import BatchStore, StorageFault

IDS = [f"req-{i}" for i in range(6)]


def _lines(ids: list[str]) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": cid,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"say {cid}"}]},
            }
        ).encode()
        + b"\n"
        for cid in ids
    )


def _create(client: openai.OpenAI, ids: list[str] = IDS) -> Any:
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_lines(ids))), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")


def _poll(client: openai.OpenAI, batch: Any, polls: int = 8) -> tuple[Any, list[str]]:
    seen = []
    for _ in range(polls):
        batch = client.batches.retrieve(batch.id)
        seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            break
    return batch, seen


def _records(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()] if file_id else []


def _output_files(client: openai.OpenAI) -> list[Any]:
    return [f for f in client.files.list() if f.purpose == "batch_output"]


@pytest.mark.parametrize(("operation", "status", "code"), [("put", 503, "SlowDown"), ("get", 500, "InternalError")])
def test_transient_store_errors_are_retried_and_nothing_is_written_twice(
    operation: str, status: int, code: str
) -> None:
    """Two failures of a store operation in a row (one fewer than the attempts) are retried:
    the batch completes with every custom_id once and one output file."""
    with Emulator() as emu:
        client = emu.openai_client()
        rule = emu.storage_faults.add(operation=operation, status=status, count=2)
        batch, seen = _poll(client, _create(client))
        assert batch.status == "completed", (seen, batch.errors)
        assert rule.to_json()["hits"] == 2 and rule.to_json()["code"] == code
        assert (batch.request_counts.total, batch.request_counts.completed) == (len(IDS), len(IDS))
        records = _records(client, batch.output_file_id)
        assert sorted(r["custom_id"] for r in records) == IDS
        assert len(_output_files(client)) == 1


def test_a_store_that_keeps_failing_on_write_fails_the_batch_with_a_storage_error() -> None:
    """Every attempt at writing results fails: the batch fails with one `errors.data` entry
    naming the store failure, names no result file, and no result file was written."""
    with Emulator() as emu:
        client = emu.openai_client()
        emu.storage_faults.add(operation="put", status=503)
        batch, seen = _poll(client, _create(client))
        assert batch.status == "failed", seen
        assert batch.errors is not None and batch.errors.data is not None
        [entry] = batch.errors.data
        assert entry.code == "storage_error" and entry.line is None
        assert entry.message == (
            "The batch could not write its results: the object store answered HTTP 503 SlowDown to PutObject "
            "on 3 attempts."
        )
        assert batch.output_file_id is None and batch.error_file_id is None and batch.failed_at is not None
        assert _output_files(client) == []
        assert emu.storage_faults.rules()[0].hits == 3


def test_an_input_the_store_will_not_read_fails_validation_at_once_for_a_non_transient_error() -> None:
    """403 AccessDenied on reading the input is not retried: the batch fails from validating
    (an edge of the OpenAI graph) with the error, on the first attempt."""
    with Emulator() as emu:
        client = emu.openai_client()
        emu.storage_faults.add(operation="get", status=403)
        batch, seen = _poll(client, _create(client))
        assert seen == ["failed"]
        assert batch.in_progress_at is None
        assert batch.errors is not None and batch.errors.data is not None
        assert "HTTP 403 AccessDenied to GetObject on the first attempt (not retried)" in str(
            batch.errors.data[0].message
        )
        assert emu.storage_faults.rules()[0].hits == 1


def test_a_fraction_of_failing_operations_is_seeded_and_retried() -> None:
    """A 30 % share of store operations failing: with 3 attempts every batch of a seeded run
    completes with its records once (the same rules and seed give the same hits)."""
    hits = []
    for _ in range(2):
        with Emulator(seed=11) as emu:
            client = emu.openai_client()
            emu.storage_faults.add(operation="get", status=503, fraction=0.3)
            emu.storage_faults.add(operation="put", status=500, fraction=0.3)
            for n in range(4):
                ids = [f"b{n}-{i}" for i in range(3)]
                batch, _ = _poll(client, _create(client, ids))
                assert batch.status == "completed"
                assert sorted(r["custom_id"] for r in _records(client, batch.output_file_id)) == ids
            hits.append([r.hits for r in emu.storage_faults.rules()])
    assert hits[0] == hits[1] and sum(hits[0]) > 0


def test_slow_writes_hold_finalizing_for_the_delay_in_clock_seconds() -> None:
    """A 60 s write delay on the virtual clock: the batch stays finalizing, however often it
    is polled, until the clock has moved 60 s; nothing sleeps."""
    with Emulator() as emu:
        client = emu.openai_client()
        emu.storage_faults.add(operation="put", delay=60, count=1)
        batch, seen = _poll(client, _create(client), polls=6)
        assert seen[-1] == "finalizing" and seen.count("finalizing") == 5
        emu.clock.advance(59)
        assert client.batches.retrieve(batch.id).status == "finalizing"
        emu.clock.advance(1)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.output_file_id is not None
        assert emu.storage_faults.rules()[0].to_json()["slowed"] == 1


def test_slow_reads_lengthen_validation_under_timed_progression() -> None:
    """Under timed progression a 30 s read delay adds 30 s to validation: in_progress_at is
    validation_seconds + 30 after created_at."""
    with Emulator(timing=TimingModel(progression="timed", validation_seconds=10)) as emu:
        client = emu.openai_client()
        emu.storage_faults.add(operation="get", delay=30, count=1)
        batch = _create(client)
        emu.clock.advance(39)
        assert client.batches.retrieve(batch.id).status == "validating"
        emu.clock.advance(1)
        running = client.batches.retrieve(batch.id)
        assert running.status != "validating"
        assert running.in_progress_at == batch.created_at + 40


def test_admin_routes_add_list_and_clear_storage_faults() -> None:
    """POST, GET and DELETE /_emulator/storage-faults; a bad rule is a 400 naming the problem."""
    with Emulator() as emu, emu.http_client() as http:
        made = http.post("/_emulator/storage-faults", json={"operation": "put", "status": 503, "count": 2})
        assert made.status_code == 200 and made.json()["code"] == "SlowDown"
        listed = http.get("/_emulator/storage-faults").json()
        assert listed["attempts"] == 3 and [r["id"] for r in listed["data"]] == [made.json()["id"]]
        bad = http.post("/_emulator/storage-faults", json={"operation": "list", "status": 503})
        assert bad.status_code == 400 and "operation must be one of" in bad.text
        assert http.post("/_emulator/storage-faults", json={"operation": "get"}).status_code == 400
        assert http.delete("/_emulator/storage-faults").json()["data"] == []
        assert emu.storage_faults.rules() == []


def test_reset_forgets_storage_faults() -> None:
    """`reset` clears the storage faults with everything else."""
    with Emulator() as emu:
        emu.storage_faults.add(operation="put", status=503)
        emu.reset()
        assert not emu.storage_faults


@pytest.mark.parametrize(
    "fields",
    [
        {"status": 418},
        {"status": 503, "count": 0},
        {"status": 503, "fraction": 1.5},
        {"delay": -1},
        {"status": 503, "code": ""},
    ],
)
def test_bad_rules_are_refused(fields: dict[str, Any]) -> None:
    """Each field is checked when the rule is made."""
    with pytest.raises(ValueError):
        StorageFault("put", **fields)


def test_the_batch_store_overrides_every_public_store_operation_or_shares_its_client() -> None:
    """The store a batch sees is the emulator's store: every public method either applies the
    faults or works on the same client and bucket (no method left pointing nowhere)."""
    with Emulator() as emu:
        batch_store = emu.provider.batch_store
        assert isinstance(batch_store, BatchStore) and batch_store.bucket == emu.store.bucket
        assert batch_store.client is emu.store.client
        public = {n for n, _ in inspect.getmembers(ObjectStore, inspect.isfunction) if not n.startswith("_")}
        assert {"iter_chunks", "put_file", "put_bytes"} <= {n for n in public if n in vars(BatchStore)}
        batch_store.put_bytes("probe", b"x")
        assert emu.store.read("probe") == b"x" and batch_store.exists("probe") and batch_store.size("probe") == 1
