"""In-process stores share one boto3 client and keep small objects they wrote for their own
reads; every byte is still in S3, and each emulator's state stays its own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import Emulator
from emulator._recent import RecentObjects
from emulator._storage import ObjectStore


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    s = ObjectStore()
    try:
        yield s
    finally:
        s.close()


def _s3_body(store: ObjectStore, key: str) -> bytes:
    body: Any = store.client.get_object(Bucket=store.bucket, Key=key)["Body"]
    return bytes(body.read())


def _count_gets(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = store.client._make_api_call

    def spy(operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return real(operation, params)

    monkeypatch.setattr(store.client, "_make_api_call", spy)
    return calls


def test_emulators_in_one_process_share_a_client_but_not_their_state() -> None:
    """A second Emulator reuses the first one's boto3 client (no second start-up) and gets a
    bucket, files and batches of its own."""
    with Emulator() as first, Emulator() as second:
        assert first.s3_client() is second.s3_client()
        assert first.store.bucket != second.store.bucket
        uploaded = first.openai_client().files.create(file=("a.jsonl", b'{"a": 1}\n'), purpose="batch")
        assert [f.id for f in first.openai_client().files.list()] == [uploaded.id]
        assert list(second.openai_client().files.list()) == []


def test_the_shared_client_still_answers_after_an_emulator_closes() -> None:
    """Closing one emulator leaves the client working for the others."""
    with Emulator() as kept:
        Emulator().close()
        client = kept.openai_client()
        uploaded = client.files.create(file=("a.jsonl", b'{"a": 1}\n'), purpose="batch")
        assert client.files.content(uploaded.id).read() == b'{"a": 1}\n'


def test_a_small_object_read_back_comes_from_memory_and_is_in_s3(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading back a small object this store wrote makes no S3 request; S3 holds the same bytes."""
    store.put_file("small", io.BytesIO(b"0123456789"), size=10)
    calls = _count_gets(store, monkeypatch)
    assert store.read("small") == b"0123456789"
    assert b"".join(store.iter_chunks("small", 2, 4)) == b"234"
    assert store.size("small") == 10 and store.exists("small")
    assert calls == []
    assert _s3_body(store, "small") == b"0123456789"


def test_a_deleted_or_conditionally_rewritten_object_is_read_from_s3(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete or a conditional write forgets the kept bytes: the next read asks S3."""
    store.put_bytes("gone", b"old")
    store.delete("gone")
    assert not store.exists("gone")
    store.put_bytes("record", b"v1")
    store.put_if("record", b"v2")
    calls = _count_gets(store, monkeypatch)
    assert store.read("record") == b"v2"
    assert calls == ["GetObject"]


def test_a_large_object_is_always_read_from_s3(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An object over the kept size is streamed from S3 as before."""
    data = b"z" * (RecentObjects().object_max + 1)
    store.put_file("large", io.BytesIO(data), size=len(data))
    calls = _count_gets(store, monkeypatch)
    assert store.read("large") == data
    assert calls == ["GetObject"]


def test_an_object_in_another_bucket_is_never_answered_from_memory(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's bucket is theirs to change: reads of it always go to S3."""
    store.client.create_bucket(Bucket="users-own-bucket")
    store.client.put_object(Bucket="users-own-bucket", Key="small", Body=b"theirs")
    store.put_bytes("small", b"ours")
    assert b"".join(store.iter_chunks("small", bucket="users-own-bucket")) == b"theirs"


def test_recent_objects_keep_a_bounded_number_of_bytes() -> None:
    """The least recently used objects go first once the total passes its bound; an object
    over the per-object bound is not kept and replaces nothing."""
    recent = RecentObjects(object_max=4, total_max=8)
    recent.keep("a", b"1111")
    recent.keep("b", b"2222")
    assert recent.get("a") == b"1111"  # now the most recent
    recent.keep("c", b"3333")
    assert recent.get("b") is None and recent.get("a") == b"1111" and recent.get("c") == b"3333"
    recent.keep("a", b"too large")
    assert recent.get("a") is None
    recent.forget("c")
    assert recent.get("c") is None


def test_the_parts_of_a_large_file_are_never_kept() -> None:
    """A large file's parts MUST be over the kept size: keeping them would only add to a
    200 MB batch's memory."""
    from emulator import _storage

    assert RecentObjects().object_max < _storage.PART_BYTES
