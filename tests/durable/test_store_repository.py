"""The store repository, its leases and its commits, in-process against a moto server."""

from __future__ import annotations

import io
from array import array

import pytest

from emulator import Emulator
from emulator._storage import ObjectStore, PreconditionFailed
from emulator.model.codec import OwnerCodec, decode_batch, decode_plan, encode_batch, encode_plan
from emulator.model.lease import Leases
from emulator.model.records import BatchRecord, InputObject, InputRef, LinePlan
from emulator.model.repository import StaleRecord
from emulator.model.store_repository import StoreRepository
from tests.durable._support import KEY, jsonl, s3

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def _finish(emu: Emulator, n: int) -> tuple[str, str]:
    sdk = emu.openai_client()
    f = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(n))), purpose="batch")
    b = sdk.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(10):
        b = sdk.batches.retrieve(b.id)
        if b.status in TERMINAL:
            break
    assert b.status == "completed"
    return f.id, b.id


def test_records_outlive_the_emulator_and_are_shared(endpoint: str, bucket: str) -> None:
    """With `state="store"`, files, batches and result files MUST be served by a second
    emulator on the same store after the first one closed, in creation order."""
    with Emulator(state="store", s3_endpoint_url=endpoint, s3_bucket=bucket, api_keys=[KEY]) as first:
        file_id, batch_id = _finish(first, 30)
        _, second_batch = _finish(first, 5)
    with Emulator(state="store", s3_endpoint_url=endpoint, s3_bucket=bucket, api_keys=[KEY]) as again:
        sdk = again.openai_client()
        batch = sdk.batches.retrieve(batch_id)
        assert batch.status == "completed" and batch.request_counts is not None
        assert batch.request_counts.completed == 30
        assert batch.output_file_id is not None
        assert len(sdk.files.content(batch.output_file_id).text.splitlines()) == 30
        assert sdk.files.retrieve(file_id).purpose == "batch"
        assert [b.id for b in sdk.batches.list()] == [second_batch, batch_id]
        assert [b.id for b in sdk.batches.list(after=second_batch)] == [batch_id]


def test_api_keys_never_reach_the_bucket(endpoint: str, bucket: str) -> None:
    """The state MUST NOT hold an API key in clear: owners are stored as a digest, and a
    key's own records are still its own after a restart (another key sees none of them)."""
    other = "sk-durable-other-0002"
    with Emulator(state="store", s3_endpoint_url=endpoint, s3_bucket=bucket, api_keys=[KEY, other]) as emu:
        _, batch_id = _finish(emu, 3)
        client = s3(endpoint)
        for key in emu.store.keys("state/"):
            assert KEY.encode() not in client.get_object(Bucket=bucket, Key=key)["Body"].read(), key
    with Emulator(state="store", s3_endpoint_url=endpoint, s3_bucket=bucket, api_keys=[KEY, other]) as emu:
        assert emu.openai_client().batches.retrieve(batch_id).id == batch_id
        assert [b.id for b in emu.openai_client(api_key=other).batches.list()] == []


def test_a_stale_writer_cannot_commit(endpoint: str, bucket: str) -> None:
    """A commit MUST be refused when another writer committed the record since this one read
    it (If-Match on the ETag): the store keeps the other writer's record, the refused chunk is
    deleted and never referenced, and the stale copy is reloaded in place."""
    store = ObjectStore(endpoint_url=endpoint, bucket=bucket)
    owners = OwnerCodec((KEY,))

    def repo(holder: str) -> StoreRepository:
        return StoreRepository(store, prefix="state/t/", owners=owners, leases=Leases(store, "state/t/", holder=holder))

    first, second = repo("one"), repo("two")
    record = BatchRecord(
        id="batch_x", owner=(KEY, ""), endpoint="/v1/chat/completions", input=InputRef("file", "file-1"),
        window="24h", metadata=None, created_at=1, expires_at=2, status="validating", role="validating",
    )  # fmt: skip
    first.add_batch(record)
    mine = first.batch("batch_x")
    theirs = second.batch("batch_x")
    assert mine is not None and theirs is not None and mine is not theirs
    mine.completed = 1
    mine.out_spool.write(b'{"custom_id": "a"}\n')
    mine.done = 1
    first.save(mine)
    theirs.completed = 5
    theirs.out_spool.write(b'{"custom_id": "b"}\n')
    theirs.done = 1
    with pytest.raises(StaleRecord):
        second.save(theirs)
    assert theirs.completed == 1, "the stale copy is reloaded in place"
    stored, _, state = decode_batch(store.read("state/t/batches/batch_x.json"), owners)
    assert stored.completed == 1
    assert [c[1] for c in state["journal"]] == [1]
    chunks = store.keys("state/t/chunks/batch_x/")
    assert chunks == [state["journal"][0][2]], chunks
    stored.close_spools()
    first.forget_cache()
    second.forget_cache()
    store.close()


