"""The in-process API: `Emulator`'s ready clients, progression modes, step, reset, intercept.

These talk to the `Emulator` object directly (no server); each test states the Python
surface it proves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from emulator import Emulator, TimingModel, VirtualClock
from schemas import validate
from tests.emulator._support import CHAT, TLS, ServerTarget, chat_line, poll, results, submit, to_jsonl, upload


@pytest.fixture
def plain() -> Iterator[Emulator]:
    """An Emulator with every default (one generated key)."""
    with Emulator() as e:
        yield e


def test_openai_client_full_flow(plain: Emulator) -> None:
    """emu.openai_client() runs the whole flow with no socket, raw bodies schema-valid."""
    with plain.openai_client() as client:
        assert client.max_retries == 0
        b = submit(client, [chat_line("a"), chat_line("b")])
        raw = client.batches.with_raw_response.retrieve(b.id)
        validate("openai/batch", raw.http_response.json())
        assert raw.headers["x-request-id"]
        done = poll(client, b.id)[-1]
        assert done.status == "completed"
        out, err = results(client, done)
        assert len(out) == 2 and err == []
        validate("openai/batch_list", client.batches.with_raw_response.list().http_response.json())
        validate("openai/file_list", client.files.with_raw_response.list().http_response.json())
        validate("openai/file_deleted", client.files.with_raw_response.delete(b.input_file_id).http_response.json())


def test_async_openai_client_full_flow(plain: Emulator) -> None:
    """emu.async_openai_client() runs the flow (upload, create, poll, list, download, cancel) on asyncio."""

    async def flow() -> None:
        async with plain.async_openai_client() as client:
            f = await client.files.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose="batch")
            b = await client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
            statuses = [(await client.batches.retrieve(b.id)).status for _ in range(3)]
            assert statuses == ["in_progress", "finalizing", "completed"]
            done = await client.batches.retrieve(b.id)
            assert done.output_file_id is not None
            content = await client.files.content(done.output_file_id)
            validate("openai/output_line", json.loads(content.text.splitlines()[0]))
            assert [x.id async for x in client.batches.list(limit=1)] == [b.id]
            other = await client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
            assert (await client.batches.cancel(other.id)).status == "cancelling"
            with pytest.raises(openai.ConflictError):
                await client.batches.cancel(b.id)

    asyncio.run(flow())


def test_http_client_and_keys(plain: Emulator) -> None:
    """emu.http_client() carries the first key; api_key="" sends none; base_url/root_url are in-process."""
    assert plain.api_key.startswith("sk-batchconf-") and plain.api_keys == (plain.api_key,)
    assert plain.base_url == plain.root_url + "/v1"
    with plain.http_client() as http:
        assert http.get("/v1/batches").status_code == 200
    with plain.http_client(api_key="") as http:
        assert http.get("/v1/batches").status_code == 401
    with plain.http_client(api_key="sk-other") as http:
        assert http.get("/v1/batches").status_code == 401


def test_manual_progression_constructor() -> None:
    """Emulator(progression="manual"): polls never move a batch; emu.step does, one status at a time."""
    with Emulator(progression="manual") as emu, emu.openai_client() as client:
        b = submit(client, [chat_line("a"), chat_line("b"), chat_line("c")])
        assert [client.batches.retrieve(b.id).status for _ in range(3)] == ["validating"] * 3
        snap = emu.step(b.id)
        validate("openai/batch", snap)
        assert snap["status"] == "in_progress"
        assert emu.step(b.id, lines=1)["request_counts"]["completed"] == 1
        assert client.batches.retrieve(b.id).request_counts.completed == 1  # type: ignore[union-attr]
        assert emu.step(b.id)["status"] == "finalizing"
        assert emu.step(b.id)["status"] == "completed"
        with pytest.raises(ValueError, match="in_progress"):
            emu.step(b.id, lines=1)


def test_step_lines_outside_in_progress_raises(plain: Emulator) -> None:
    """emu.step(id, lines=n) on a validating batch raises ValueError naming the status."""
    with plain.openai_client() as client:
        b = submit(client, [chat_line("a")])
        with pytest.raises(ValueError, match="validating"):
            plain.step(b.id, lines=1)


def test_timing_setter_and_virtual_clock() -> None:
    """emu.timing can be swapped; a VirtualClock passed in is the one advanced."""
    clock = VirtualClock(start=1_800_000_000)
    with Emulator(clock=clock, timing=TimingModel(progression="timed", validation_seconds=60)) as emu:
        assert emu.clock is clock
        with emu.openai_client() as client:
            b = submit(client, [chat_line("a")])
            assert b.created_at == 1_800_000_000
            assert client.batches.retrieve(b.id).status == "validating"
            emu.clock.advance(60)
            assert client.batches.retrieve(b.id).status == "completed"
            emu.timing = TimingModel(progression="manual")
            b2 = submit(client, [chat_line("a")])
            emu.clock.advance(600)
            assert client.batches.retrieve(b2.id).status == "validating"


def test_reset(plain: Emulator) -> None:
    """emu.reset() forgets files, batches, faults and mutations but keeps the clock."""
    with plain.openai_client() as client:
        submit(client, [chat_line("a")])
        plain.faults.add("*", status_code=500)
        plain.mutations.enable("list_missing_has_more")
        plain.clock.advance(100)
        now = plain.clock.now()
        plain.reset()
        assert client.batches.list().data == [] and client.files.list().data == []
        assert not plain.faults and plain.mutations.enabled == []
        assert plain.clock.now() == now


def test_close_is_idempotent() -> None:
    """Emulator.close() releases the transport (a client made before can no longer reach it)
    and may be called twice; leaving a `with` block closes it too."""
    emu = Emulator()
    client = emu.http_client()
    assert client.get("/v1/batches").status_code == 200
    emu.close()
    with pytest.raises(RuntimeError, match="transport is closed"):
        client.get("/v1/batches")
    emu.close()
    with pytest.raises(RuntimeError, match="transport is closed"):
        client.get("/v1/batches")
    with Emulator() as scoped:
        inner = scoped.http_client()
        assert inner.get("/v1/batches").status_code == 200
    with pytest.raises(RuntimeError, match="transport is closed"):
        inner.get("/v1/batches")


def test_faults_python_api(plain: Emulator) -> None:
    """emu.faults.add/rules/remove/clear manage fault rules; first match wins."""
    f1 = plain.faults.add("a*", status_code=429)
    f2 = plain.faults.add("*", error_code="request_timeout", error_message="slow")
    assert [r.id for r in plain.faults.rules()] == [f1.id, f2.id]
    with plain.openai_client() as client:
        done = poll(client, submit(client, [chat_line("ab"), chat_line("zz")]).id)[-1]
        _, err = results(client, done)
        by_id = {line["custom_id"]: line for line in err}
        assert by_id["ab"]["response"]["status_code"] == 429
        assert by_id["zz"]["error"] == {"code": "request_timeout", "message": "slow"}
    assert plain.faults.remove(f1.id) and not plain.faults.remove(f1.id)
    plain.faults.clear()
    assert plain.faults.rules() == []
    with pytest.raises(ValueError):
        plain.faults.add("*")
    with pytest.raises(ValueError):
        plain.faults.add("*", status_code=200)


def test_seeded_ids_are_repeatable() -> None:
    """Two emulators with the same seed hand out the same ids and output order."""

    def run() -> tuple[str, str, list[str]]:
        with Emulator(seed=7, clock=VirtualClock(start=1_800_000_000)) as emu, emu.openai_client() as client:
            b = submit(client, [chat_line(f"r{i}") for i in range(20)])
            done = poll(client, b.id)[-1]
            out, _ = results(client, done)
            return b.id, b.input_file_id, [line["custom_id"] for line in out]

    assert run() == run()


def test_intercept_plain_httpx(plain: Emulator) -> None:
    """Inside emu.intercept(), httpx calls to https://api.openai.com/v1 reach the emulator."""
    headers = {"Authorization": f"Bearer {plain.api_key}"}
    with plain.intercept():
        resp = httpx.get("https://api.openai.com/v1/batches", headers=headers)
        assert resp.status_code == 200
        validate("openai/batch_list", resp.json())
        assert resp.headers["x-request-id"]
        assert httpx.get("https://api.openai.com/v1/batches/batch_x", headers=headers).status_code == 404
        assert httpx.get("https://api.openai.com/v1/files", params={"limit": 1}, headers=headers).status_code == 200


