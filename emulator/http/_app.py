"""The ASGI application: a dialect's routes plus the admin surface, errors in one place."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._core import Core
from .._errors import ApiError
from ._admin import admin_routes
from ._common import error_response, json_response, new_request_id
from ._openai import openai_routes

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


class _CatchAll:
    """Turns a bug of ours into a 500 in the dialect's envelope; the server keeps serving."""

    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

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
            err = self.core.profile.error("server_error")
            body = {"error": {"message": err.message, "type": err.type, "param": None, "code": err.code}}
            await json_response(body, 500)(scope, receive, send)


def create_app(core: Core, version: str = "0") -> ASGIApp:
    """The emulator's ASGI app for `core`'s profile."""
    if core.profile.dialect != "openai":
        # Other dialects' routes come with their own module; refuse rather than half-serve.
        raise NotImplementedError(f"the emulator does not serve the {core.profile.dialect!r} dialect yet")
    if core.profile.output.location != "files_api":
        # Object-storage dialects (Scaleway) need input-by-URL and result keys beside the input.
        raise NotImplementedError(
            f"the emulator does not serve {core.profile.output.location!r} result storage "
            f"(profile {core.profile.name!r}) yet"
        )
    routes: list[Route] = [*openai_routes(core), *admin_routes(core, version)]

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(core, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        name = "method_not_allowed" if exc.status_code == 405 else "not_found_route"
        return error_response(core, ApiError(name, method=request.method, path=request.url.path))

    app = Starlette(
        routes=routes,
        middleware=[Middleware(_CatchAll, core=core)],
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error},
    )
    # A provider answers `/v1/batches/` with its 404 envelope, not a redirect.
    app.router.redirect_slashes = False
    return _RequestId(app, core.profile.http.request_id_header)
