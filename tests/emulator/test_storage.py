"""Object storage: large emulator-internal files are stored in parts, read back by range."""

from __future__ import annotations

import gc
import io
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import Emulator, _storage
from emulator._storage import ObjectStore


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    monkeypatch.setattr(_storage, "PART_BYTES", 16)
    s = ObjectStore()
    try:
        yield s
    finally:
        s.close()


def test_split_object_reads_back_whole_and_by_any_range(store: ObjectStore) -> None:
    """Every byte range of a split object equals the same slice of the original."""
    data = bytes(range(256)) * 2 + b"tail"
    parts = store.put_file("files/x", io.BytesIO(data), size=len(data), split=True)
    assert sum(parts) == len(data) and max(parts) == 16 and len(parts) == (len(data) + 15) // 16
    assert not store.exists("files/x")
    assert b"".join(store.iter_chunks("files/x", parts=parts)) == data
    rng = random.Random(0)
    for _ in range(200):
        a = rng.randrange(len(data))
        b = rng.randrange(a, len(data))
        assert b"".join(store.iter_chunks("files/x", a, b, parts)) == data[a : b + 1]
    store.delete("files/x", parts)
    assert store.keys("files/x") == []


def test_split_object_on_an_s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against an S3 endpoint (a moto server on 127.0.0.1, plain HTTP, unsigned payloads) an
    object is split at the remote part size and reads back whole and by range."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setattr(_storage, "REMOTE_PART_BYTES", 64)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    remote = ObjectStore(endpoint_url=f"http://{host}:{port}")
    try:
        data = bytes(range(256)) * 3
        parts = remote.put_file("files/y", io.BytesIO(data), size=len(data), split=True)
        assert parts == (64,) * 12
        assert b"".join(remote.iter_chunks("files/y", parts=parts)) == data
        assert b"".join(remote.iter_chunks("files/y", 60, 200, parts)) == data[60:201]
        remote.delete("files/y", parts)
        assert remote.keys("files/y") == []
    finally:
        remote.close()
        server.stop()


def test_in_process_put_leaves_no_body_copy_behind(store: ObjectStore) -> None:
    """moto's parsed request (which holds a copy of the body in a reference cycle) MUST NOT
    outlive a large in-process put: the store collects it, not the next automatic GC."""
    from werkzeug.wrappers import Request

    was_enabled = gc.isenabled()
    gc.collect()  # earlier requests (the bucket's creation) are not this test's business
    gc.disable()  # only the store's own collection may free it
    try:
        store.put_bytes("big", b"x" * (2 << 20))
        assert [o for o in gc.get_objects() if isinstance(o, Request)] == []
    finally:
        if was_enabled:
            gc.enable()


def test_unsplit_and_small_objects_are_one_object(store: ObjectStore) -> None:
    """Without `split`, or under the part size, an object is stored whole under its key."""
    assert store.put_file("a", io.BytesIO(b"x" * 100), size=100) == ()
    assert store.put_file("b", io.BytesIO(b"y" * 10), size=10, split=True) == ()
    assert store.read("a") == b"x" * 100 and store.read("b") == b"y" * 10


def test_batch_whose_input_and_output_span_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose files are split into many parts is validated, processed and downloaded intact."""
    monkeypatch.setattr(_storage, "PART_BYTES", 397)  # lines straddle part boundaries
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": f"w{i} x y"}]},
        }
        for i in range(40)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with Emulator(progression="manual") as emu:
        client = emu.openai_client()
        f = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
        assert client.files.content(f.id).content == data
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        emu.step(batch.id)
        emu.step(batch.id, lines=13)  # a ranged read that starts and ends inside parts
        emu.step(batch.id)
        emu.step(batch.id)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.output_file_id
        out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
        assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(40))
        by_id = {o["custom_id"]: o["response"]["body"]["choices"][0]["message"]["content"] for o in out}
        assert by_id["r7"] == "y x w7"
        client.files.delete(done.output_file_id)
        assert emu.store.keys(f"files/{done.output_file_id}") == []


def test_abandoned_download_does_not_keep_the_interpreter_alive(tmp_path: Path) -> None:
    """A streamed download nobody reads or closes (and an emulator nobody closes) must not
    stop the interpreter from exiting: the transport's threads are daemons and its producer
    waits on the event loop, not in a worker thread."""
    script = tmp_path / "abandon.py"
    script.write_text(
        "import io\n"
        "from emulator import Emulator\n"
        "emu = Emulator()\n"
        "c = emu.openai_client()\n"
        "f = c.files.create(file=('big.jsonl', io.BytesIO(b'{\"a\":1}\\n' * 1_500_000)), purpose='batch')\n"
        "r = c.files.with_streaming_response.content(f.id).__enter__()\n"
        "print(r.http_response.status_code)\n",
        encoding="utf-8",
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "200", proc.stderr[-2000:]