def test_intercept_sdk_with_legacy_httpx_client(plain: Emulator) -> None:
    """openai.OpenAI(http_client=httpx.Client()) on the default base URL works inside emu.intercept()."""
    with plain.intercept(), httpx.Client(verify=TLS) as http:
        # The SDK's hints name httpx2.Client; an httpx.Client works at runtime (see the README).
        client = openai.OpenAI(api_key=plain.api_key, http_client=http, max_retries=0)  # type: ignore[arg-type]
        assert str(client.base_url).startswith("https://api.openai.com/v1")
        b = submit(client, [chat_line("a"), chat_line("b")])
        done = poll(client, b.id)[-1]
        assert done.status == "completed"
        out, _ = results(client, done)
        assert len(out) == 2
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
        with pytest.raises(openai.AuthenticationError):
            client.with_options(api_key="sk-wrong").batches.list()


def test_intercept_async_sdk(plain: Emulator) -> None:
    """openai.AsyncOpenAI(http_client=httpx.AsyncClient()) works inside emu.intercept() too."""

    async def flow() -> None:
        async with httpx.AsyncClient(verify=TLS) as http:
            client = openai.AsyncOpenAI(api_key=plain.api_key, http_client=http, max_retries=0)  # type: ignore[arg-type]
            f = await client.files.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose="batch")
            b = await client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
            for _ in range(3):
                b = await client.batches.retrieve(b.id)
            assert b.status == "completed"

    with plain.intercept():
        asyncio.run(flow())


