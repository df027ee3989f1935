"""httpx transports into an ASGI app, sync and async, with no socket.

httpx's own `ASGITransport` is async-only and buffers whole request and response bodies: a
200 MB upload or result file would sit in memory whole, more than once. Both transports
here stream both ways: the request body is fed to the app chunk by chunk, and the response
body reaches the caller through a small bounded queue, so the app never runs more than a
few chunks ahead of the reader.

`SyncASGITransport` (for `openai.OpenAI`) runs the app on an event loop in a daemon helper
thread, about a millisecond a call; the thread is a daemon so that an emulator nobody
closed never keeps the interpreter alive. `AsyncASGITransport` (for `openai.AsyncOpenAI`)
runs the app as a task on the caller's own loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

__all__ = ["AsyncASGITransport", "SyncASGITransport"]

_QUEUE_CHUNKS = 4
_END = ("end",)


def _scope(request: httpx.Request) -> dict[str, Any]:
    """The ASGI HTTP scope of an httpx request."""
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "scheme": url.scheme,
        "path": unquote(url.path),
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, url.port),
        "client": ("127.0.0.1", 0),
        "root_path": "",
    }


def _start_headers(message: Message) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]


async def _call_app(
    app: ASGIApp,
    request: httpx.Request,
    next_chunk: Callable[[], Awaitable[bytes | None]],
    put: Callable[[tuple[Any, ...]], Awaitable[None]],
) -> None:
    """Run `app` on one request: the body comes from `next_chunk` (None at its end), and the
    response goes to `put` as ("start", status, headers), ("body", bytes) and ("error", exc)
    items. The caller puts the final `_END`."""
    request_done = False
    response_done = asyncio.Event()

    async def receive() -> Message:
        nonlocal request_done
        if request_done:
            await response_done.wait()
            return {"type": "http.disconnect"}
        while (chunk := await next_chunk()) is not None:
            if chunk:
                return {"type": "http.request", "body": chunk, "more_body": True}
        request_done = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await put(("start", message["status"], _start_headers(message)))
        elif message["type"] == "http.response.body":
            data = message.get("body", b"")
            if data:
                # A full queue parks the app here until the reader takes a chunk.
                await put(("body", bytes(data)))
            if not message.get("more_body", False):
                response_done.set()

    try:
        await app(_scope(request), receive, send)
    except Exception as exc:
        await put(("error", exc))
    finally:
        response_done.set()


class _ResponseStream(httpx.SyncByteStream):
    """The response body, chunk by chunk, as the app sends it."""

    def __init__(self, chunks: queue.Queue[tuple[Any, ...]], taken: Callable[[], None]) -> None:
        self._chunks = chunks
        self._taken = taken
        self._done = False

    def _get(self) -> tuple[Any, ...]:
        item = self._chunks.get()
        self._taken()
        return item

    def __iter__(self) -> Iterator[bytes]:
        while not self._done:
            item = self._get()
            if item[0] == "body":
                yield item[1]
            elif item[0] == "error":
                self._done = True
                raise item[1]
            else:
                self._done = True

    def close(self) -> None:
        # Let a producer blocked on a full queue finish: drain what remains.
        while not self._done:
            item = self._get()
            self._done = item[0] != "body"


class SyncASGITransport(httpx.BaseTransport):
    """`httpx.Client(transport=SyncASGITransport(app))` calls `app` in-process."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="batchconf-asgi", daemon=True)
        self._thread.start()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request through the app; the response body streams as it is produced."""
        if self._closed:
            raise RuntimeError("the emulator's transport is closed")
        chunks: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        space = asyncio.Event()

        def taken() -> None:
            # Wake the producer on the loop: the queue has room again.
            self._loop.call_soon_threadsafe(space.set)

        asyncio.run_coroutine_threadsafe(self._run(request, chunks, space), self._loop)
        while True:
            item = chunks.get()
            taken()
            if item[0] == "start":
                status, headers = item[1], item[2]
                break
            if item[0] == "error":
                raise item[1]
            if item[0] == "end":
                raise RuntimeError("the application finished without sending a response")
        return httpx.Response(status, headers=headers, stream=_ResponseStream(chunks, taken), request=request)

    async def _run(self, request: httpx.Request, chunks: queue.Queue[tuple[Any, ...]], space: asyncio.Event) -> None:
        async def put(item: tuple[Any, ...]) -> None:
            # A full queue means the caller reads slowly: wait for it on the loop (other
            # requests go on), never in a thread that could outlive an abandoned response.
            while True:
                space.clear()
                try:
                    chunks.put_nowait(item)
                    return
                except queue.Full:
                    await space.wait()

        body = request.stream
        assert isinstance(body, httpx.SyncByteStream)
        parts = iter(body)

        async def next_chunk() -> bytes | None:
            return next(parts, None)

        try:
            await _call_app(self._app, request, next_chunk, put)
        finally:
            # Even if the task dies of a BaseException: the caller waits on the queue.
            await put(_END)

    def close(self) -> None:
        """Stop the helper thread's event loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class _AsyncResponseStream(httpx.AsyncByteStream):
    """The response body, chunk by chunk, as the app task sends it."""

    def __init__(self, chunks: asyncio.Queue[tuple[Any, ...]], task: asyncio.Task[None]) -> None:
        self._chunks = chunks
        self._task = task
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._done:
            item = await self._chunks.get()
            if item[0] == "body":
                yield item[1]
            elif item[0] == "error":
                self._done = True
                raise item[1]
            else:
                self._done = True

    async def aclose(self) -> None:
        # A reader that stops early: the app must not wait forever on a full queue.
        self._done = True
        if not self._task.done():
            self._task.cancel()
            # wait(), not `await task`: the task's CancelledError stays in the task, while
            # a cancellation of the reader itself still propagates.
            await asyncio.wait([self._task])


class AsyncASGITransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AsyncASGITransport(app))` calls `app` in-process, streaming.

    asyncio only: the app runs as a task that outlives `handle_async_request` while the
    caller reads the body, which anyio's structured task groups (and so trio) do not allow.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Start the app on this loop; the response body streams as it is produced."""
        chunks: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)
        task = asyncio.get_running_loop().create_task(self._run(request, chunks.put))
        try:
            item = await chunks.get()
        except asyncio.CancelledError:
            task.cancel()
            raise
        if item[0] == "error":
            raise item[1]
        if item[0] == "end":
            raise RuntimeError("the application finished without sending a response")
        return httpx.Response(item[1], headers=item[2], stream=_AsyncResponseStream(chunks, task), request=request)

    async def _run(self, request: httpx.Request, put: Callable[[tuple[Any, ...]], Awaitable[None]]) -> None:
        body = request.stream
        assert isinstance(body, httpx.AsyncByteStream)
        parts = body.__aiter__()

        async def next_chunk() -> bytes | None:
            return await anext(parts, None)

        await _call_app(self._app, request, next_chunk, put)
        # Not in a `finally`: a task cancelled by an early close must not wait on a full
        # queue nobody reads any more.
        await put(_END)
