"""What every dialect's HTTP layer shares: JSON responses, the error envelope, auth, ids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from schemas import RenderedError

from .._core import Core
from .._errors import ApiError
from .._records import Owner

__all__ = ["Handler", "error_response", "json_response", "owner_of", "read_json"]

Handler = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def envelope(core: Core, err: RenderedError) -> dict[str, Any]:
    """The dialect's error envelope (all four keys; mutations may break it on purpose)."""
    inner: dict[str, Any] = {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    if core.mutations.on("error_envelope_missing_type"):
        del inner["type"]
    if core.mutations.on("error_envelope_missing_code"):
        del inner["code"]
    return {"error": inner}


def error_response(core: Core, exc: ApiError) -> Response:
    """Render a catalogue error into the dialect's envelope and status."""
    err = core.profile.error(exc.name, **exc.fields)
    status = err.status
    if status == 400 and core.mutations.on("wrong_error_status"):
        status = 422
    headers = {"x-should-retry": "false"} if status == 409 else None
    resp = json_response(envelope(core, err), status)
    if headers:
        resp.headers.update(headers)
    return resp


def owner_of(core: Core, request: Request) -> Owner:
    """Authenticate the request with the profile's auth header; raises the 401s."""
    http = core.profile.http
    raw = request.headers.get(http.auth_header)
    key: str | None = None
    if raw:
        if http.auth_scheme:
            scheme, _, value = raw.partition(" ")
            key = value.strip() if scheme.lower() == http.auth_scheme.lower() else None
            if key is None:
                raise ApiError("unauthorized")
        else:
            key = raw.strip()
    project = request.headers.get(http.project_header) if http.project_header else None
    return core.authenticate(key, project)


async def read_json(request: Request) -> Any:
    """The JSON body; the dialect's 400 for a body that is not JSON."""
    body = await request.body()
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise ApiError("invalid_json_body") from None


def new_request_id() -> str:
    """A request id for the `x-request-id` header."""
    return "req_" + uuid.uuid4().hex
