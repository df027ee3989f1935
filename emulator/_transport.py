"""A sync httpx transport into an ASGI app, with no socket.

httpx's own `ASGITransport` is async-only; the sync `openai.OpenAI` client needs a sync
transport. This one runs the app on an event loop in a daemon helper thread and hands each
request across: about a millisecond a call. The thread is a daemon so that an emulator
nobody closed never keeps the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from starlette.types import ASGIApp

__all__ = ["SyncASGITransport"]


class SyncASGITransport(httpx.BaseTransport):
    """`httpx.Client(transport=SyncASGITransport(app))` calls `app` in-process."""

    def __init__(self, app: ASGIApp) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="batchconf-asgi", daemon=True)
        self._thread.start()
        self._inner = httpx.ASGITransport(app=app)
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request through the app and return the whole response."""
        if self._closed:
            raise RuntimeError("the emulator's transport is closed")
        body = request.read()
        inner_request = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, Any, bytes]:
            resp = await self._inner.handle_async_request(inner_request)
            content = await resp.aread()
            return resp.status_code, resp.headers, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Stop the helper thread's event loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
