"""The in-process transports stream both ways and keep the app at most a few chunks ahead.

Checked on small Starlette apps through both `SyncASGITransport` and `AsyncASGITransport`,
then end to end through the emulator with the async SDK.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulator import AsyncASGITransport, Emulator, SyncASGITransport
from emulator._transport import _QUEUE_CHUNKS

CHUNKS = 40
CHUNK = b"x" * 1000


class Producer:
    """A streaming endpoint that counts what it has produced and whether it was stopped."""

    def __init__(self) -> None:
        self.produced = 0
        self.finished = threading.Event()
        self.stopped_early = False

    async def body(self) -> AsyncIterator[bytes]:
        try:
            for _ in range(CHUNKS):
                self.produced += 1
                yield CHUNK
        except BaseException:
            self.stopped_early = True
            raise
        finally:
            self.finished.set()


def make_app(producer: Producer) -> Starlette:
    async def stream(request: Request) -> Response:
        return StreamingResponse(producer.body(), media_type="application/octet-stream")

    async def upload(request: Request) -> Response:
        chunks = 0
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            if chunk:
                chunks += 1
                size += len(chunk)
                digest.update(chunk)
        return JSONResponse({"chunks": chunks, "bytes": size, "sha256": digest.hexdigest()})

    async def boom(request: Request) -> Response:
        raise ValueError("the app failed before answering")

    app = Starlette(
        routes=[
            Route("/stream", stream),
            Route("/upload", upload, methods=["POST"]),
            Route("/boom", boom),
        ]
    )

    async def with_silent_path(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/silent":
            return  # an app that returns without answering
        await app(scope, receive, send)

    return with_silent_path  # type: ignore[return-value]


def request_body() -> Iterator[bytes]:
    for i in range(25):
        yield bytes([i]) * 4096


async def async_request_body() -> AsyncIterator[bytes]:
    for chunk in request_body():
        yield chunk


EXPECTED_UPLOAD = hashlib.sha256(b"".join(request_body())).hexdigest()


# -- sync -----------------------------------------------------------------------------


@pytest.fixture
def sync_client() -> Iterator[tuple[httpx.Client, Producer]]:
    producer = Producer()
    transport = SyncASGITransport(make_app(producer))
    with httpx.Client(transport=transport, base_url="http://app") as client:
        yield client, producer
    transport.close()


def test_sync_response_body_is_streamed_with_backpressure(sync_client: tuple[httpx.Client, Producer]) -> None:
    """The app MUST NOT run more than the queue's few chunks ahead of a slow reader."""
    client, producer = sync_client
    with client.stream("GET", "/stream") as resp:
        chunks = resp.iter_raw()
        assert next(chunks) == CHUNK
        assert producer.produced <= 1 + _QUEUE_CHUNKS + 1
        assert not producer.finished.is_set()
        rest = list(chunks)
    assert len(rest) == CHUNKS - 1 and producer.finished.wait(5)


def test_sync_request_body_reaches_the_app_in_chunks(sync_client: tuple[httpx.Client, Producer]) -> None:
    """A streamed request body MUST arrive in pieces, intact, not joined first."""
    client, _ = sync_client
    got = client.post("/upload", content=request_body()).json()
    assert got == {"chunks": 25, "bytes": 25 * 4096, "sha256": EXPECTED_UPLOAD}


def test_sync_closing_early_lets_the_app_finish(sync_client: tuple[httpx.Client, Producer]) -> None:
    """Closing a half-read response MUST NOT leave the app blocked on a full queue."""
    client, producer = sync_client
    with client.stream("GET", "/stream") as resp:
        next(resp.iter_raw())
    assert producer.finished.wait(5)
    assert client.get("/upload").status_code == 405  # the transport still serves


def test_sync_app_errors_reach_the_caller(sync_client: tuple[httpx.Client, Producer]) -> None:
    """An exception before the response starts, or no response at all, MUST raise in the caller."""
    client, _ = sync_client
    with pytest.raises(ValueError, match="failed before answering"):
        client.get("/boom")
    with pytest.raises(RuntimeError, match="without sending a response"):
        client.get("/silent")


# -- async ----------------------------------------------------------------------------


def run(coro_fn: object) -> None:
    asyncio.run(coro_fn())  # type: ignore[operator]


def test_async_response_body_is_streamed_with_backpressure() -> None:
    """The app task MUST NOT run more than the queue's few chunks ahead of a slow reader."""
    producer = Producer()

    async def main() -> None:
        transport = AsyncASGITransport(make_app(producer))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            async with client.stream("GET", "/stream") as resp:
                chunks = resp.aiter_raw()
                assert await chunks.__anext__() == CHUNK
                for _ in range(20):  # give the app task every chance to run ahead
                    await asyncio.sleep(0)
                assert producer.produced <= 1 + _QUEUE_CHUNKS + 1
                rest = [c async for c in chunks]
            assert len(rest) == CHUNKS - 1
        assert producer.finished.is_set() and not producer.stopped_early

    run(main)


def test_async_request_body_reaches_the_app_in_chunks() -> None:
    """A streamed request body MUST arrive in pieces, intact, not joined first."""

    async def main() -> None:
        transport = AsyncASGITransport(make_app(Producer()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            got = (await client.post("/upload", content=async_request_body())).json()
        assert got == {"chunks": 25, "bytes": 25 * 4096, "sha256": EXPECTED_UPLOAD}

    run(main)


def test_async_closing_early_stops_the_app_task() -> None:
    """Closing a half-read response MUST stop the app task, not leave it parked on the queue."""
    producer = Producer()

    async def main() -> None:
        transport = AsyncASGITransport(make_app(producer))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            async with client.stream("GET", "/stream") as resp:
                await resp.aiter_raw().__anext__()
            produced = producer.produced
            for _ in range(20):
                await asyncio.sleep(0)
            assert asyncio.all_tasks() == {asyncio.current_task()}  # no app task left parked
            assert producer.produced == produced < CHUNKS
            assert (await client.get("/upload")).status_code == 405

    run(main)
    assert producer.finished.is_set() and producer.stopped_early  # its generator was closed


def test_async_app_errors_reach_the_caller() -> None:
    """An exception before the response starts, or no response at all, MUST raise in the caller."""

    async def main() -> None:
        transport = AsyncASGITransport(make_app(Producer()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            with pytest.raises(ValueError, match="failed before answering"):
                await client.get("/boom")
            with pytest.raises(RuntimeError, match="without sending a response"):
                await client.get("/silent")

    run(main)


# -- through the emulator ---------------------------------------------------------------


def test_async_sdk_round_trips_a_multi_part_file_byte_for_byte() -> None:
    """A file larger than the stored part size MUST come back identical through the async SDK,
    streamed."""
    lines = b"".join(
        b'{"custom_id": "r%06d", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "%s"}]}}\n' % (i, b"w " * 60)
        for i in range(12_000)
    )
    assert len(lines) > 2 << 20

    async def main() -> None:
        with Emulator() as emu:
            client = emu.async_openai_client()
            f = await client.files.create(file=("big.jsonl", io.BytesIO(lines)), purpose="batch")
            assert f.bytes == len(lines)
            digest = hashlib.sha256()
            pieces = 0
            async with client.files.with_streaming_response.content(f.id) as resp:
                async for chunk in resp.iter_bytes():
                    digest.update(chunk)
                    pieces += 1
            assert digest.hexdigest() == hashlib.sha256(lines).hexdigest()
            assert pieces > 1
            await client.close()

    run(main)