def test_leases_exclude_then_expire_and_fence(endpoint: str, bucket: str) -> None:
    """A lease MUST be held by one server at a time (If-None-Match: * to take a new one); an
    expired lease MUST be taken over with a higher generation (If-Match on its ETag), after
    which the previous holder's renewal is refused."""
    store = ObjectStore(endpoint_url=endpoint, bucket=bucket)
    now = [1000.0]
    a = Leases(store, "state/l/", holder="a", ttl=4, now=lambda: now[0])
    b = Leases(store, "state/l/", holder="b", ttl=4, now=lambda: now[0])
    first = a.acquire("batch_1")
    assert first is not None and first.generation == 1 and a.holds("batch_1")
    assert b.acquire("batch_1") is None
    now[0] += 3.5  # past a quarter before expiry: A stops working under it, B may not take it yet
    assert not a.holds("batch_1")
    assert b.acquire("batch_1") is None
    now[0] += 1.0  # expired
    taken = b.acquire("batch_1")
    assert taken is not None and taken.generation == 2
    assert a.renew_due() == ["batch_1"], "A's renewal must be refused once B took the lease"
    b.release("batch_1")
    again = a.acquire("batch_1")
    assert again is not None and again.generation == 3, "a released lease is taken at once"
    store.close()


def test_moto_enforces_conditional_puts(endpoint: str, bucket: str) -> None:
    """The store the tests run on (moto) MUST refuse If-None-Match: * on an existing key and
    If-Match with another ETag: the leases and commits rest on both."""
    store = ObjectStore(endpoint_url=endpoint, bucket=bucket)
    etag = store.put_if("k", b"1", if_absent=True)
    with pytest.raises(PreconditionFailed):
        store.put_if("k", b"2", if_absent=True)
    with pytest.raises(PreconditionFailed):
        store.put_if("k", b"3", if_match='"0000"')
    newer = store.put_if("k", b"4", if_match=etag)
    assert store.get_if("k", newer) is None, "an unchanged object answers 304"
    assert store.get_if("k", etag) == (b"4", newer)
    store.close()


def test_state_store_needs_an_endpoint() -> None:
    """`Emulator(state="store")` MUST refuse an in-process store, which a restart loses."""
    with pytest.raises(ValueError, match="s3_endpoint_url"):
        Emulator(state="store")


def test_codec_round_trips_a_plan() -> None:
    """A line plan MUST read back as written (offsets, lengths, source, model)."""
    plan = LinePlan(
        InputObject("files/f", (10, 5), "bkt", 15, "s3://{bucket}/{key}"), array("q", [0, 7]), array("q", [7, 8]), "m"
    )
    back = decode_plan(encode_plan(plan))
    assert (list(back.offsets), list(back.lengths), back.source, back.model) == ([0, 7], [7, 8], plan.source, "m")
    owners = OwnerCodec((KEY,))
    record = BatchRecord(
        id="b", owner=(KEY, "p"), endpoint="/e", input=InputRef("inline", "inputs/b.jsonl"), window="24h",
        metadata={"k": "v"}, created_at=1, expires_at=None, status="completed", role="completed",
    )  # fmt: skip
    record.extra = {"hex": "ab", "not_json": object()}
    decoded, has_plan, state = decode_batch(encode_batch(record, owners, {"journal": []}), owners)
    assert decoded.owner == (KEY, "p") and decoded.metadata == {"k": "v"} and decoded.extra == {"hex": "ab"}
    assert not has_plan and state == {"journal": []}
    decoded.close_spools()
    record.close_spools()
