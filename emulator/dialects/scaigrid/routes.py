"""ScaiGrid's native routes: create (input by URL or inline base64), list, retrieve, cancel,
and the results file behind `results_url`."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...http._common import build_routes, json_response, owner_of, read_json
from ...model import seams
from ...model.batches import CreateBatch, json_kind
from ...model.errors import ApiError
from ...model.records import InputRef
from .._base import Surface
from .._handlers import batch_handlers
from .serialize import list_json

__all__ = ["parse_create", "scaigrid_routes"]

_URL = "input_file_url"
_INLINE = "input_file_base64"
_WINDOW = "endpoint_completion_window"


def parse_create(surface: Surface, payload: Any) -> CreateBatch:
    """A ScaiGrid create body as a neutral command (the base64 input decoded)."""
    if not isinstance(payload, dict):
        raise ApiError("invalid_json_body")
    webhook_field = surface.profile.webhooks.subscribe_field if surface.profile.webhooks else ""
    for name in (_URL, _INLINE, _WINDOW, webhook_field):
        value = payload.get(name) if name else None
        if value is not None and not isinstance(value, str):
            raise ApiError("invalid_type", param=name, expected="a string", got=json_kind(value))
    url, inline = payload.get(_URL), payload.get(_INLINE)
    if url is None and inline is None:
        raise ApiError("missing_parameter", param=_URL)
    if url is not None and inline is not None:
        raise ApiError("conflicting_input")
    data: bytes | None = None
    if inline is not None:
        try:
            data = base64.b64decode(inline, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("invalid_base64") from None
    webhook = payload.get(webhook_field) if webhook_field else None
    return CreateBatch(
        input=InputRef("url", url) if url is not None else None,
        inline=data,
        endpoint=None,
        window=payload.get(_WINDOW),
        webhook_url=webhook,
    )


def scaigrid_routes(surface: Surface) -> list[Route]:
    """The native routes of a ScaiGrid surface."""
    profile = surface.profile
    batches = surface.batches

    async def create_batch(request: Request) -> Response:
        owner = owner_of(surface, request)
        # An inline input is refused from its declared size, before the body is read whole.
        limit = surface.mutations.apply(seams.CREATE_INLINE_MAX, profile.limits.inline_base64_max_bytes)
        declared = request.headers.get("content-length")
        if limit and declared and declared.isdigit() and int(declared) > limit * 4 // 3 + (64 << 10):
            raise ApiError("inline_too_large", size=f"about {int(declared) * 3 // 4}", max=limit)
        payload = await read_json(request)
        cmd = await run_in_threadpool(parse_create, surface, payload)
        b = await run_in_threadpool(batches.create, owner, cmd)
        return json_response(surface.batch_json(b, request))

    async def batch_results(request: Request) -> Response:
        owner = owner_of(surface, request)
        batch_id = request.path_params["batch_id"]
        b = await run_in_threadpool(lambda: batches.retrieve(batch_id, owner, poll=False))
        record = surface.repo.file(b.results["results"]) if "results" in b.results else None
        if record is None:
            raise ApiError("results_not_ready", id=batch_id, status=b.status)
        chunks = surface.engine.store.iter_chunks(record.key, parts=record.parts)
        return StreamingResponse(chunks, media_type="application/jsonl", headers={"content-length": str(record.bytes)})

    return build_routes(
        surface,
        {
            "create_batch": create_batch,
            "batch_results": batch_results,
            **batch_handlers(surface, list_json),
        },
    )
