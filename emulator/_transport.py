"""A sync httpx transport into an ASGI app, with no socket.

httpx's own `ASGITransport` is async-only; the sync `openai.OpenAI` client needs a sync
transport. This one runs the app on an event loop in a helper thread (an anyio blocking
portal) and hands each request across: about a millisecond a call.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio.from_thread
import httpx
from starlette.types import ASGIApp

__all__ = ["SyncASGITransport"]


class SyncASGITransport(httpx.BaseTransport):
    """`httpx.Client(transport=SyncASGITransport(app))` calls `app` in-process."""

    def __init__(self, app: ASGIApp) -> None:
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request through the app and return the whole response."""
        body = request.read()
        inner_request = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, Any, bytes]:
            resp = await self._inner.handle_async_request(inner_request)
            content = await resp.aread()
            return resp.status_code, resp.headers, content

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Stop the portal's event loop."""
        self._stack.close()
