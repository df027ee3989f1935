"""The fuzz harness has teeth: served through it, an app that answers 500, leaks a traceback,
hangs, breaks mid-stream or strays from its document fails, and one that behaves passes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._harness import Live, Served, load_schema, run_case

_LEAK = 'Traceback (most recent call last):\n  File "/srv/app.py", line 12, in handler\nKeyError: x'


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def leak(request: Request) -> Response:
    return JSONResponse({"error": {"message": _LEAK}}, status_code=400)


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return JSONResponse({"ok": True})


async def broken_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"ok": true'
        raise RuntimeError("the store went away")

    return StreamingResponse(chunks(), media_type="application/json")


async def logs(request: Request) -> Response:
    # What the emulator's catch-all does when an exception comes after the response started.
    logging.getLogger("batchconf.emulator").error("unhandled error on GET /logs")
    return JSONResponse({"ok": True})


async def stray(request: Request) -> Response:
    return JSONResponse({"ok": "yes"})


APP = Starlette(
    routes=[
        Route(f"/{name}", handler)
        for name, handler in {
            "ok": ok,
            "boom": boom,
            "leak": leak,
            "slow": slow,
            "broken_stream": broken_stream,
            "logs": logs,
            "stray": stray,
        }.items()
    ]
)

_RESPONSES = {
    "200": {
        "description": "ok",
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
            }
        },
    },
    "400": {"description": "refused", "content": {"application/json": {"schema": {"type": "object"}}}},
}
DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "teeth", "version": "1"},
    "paths": {
        f"/{name}": {"get": {"operationId": name, "responses": _RESPONSES}}
        for name in ("ok", "boom", "leak", "slow", "broken_stream", "logs", "stray")
    },
}
SCHEMA = load_schema(DOCUMENT)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The misbehaving app behind a socket."""
    with Served(APP) as server:
        yield server


def _fuzz(served: Served, name: str) -> None:
    operation = SCHEMA[f"/{name}"]["GET"]

    @given(case=operation.as_strategy())
    @settings(max_examples=2, derandomize=True, database=None, deadline=None)
    def run(case: Any) -> None:
        run_case(case, "", served.root_url, served, Live(), timeout=1.0)

    run()


def test_a_conforming_operation_passes(served: Served) -> None:
    """An operation that answers as documented MUST pass (the failures below are the faults')."""
    _fuzz(served, "ok")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("boom", ("server error", "the server logged")),
        ("leak", ("traceback in the response body",)),
        ("slow", ("timed out",)),
        ("broken_stream", ("response ended prematurely", "the server logged")),
        ("logs", ("the server logged",)),
        ("stray", ("response violates schema",)),
    ],
)
def test_a_misbehaving_operation_fails(served: Served, name: str, expected: tuple[str, ...]) -> None:
    """A 5xx, a traceback in a body, a hang, a body cut short, an error the server logged
    and a body the document does not allow MUST each fail the fuzz test, saying which."""
    with pytest.raises(BaseException) as info:  # a check failure, a group of them, or a timeout
        _fuzz(served, name)
    text = _text(info.value).lower()
    assert any(e in text for e in expected), text[:2000]


def _text(exc: BaseException) -> str:
    parts = [str(exc), type(exc).__name__]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(_text(sub))
    return "\n".join(parts)
