"""The answers given on the event loop (no worker thread) are the answers the full path gives,
and they are only taken when they read no storage and never wait for the provider's lock."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from emulator import Emulator
from emulator._recent import RecentObjects
from emulator._storage import AT_ONCE_BYTES
from emulator.model.batches import CreateBatch
from emulator.model.errors import ApiError
from emulator.model.records import InputRef
from tests.emulator._support import CHAT, chat_line, poll, submit, to_jsonl
from tests.emulator.conftest import KEY_A

OWNER = (KEY_A, "")


@contextmanager
def _lock_held_elsewhere(emu: Emulator) -> Iterator[None]:
    """The provider's lock held by another thread (a batch being processed) for the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with emu.provider.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)


def _finished(emu: Emulator) -> str:
    client = emu.openai_client(api_key=KEY_A)
    b = submit(client, [chat_line("a"), chat_line("b")])
    assert poll(client, b.id)[-1].status == "completed"
    return b.id


def test_retrieve_now_answers_a_finished_batch_and_moves_only_a_small_one(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retrieve_now MUST answer a finished batch as retrieve does. It MAY move a batch whose
    next step is small work that waits on nothing (a small input in the in-process store,
    the in-process mock backend), and MUST leave any other to retrieve (None): a large
    input, or a backend across a network."""
    batches = emu.provider.main.batches
    client = emu.openai_client(api_key=KEY_A)
    small = submit(client, [chat_line("x")])
    moved = batches.retrieve_now(small.id, OWNER)
    assert moved is not None and moved.status == "in_progress"
    lines = AT_ONCE_BYTES // len(to_jsonl([chat_line("l-0000")])) + 1
    large = submit(client, [chat_line(f"l-{i:04d}") for i in range(lines)])
    assert batches.retrieve_now(large.id, OWNER) is None
    assert batches.get_any(large.id).status == "validating"  # type: ignore[union-attr]
    monkeypatch.setattr(emu.provider.main.engine.backend, "in_process", False)
    remote = submit(client, [chat_line("y")])
    assert batches.retrieve_now(remote.id, OWNER) is None
    done = _finished(emu)
    now = batches.retrieve_now(done, OWNER)
    assert now is not None and now is batches.retrieve(done, OWNER) and now.status == "completed"


def test_files_create_now_stores_only_a_small_file_at_once(emu: Emulator) -> None:
    """files.create_now MUST store a small file as create does, and MUST leave a file over
    the store's at-once size, or any file while the provider's lock is held, to create (None)."""
    files = emu.provider.main.files
    assert files is not None
    data = to_jsonl([chat_line("s")])
    record = files.create_now(OWNER, filename="s.jsonl", purpose="batch", fileobj=io.BytesIO(data), size=len(data))
    assert record is not None and b"".join(files.content(record.id, OWNER)[1]) == data
    big = data * (AT_ONCE_BYTES // len(data) + 1)
    assert files.create_now(OWNER, filename="b.jsonl", purpose="batch", fileobj=io.BytesIO(big), size=len(big)) is None
    with _lock_held_elsewhere(emu):
        small = io.BytesIO(data)
        assert files.create_now(OWNER, filename="s.jsonl", purpose="batch", fileobj=small, size=len(data)) is None


def test_fast_paths_step_aside_while_the_lock_is_held(emu: Emulator) -> None:
    """While another thread holds the provider's lock (a batch being processed), the event
    loop MUST NOT wait for it: the `*_now` methods answer None, and the request is still
    answered once the lock is free (through a worker thread)."""
    batches = emu.provider.main.batches
    done = _finished(emu)
    cmd = CreateBatch(input=InputRef("file", "file-none"), endpoint="/v1/chat/completions", window="24h")
    with _lock_held_elsewhere(emu):
        assert batches.retrieve_now(done, OWNER) is None
        assert batches.list_now(OWNER, limit=5, after=None) is None
        assert batches.create_now(OWNER, cmd) is None
    page = batches.list_now(OWNER, limit=5, after=None)
    assert page is not None and [b.id for b in page[0]] == [done]


def test_list_now_refuses_a_page_with_an_unfinished_batch(emu: Emulator) -> None:
    """list_now MUST answer None when a batch of the page may still move, and the HTTP list
    MUST then settle it as before (the same page, in the profile's order)."""
    batches = emu.provider.main.batches
    done = _finished(emu)
    client = emu.openai_client(api_key=KEY_A)
    running = submit(client, [chat_line("x")])
    assert batches.list_now(OWNER, limit=1, after=running.id) is not None  # only the finished one
    assert batches.list_now(OWNER, limit=5, after=None) is None
    page = client.batches.list(limit=5)
    assert [b.id for b in page.data] == [running.id, done]


def test_create_now_is_create(emu: Emulator) -> None:
    """create_now MUST make the batch create makes, with the same 400s, and MUST leave inline
    input (bytes to store) to create."""
    batches = emu.provider.main.batches
    client = emu.openai_client(api_key=KEY_A)
    f = client.files.create(file=("in.jsonl", b'{"custom_id":"a"}\n'), purpose="batch")
    made = batches.create_now(OWNER, CreateBatch(input=InputRef("file", f.id), endpoint=CHAT, window="24h"))
    assert made is not None and batches.get_any(made.id) is made and made.status == "validating"
    assert batches.create_now(OWNER, CreateBatch(inline=b"{}\n", endpoint=CHAT, window="24h")) is None
    with emu.http_client(api_key=KEY_A) as http:
        bad = http.post("/v1/batches", json={"input_file_id": f.id, "endpoint": "/v1/nope", "completion_window": "24h"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] is not None


def test_a_kept_finished_body_is_the_full_body_and_follows_its_changes(emu: Emulator) -> None:
    """A finished batch's kept body MUST be byte for byte what serializing it afresh gives,
    and MUST follow what can still change: its result references and its origin."""
    surface = emu.provider.main
    done = _finished(emu)
    b = surface.batches.get_any(done)
    assert b is not None
    first = surface.batch_body(b, "http://a.example")
    assert surface.batch_body(b, "http://a.example") is first
    assert orjson.dumps(first) == orjson.dumps(surface.dialect.batch_json(surface, b, "http://a.example"))
    assert surface.batch_body(b, "http://b.example") is not first
    output = b.results.pop("output")
    try:
        assert orjson.loads(orjson.dumps(surface.batch_body(b, "http://a.example")))["output_file_id"] is None
    finally:
        b.results["output"] = output
    assert orjson.loads(orjson.dumps(surface.batch_body(b, "http://a.example")))["output_file_id"] == output


def test_no_body_is_kept_while_a_mutation_is_active(emu: Emulator) -> None:
    """With a wire mutation active, each answer MUST be built afresh (a mutation may change
    the body on every call): a finished batch then reports its running status on a later poll."""
    client = emu.openai_client(api_key=KEY_A)
    done = _finished(emu)
    assert client.batches.retrieve(done).status == "completed"
    emu.mutations.enable("status_goes_backwards")
    statuses = [client.batches.retrieve(done).status for _ in range(2)]
    assert statuses == ["completed", "in_progress"]


def test_content_now_answers_a_small_file_from_memory_and_steps_aside_otherwise(emu: Emulator) -> None:
    """content_now MUST give the bytes `content` streams for a small file just written, and
    MUST answer None (the worker-thread path) for a file whose bytes are not in memory and
    while another thread holds the provider's lock; a missing file MUST raise the 404."""
    files = emu.provider.main.files
    assert files is not None
    client = emu.openai_client(api_key=KEY_A)
    line = to_jsonl([chat_line("s")])
    small = client.files.create(file=("s.jsonl", line), purpose="batch")
    now = files.content_now(small.id, OWNER)
    assert now is not None and now[1] == b"".join(files.content(small.id, OWNER)[1]) == line
    big_bytes = line * (RecentObjects().object_max // len(line) + 1)
    big = client.files.create(file=("b.jsonl", big_bytes), purpose="batch")
    assert files.content_now(big.id, OWNER) is None
    assert client.files.content(big.id).read() == big_bytes
    with _lock_held_elsewhere(emu):
        assert files.content_now(small.id, OWNER) is None
    with pytest.raises(ApiError):
        files.content_now("file-missing", OWNER)
