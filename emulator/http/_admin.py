"""Admin routes under `/_emulator/`: reset, clock, timing model, faults (per line, API,
storage, eventual consistency), mutations, steps.

They sit off the provider's own paths, need no key, and are documented in the README.
Bad input gets a 400 in the dialect's envelope, like everything else.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._provider import Provider
from ..model.errors import ApiError
from ._common import json_response, read_json

__all__ = ["ADMIN_PREFIX", "ADMIN_TOKEN_HEADER", "admin_routes"]

ADMIN_PREFIX = "/_emulator"
#: The header an admin token travels in (never the provider's own auth header).
ADMIN_TOKEN_HEADER = "x-batchconf-admin-token"


def _bad(param: str, value: Any, expected: str) -> ApiError:
    return ApiError("invalid_value", param=param, value=value, expected=expected)


class _Rules(Protocol):
    def add_json(self, data: Any) -> Any: ...
    def rules(self) -> Sequence[Any]: ...
    def clear(self) -> None: ...


def _rule_route(
    rules_of: Callable[[], _Rules], param: str, extra: Callable[[], dict[str, Any]] = dict
) -> Callable[[Request], Awaitable[Response]]:
    """One route for a set of fault rules: GET lists them, POST adds one (its JSON form;
    an invalid one is a 400 naming `param`), DELETE clears them; `extra` adds fields to the
    listing. The set is looked up per request: a reset replaces it."""

    async def route(request: Request) -> Response:
        rules = rules_of()
        if request.method == "POST":
            body = await read_json(request)
            try:
                rule = rules.add_json(body)
            except (ValueError, TypeError) as exc:
                raise _bad(param, body, str(exc)) from None
            return json_response(rule.to_json())
        if request.method == "DELETE":
            rules.clear()
        return json_response({**extra(), "data": [r.to_json() for r in rules.rules()]})

    return route


def admin_routes(provider: Provider, version: str, token: str | None = None) -> list[Route]:
    """The admin surface of one emulator; with `token`, every route needs it in the
    `X-Batchconf-Admin-Token` header (a server reachable beyond this machine)."""

    def info() -> dict[str, Any]:
        return {
            "emulator": "batchconf",
            "version": version,
            "profile": provider.profile.name,
            "dialect": provider.profile.dialect,
            "base_path": provider.profile.http.base_path,
            "clock": provider.clock.describe(),
            "timing": provider.timing.to_json(),
            "keys": len(provider.access.api_keys),
            "surfaces": [
                {"dialect": s.dialect.name, "profile": s.profile.name, "base_path": s.profile.http.base_path}
                for s in provider.surfaces
            ],
            "s3_endpoint_url": provider.store.endpoint_url,
            "webhooks": provider.webhooks is not None,
            "batch_principals": list(provider.principals),
        }

    async def get_info(request: Request) -> Response:
        return json_response(info())

    async def reset(request: Request) -> Response:
        await run_in_threadpool(provider.reset)
        return json_response(info())

    async def clock(request: Request) -> Response:
        return json_response(provider.clock.describe())

    async def advance(request: Request) -> Response:
        body = await read_json(request) or {}
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise _bad("seconds", seconds, "a number >= 0")
        with provider.lock:
            provider.clock.advance(float(seconds))
        return json_response(provider.clock.describe())

    async def timing(request: Request) -> Response:
        if request.method == "PUT":
            body = await read_json(request)
            if not isinstance(body, dict):
                raise _bad("timing", body, "a JSON object of timing keys")
            try:
                new = provider.timing.updated(body)
            except (ValueError, TypeError) as exc:
                raise _bad("timing", body, str(exc)) from None
            provider.timing = new
        return json_response(provider.timing.to_json())

    faults = _rule_route(lambda: provider.faults, "fault")
    api_faults = _rule_route(lambda: provider.api_faults, "api_fault")
    storage_faults = _rule_route(
        lambda: provider.storage_faults, "storage_fault", lambda: {"attempts": provider.storage_faults.attempts}
    )
    consistency = _rule_route(lambda: provider.consistency, "consistency")

    async def mutations(request: Request) -> Response:
        if request.method == "PUT":
            body = await read_json(request)
            names = body.get("enabled") if isinstance(body, dict) else None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _bad("enabled", names, "a list of mutation names")
            try:
                provider.mutations.set(names)
            except ValueError as exc:
                raise _bad("enabled", names, str(exc)) from None
        return json_response({"enabled": provider.mutations.enabled, "available": provider.mutations.catalogue})

    async def webhooks(request: Request) -> Response:
        hooks = provider.webhooks
        if hooks is None:
            return json_response({"events": [], "deliveries": [], "pending": 0})
        if request.method == "POST":
            # Deliver what is due now (a client that drives a virtual clock need not wait for
            # the background thread).
            await run_in_threadpool(hooks.deliver_due)
        return json_response({"events": hooks.events(), "deliveries": hooks.deliveries(), "pending": hooks.pending()})

    async def step(request: Request) -> Response:
        body = await read_json(request)
        if body is None:
            body = {}
        if not isinstance(body, dict) or set(body) - {"lines"}:
            raise _bad("step", body, 'an object with at most the key "lines"')
        lines = body.get("lines")
        if lines is not None and (not isinstance(lines, int) or isinstance(lines, bool) or lines < 0):
            raise _bad("lines", lines, "an integer >= 0")
        found = provider.batch(request.path_params["batch_id"])
        if found is None:
            raise ApiError("batch_not_found", id=request.path_params["batch_id"])
        surface, b = found
        try:
            b = await run_in_threadpool(surface.batches.step, b.id, lines)
        except ValueError as exc:
            raise _bad("lines", lines, str(exc)) from None
        return json_response(surface.batch_json(b, request))

    p = ADMIN_PREFIX
    routes = [
        Route(f"{p}/info", get_info, methods=["GET"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
        Route(f"{p}/clock", clock, methods=["GET"]),
        Route(f"{p}/clock/advance", advance, methods=["POST"]),
        Route(f"{p}/timing", timing, methods=["GET", "PUT"]),
        Route(f"{p}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/mutations", mutations, methods=["GET", "PUT"]),
        Route(f"{p}/api-faults", api_faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/storage-faults", storage_faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/consistency", consistency, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/webhooks", webhooks, methods=["GET", "POST"]),
        Route(f"{p}/batches/{{batch_id}}/step", step, methods=["POST"]),
    ]
    if token is None:
        return routes
    return [Route(r.path, _guarded(r.endpoint, token), methods=sorted(r.methods or ())) for r in routes]


def _guarded(endpoint: Any, token: str) -> Any:
    """`endpoint` behind the admin token (`X-Batchconf-Admin-Token`), compared in constant time."""

    async def guarded(request: Request) -> Response:
        given = request.headers.get(ADMIN_TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError("unauthorized")
        response: Response = await endpoint(request)
        return response

    return guarded
