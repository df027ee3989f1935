"""The ASGI application: each surface's dialect routes plus the admin surface."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._provider import Provider
from ..dialects import Surface
from ..model.errors import ApiError
from ._admin import admin_routes
from ._common import error_response, json_response, new_request_id

__all__ = ["create_app"]

log = logging.getLogger("batchconf.emulator")


class _RequestId:
    """Adds `x-request-id` to every response (the SDK reads it into `request_id`)."""

    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        self.header = header.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id().encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (self.header, rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _surface_at(provider: Provider, path: str) -> Surface:
    """The surface whose base path is the longest prefix of `path` (the main one otherwise)."""
    best = provider.main
    length = -1
    for surface in provider.surfaces:
        base = surface.profile.http.base_path
        if (path == base or path.startswith(base + "/")) and len(base) > length:
            best, length = surface, len(base)
    return best


class _CatchAll:
    """Turns a bug of ours into a 500 in the right dialect's envelope; the server keeps serving."""

    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            surface = _surface_at(self.provider, str(scope.get("path", "")))
            body = surface.dialect.error_body(surface.profile.error("server_error"))
            await json_response(body, 500)(scope, receive, send)


class _ApiFaults:
    """Fails provider calls the API fault rules pick, before any handler runs (admin routes
    are never failed): the operation is the name of the route the call matches."""

    def __init__(self, app: ASGIApp, provider: Provider, routes: list[Route]) -> None:
        self.app = app
        self.provider = provider
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.provider.api_faults
        if scope["type"] != "http" or not faults:
            await self.app(scope, receive, send)
            return
        operation = next((r.name for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        fault = faults.take(operation.split("@")[0]) if operation else None
        if fault is None:
            await self.app(scope, receive, send)
            return
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

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(_surface_at(provider, request.url.path), exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        name = "method_not_allowed" if exc.status_code == 405 else "not_found_route"
        surface = _surface_at(provider, request.url.path)
        return error_response(surface, ApiError(name, method=request.method, path=request.url.path))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_CatchAll, provider=provider),
            Middleware(_ApiFaults, provider=provider, routes=provider_routes),
        ],
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error},
    )
    # A provider answers `/v1/batches/` with its 404 envelope, not a redirect.
    app.router.redirect_slashes = False
    return _RequestId(app, provider.profile.http.request_id_header)
