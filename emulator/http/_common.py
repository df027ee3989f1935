"""What every dialect's HTTP layer shares: JSON responses, error rendering, auth, ids."""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..model import seams
from ..model.errors import ApiError
from ..model.records import Owner

if TYPE_CHECKING:
    from ..dialects._base import Surface

__all__ = [
    "Handler",
    "base_url_of",
    "build_routes",
    "error_response",
    "int_query",
    "json_response",
    "owner_of",
    "query_of",
    "read_json",
    "with_errors",
]

Handler = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(surface: Surface, exc: ApiError) -> Response:
    """Render a catalogue error into the surface's envelope and status."""
    err = surface.profile.error(exc.name, **exc.fields)
    wire = seams.WireError(err.status, surface.dialect.error_body(err), exc.name)
    wire = surface.mutations.apply(f"{seams.WIRE_ERROR}:{surface.dialect.name}", wire)
    resp = json_response(wire.body, wire.status)
    if wire.status == 409:
        # The openai SDK retries 409s unless told not to; a refused cancel is final.
        resp.headers["x-should-retry"] = "false"
    return resp


def with_errors(surface: Surface, handler: Handler) -> Handler:
    """`handler` with contract errors rendered in `surface`'s envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(surface, exc)

    return wrapped


def owner_of(surface: Surface, request: Request) -> Owner:
    """Authenticate the request with the profile's auth header; raises the 401s."""
    http = surface.profile.http
    header, auth_scheme = http.auth_header, http.auth_scheme
    if surface.mutations.active(seams.ACCESS_AUTH_HEADER):
        header, auth_scheme = surface.mutations.apply(seams.ACCESS_AUTH_HEADER, (header, auth_scheme))
    raw = request.headers.get(header)
    key: str | None = None
    if raw:
        if auth_scheme:
            scheme, _, value = raw.partition(" ")
            key = value.strip() if scheme.lower() == auth_scheme.lower() else None
            if key is None:
                raise ApiError("unauthorized")
        else:
            key = raw.strip()
    project = request.headers.get(http.project_header) if http.project_header else None
    # A project in the path (Scaleway's /{project_id}/v1/...) scopes the request like a header.
    project = request.path_params.get("project_id", project)
    return surface.access.authenticate(key, project)


async def read_json(request: Request) -> Any:
    """The JSON body; the dialect's 400 for a body that is not JSON."""
    body = await request.body()
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise ApiError("invalid_json_body") from None


#: Parsed query strings by their raw bytes: clients repeat theirs (a poll loop, a list page).
_queries: dict[bytes, QueryParams] = {}
_MAX_QUERIES = 1024


def query_of(request: Request) -> QueryParams:
    """`request.query_params`, parsed once per distinct query string (Starlette parses it
    for each request). The parsed parameters are immutable, so requests may share them."""
    raw = request.scope.get("query_string", b"")
    found = _queries.get(raw)
    if found is None:
        if len(_queries) >= _MAX_QUERIES:
            _queries.clear()  # the query is the client's: keep the table small
        found = _queries[raw] = request.query_params
    return found


def int_query(request: Request, name: str, default: int, maximum: int) -> int:
    """An integer query parameter between 1 and `maximum`; the dialect's 400 otherwise."""
    raw = query_of(request).get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("invalid_value", param=name, value=raw, expected=f"an integer between 1 and {maximum}") from None
    if not 1 <= value <= maximum:
        raise ApiError("invalid_value", param=name, value=raw, expected=f"an integer between 1 and {maximum}")
    return value


#: Request ids need to be unique, not secret: a PRNG seeded once from the system's entropy
#: gives 128 random bits without the system call `uuid4` makes on every request.
_request_ids = random.Random()
# A forked child must not repeat its parent's ids.
os.register_at_fork(after_in_child=_request_ids.seed)


#: Origins already worked out, by what Starlette's `Request.base_url` reads from the scope.
_origins: dict[tuple[Any, ...], str] = {}
_MAX_ORIGINS = 64


def base_url_of(request: Request) -> str:
    """`str(request.base_url)` without its trailing slash, worked out once per distinct
    scheme, server, Host header and root path (Starlette builds and parses a URL each time)."""
    scope = request.scope
    host = next((value for key, value in scope["headers"] if key == b"host"), None)
    root = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme", "http"), scope.get("server"), host, root)
    origin = _origins.get(key)
    if origin is None:
        if len(_origins) >= _MAX_ORIGINS:
            _origins.clear()  # the Host header is the client's: keep the table small
        origin = _origins[key] = str(request.base_url).rstrip("/")
    return origin


def new_request_id() -> str:
    """A request id for the `x-request-id` header: `req_` and 32 hex digits."""
    return f"req_{_request_ids.getrandbits(128):032x}"


def build_routes(surface: Surface, handlers: dict[str, Handler]) -> list[Route]:
    """A route for every profile operation the dialect handles, errors in its envelope.

    Literal paths come before templated ones, so `/files/{id}` never shadows a longer route.
    """
    http = surface.profile.http
    routes: list[Route] = []
    for op in sorted(http.operations, key=lambda o: http.operations[o][1].count("{")):
        route = http.route(op)
        if route is None or op not in handlers:
            continue
        method, path = route
        handler = handlers[op]
        if http.required_headers:
            handler = _with_headers(surface, tuple(http.required_headers), handler)
        routes.append(Route(path, with_errors(surface, handler), methods=[method], name=op))
        # The same operation under the profile's other base paths (Azure's /openai with
        # ?api-version, Scaleway's /{project_id}/v1).
        for alias in http.base_path_aliases:
            aliased = _aliased(surface, alias, http.alias_required_query, handler)
            alias_path = alias + http.operations[op][1]
            routes.append(Route(alias_path, with_errors(surface, aliased), methods=[method], name=f"{op}@{alias}"))
    return routes


def _with_headers(surface: Surface, names: tuple[str, ...], handler: Handler) -> Handler:
    """`handler` behind a check that every header in `names` is present (a gateway's
    provider selector: without it the gateway cannot route the request)."""
    mutations = surface.mutations

    async def checked(request: Request) -> Response:
        required = (
            mutations.apply(seams.HTTP_REQUIRED_HEADERS, names)
            if mutations.active(seams.HTTP_REQUIRED_HEADERS)
            else names
        )
        for name in required:
            if not request.headers.get(name):
                raise ApiError("missing_parameter", param=name)
        return await handler(request)

    return checked


def _aliased(surface: Surface, alias: str, param: str, handler: Handler) -> Handler:
    """`handler` under base path `alias`: behind a check that the query names `param` (when
    the profile requires one, Azure's api-version)."""
    mutations = surface.mutations

    async def checked(request: Request) -> Response:
        if mutations.active(seams.HTTP_ALIAS_SERVED) and not mutations.apply(
            seams.HTTP_ALIAS_SERVED, True, alias=alias
        ):
            raise ApiError("not_found_route", method=request.method, path=request.url.path)
        if param and param not in query_of(request):
            raise ApiError("missing_parameter", param=param)
        return await handler(request)

    return checked