def test_intercept_custom_base_url(plain: Emulator) -> None:
    """emu.intercept(base_url) maps another public base URL (and path prefix) onto the emulator."""
    headers = {"Authorization": f"Bearer {plain.api_key}"}
    with plain.intercept("https://gateway.example.test/openai/v1"):
        resp = httpx.get("https://gateway.example.test/openai/v1/batches", headers=headers)
        assert resp.status_code == 200 and resp.json()["object"] == "list"


def test_intercept_passes_other_hosts_through(plain: Emulator, server: ServerTarget) -> None:
    """Requests to other hosts inside emu.intercept() reach the real network (here a local server)."""
    with plain.intercept():
        resp = httpx.get(server.root_url + "/_emulator/info")
    assert resp.status_code == 200 and resp.json()["emulator"] == "batchconf"


def test_embeddings_input_limit(plain: Emulator) -> None:
    """An /v1/embeddings batch with more than 50,000 inputs in total fails validation."""
    with plain.openai_client() as client:
        line = {
            "custom_id": "e",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": ["x"] * 50_001},
        }
        done = poll(client, submit(client, [line], endpoint="/v1/embeddings").id)[-1]
        assert done.status == "failed"
        assert done.errors is not None and done.errors.data is not None
        assert [(e.code, e.line) for e in done.errors.data] == [("too_many_tasks", None)]


def test_crlf_blank_lines_and_no_final_newline(plain: Emulator) -> None:
    """CRLF line ends, blank lines and a last line without newline all parse; line numbers stay physical."""
    with plain.openai_client() as client:
        good = (
            json.dumps(chat_line("a")) + "\r\n\r\n" + json.dumps(chat_line("b")) + "\r\n" + json.dumps(chat_line("c"))
        ).encode()
        done = poll(client, submit(client, good).id)[-1]
        assert done.status == "completed"
        assert done.request_counts is not None and done.request_counts.completed == 3
        bad = (json.dumps(chat_line("a")) + "\n\n" + json.dumps(chat_line("a"))).encode()
        failed = poll(client, submit(client, bad).id)[-1]
        assert failed.errors is not None and failed.errors.data is not None
        assert [(e.code, e.line) for e in failed.errors.data] == [("duplicate_custom_id", 3)]


def test_unimplemented_mock_endpoint_fails_lines_not_batch(plain: Emulator) -> None:
    """An allowed endpoint the mock cannot serve (images) completes with every line a 400 in the error file."""
    with plain.openai_client() as client:
        url = "/v1/images/generations"
        lines = [{"custom_id": "i", "method": "POST", "url": url, "body": {"model": "gpt-image-1", "prompt": "cat"}}]
        f = upload(client, lines)
        b = client.batches.create(input_file_id=f.id, endpoint="/v1/images/generations", completion_window="24h")
        done = poll(client, b.id)[-1]
        assert done.status == "completed" and done.output_file_id is None
        _, err = results(client, done)
        assert err[0]["response"]["status_code"] == 400
