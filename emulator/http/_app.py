"""The ASGI application: each surface's dialect routes plus the admin surface."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._provider import Provider
from ..dialects import Surface
from ..model.errors import ApiError
from ._admin import admin_routes
from ._common import error_response, json_response, new_request_id
from ._router import RememberingRouter

__all__ = ["create_app"]

log = logging.getLogger("batchconf.emulator")


def _surface_at(provider: Provider, path: str) -> Surface:
    """The surface whose base path is the longest prefix of `path` (the main one otherwise)."""
    best = provider.main
    length = -1
    for surface in provider.surfaces:
        base = surface.profile.http.base_path
        if (path == base or path.startswith(base + "/")) and len(base) > length:
            best, length = surface, len(base)
    return best


class _Front:
    """The application: the router behind one layer that every request passes through.

    Starlette's own application would add two more layers (its server-error and exception
    middlewares), each a call and a `send` wrapper per request; this one layer does their
    work and ours:

    - an `x-request-id` on every response (the SDK reads it into `request_id`);
    - the API fault rules, which fail provider calls before any handler runs (admin routes
      are never failed; the operation is the name of the route the call matches);
    - the router's 404 and 405 and any contract error a handler lets through, in the
      envelope of the dialect whose base path the request names;
    - a bug of ours turned into a 500 in that envelope, so the server keeps serving.
    """

    def __init__(self, router: RememberingRouter, provider: Provider, routes: list[Route], header: str) -> None:
        self.router = router
        self.provider = provider
        self.routes = routes
        self.header = header.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        # With an application in the scope, the router raises its 404 and 405 as
        # HTTPException (answered below) instead of answering them in plain text.
        scope["app"] = self
        rid = new_request_id().encode()
        header = self.header
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (header, rid)]
            await send(message)

        try:
            if not self.provider.api_faults or not await self._fault(scope, receive, send_with_id):
                await self.router(scope, receive, send_with_id)
        except (ApiError, HTTPException) as exc:
            if started:
                raise
            path = str(scope.get("path", ""))
            if isinstance(exc, HTTPException):
                name = "method_not_allowed" if exc.status_code == 405 else "not_found_route"
                exc = ApiError(name, method=scope.get("method"), path=path)
            await error_response(_surface_at(self.provider, path), exc)(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            surface = _surface_at(self.provider, str(scope.get("path", "")))
            body = surface.dialect.error_body(surface.profile.error("server_error"))
            await json_response(body, 500)(scope, receive, send_with_id)

    async def _fault(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer with the fault a rule picks for this call, if any; whether it did."""
        operation = next((r.name for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        fault = self.provider.api_faults.take(operation.split("@")[0]) if operation else None
        if fault is None:
            return False
        surface = _surface_at(self.provider, str(scope.get("path", "")))
        if fault.stall_seconds is not None:
            # A stalled network, in real seconds: the emulator's clock is not involved.
            await asyncio.sleep(fault.stall_seconds)
        status = fault.status_code or 504
        name = "rate_limited" if status == 429 else "server_error"
        err = dataclasses.replace(surface.profile.error(name), status=status)
        response = json_response(surface.dialect.error_body(err), status)
        if fault.retry_after is not None:
            response.headers["retry-after"] = f"{fault.retry_after:g}"
        await response(scope, receive, send)
        return True


def create_app(
    provider: Provider, version: str = "0", *, admin: bool = True, admin_token: str | None = None
) -> ASGIApp:
    """The emulator's ASGI app for `provider`'s surfaces, with the admin routes unless
    `admin` is False (behind `admin_token` when one is given)."""
    routes: list[BaseRoute] = []
    for surface in provider.surfaces:
        routes.extend(surface.dialect.routes(surface))
    provider_routes = [r for r in routes if isinstance(r, Route)]
    if admin:
        routes.extend(admin_routes(provider, version, admin_token))

    # A provider answers `/v1/batches/` with its 404 envelope, not a redirect.
    router = RememberingRouter(routes)
    return _Front(router, provider, provider_routes, provider.profile.http.request_id_header)
