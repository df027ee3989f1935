"""Admin routes under `/_emulator/`: reset, clock, timing model, faults, mutations, steps.

They sit off the provider's own paths, need no key, and are documented in the README.
Bad input gets a 400 in the dialect's envelope, like everything else.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._core import Core
from .._errors import ApiError
from .._mutations import CATALOGUE
from ._common import json_response, read_json
from ._openai import batch_json

__all__ = ["ADMIN_PREFIX", "admin_routes"]

ADMIN_PREFIX = "/_emulator"


def _bad(param: str, value: Any, expected: str) -> ApiError:
    return ApiError("invalid_value", param=param, value=value, expected=expected)


def admin_routes(core: Core, version: str) -> list[Route]:
    """The admin surface of one emulator."""

    def info() -> dict[str, Any]:
        return {
            "emulator": "batchconf",
            "version": version,
            "profile": core.profile.name,
            "dialect": core.profile.dialect,
            "base_path": core.profile.http.base_path,
            "clock": core.clock.describe(),
            "timing": core.timing.to_json(),
            "keys": len(core.api_keys),
        }

    async def get_info(request: Request) -> Response:
        return json_response(info())

    async def reset(request: Request) -> Response:
        await run_in_threadpool(core.reset)
        return json_response(info())

    async def clock(request: Request) -> Response:
        return json_response(core.clock.describe())

    async def advance(request: Request) -> Response:
        body = await read_json(request) or {}
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise _bad("seconds", seconds, "a number >= 0")
        with core.lock:
            core.clock.advance(float(seconds))
        return json_response(core.clock.describe())

    async def timing(request: Request) -> Response:
        if request.method == "PUT":
            body = await read_json(request)
            if not isinstance(body, dict):
                raise _bad("timing", body, "a JSON object of timing keys")
            try:
                new = core.timing.updated(body)
            except (ValueError, TypeError) as exc:
                raise _bad("timing", body, str(exc)) from None
            with core.lock:
                core.timing = new
        return json_response(core.timing.to_json())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            try:
                fault = core.faults.add_json(body)
            except ValueError as exc:
                raise _bad("fault", body, str(exc)) from None
            return json_response(fault.to_json())
        if request.method == "DELETE":
            core.faults.clear()
        return json_response({"data": [f.to_json() for f in core.faults.rules()]})

    async def mutations(request: Request) -> Response:
        if request.method == "PUT":
            body = await read_json(request)
            names = body.get("enabled") if isinstance(body, dict) else None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _bad("enabled", names, "a list of mutation names")
            try:
                core.mutations.set(names)
            except ValueError as exc:
                raise _bad("enabled", names, str(exc)) from None
        return json_response({"enabled": core.mutations.enabled, "available": CATALOGUE})

    async def step(request: Request) -> Response:
        body = await read_json(request)
        if body is None:
            body = {}
        if not isinstance(body, dict) or set(body) - {"lines"}:
            raise _bad("step", body, 'an object with at most the key "lines"')
        lines = body.get("lines")
        if lines is not None and (not isinstance(lines, int) or isinstance(lines, bool) or lines < 0):
            raise _bad("lines", lines, "an integer >= 0")
        try:
            b = await run_in_threadpool(core.batches.step, request.path_params["batch_id"], lines)
        except ValueError as exc:
            raise _bad("lines", lines, str(exc)) from None
        return json_response(batch_json(core, b))

    p = ADMIN_PREFIX
    return [
        Route(f"{p}/info", get_info, methods=["GET"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
        Route(f"{p}/clock", clock, methods=["GET"]),
        Route(f"{p}/clock/advance", advance, methods=["POST"]),
        Route(f"{p}/timing", timing, methods=["GET", "PUT"]),
        Route(f"{p}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/mutations", mutations, methods=["GET", "PUT"]),
        Route(f"{p}/batches/{{batch_id}}/step", step, methods=["POST"]),
    ]
