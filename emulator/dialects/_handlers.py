"""Batch handlers that read the same in every dialect: retrieve, list, cancel.

Each dialect brings its own create (its parser) and list page shape; the rest is
authenticate, call the model layer, serialize. The model layer answers at once where that
reads no storage (`retrieve_now`, `list_now`: a finished batch in memory); otherwise the
call goes to a worker thread, so that storage or a batch being processed never blocks the
event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .._mutations import Mutation
from ..http._common import Handler, int_query, json_response, owner_of, query_of
from ..model.records import BatchRecord
from ._base import Surface

__all__ = ["ListPage", "batch_handlers", "status_goes_backwards"]

#: (batch bodies, has_more, surface, the batches' ids) -> the dialect's list page.
ListPage = Callable[[list[Any], bool, Surface, list[str]], dict[str, Any]]


def batch_handlers(surface: Surface, list_page: ListPage) -> dict[str, Handler]:
    """`retrieve_batch`, `list_batches` and `cancel_batch` for `surface`."""
    batches = surface.batches
    rules = surface.profile.batches

    async def retrieve_batch(request: Request) -> Response:
        owner = owner_of(surface, request)
        batch_id = request.path_params["batch_id"]
        b = batches.retrieve_now(batch_id, owner)
        if b is None:
            b = await run_in_threadpool(batches.retrieve, batch_id, owner)
        return json_response(surface.batch_body(b, surface.base_url(request)))

    async def list_batches(request: Request) -> Response:
        owner = owner_of(surface, request)
        limit = int_query(request, "limit", rules.list_default_limit, rules.list_max_limit)
        after = query_of(request).get("after")
        got = batches.list_now(owner, limit=limit, after=after)
        if got is None:
            got = await run_in_threadpool(batches.list, owner, limit=limit, after=after)
        page, more = got
        bodies = surface.batch_bodies(page, surface.base_url(request))
        return json_response(list_page(bodies, more, surface, [b.id for b in page]))

    async def cancel_batch(request: Request) -> Response:
        owner = owner_of(surface, request)
        b = await run_in_threadpool(batches.cancel, request.path_params["batch_id"], owner)
        return json_response(surface.batch_json(b, request))

    return {"retrieve_batch": retrieve_batch, "list_batches": list_batches, "cancel_batch": cancel_batch}


def status_goes_backwards(point: str) -> Mutation:
    """A finished batch reports its in-progress status again on a later poll (any dialect
    whose wire names the status `status`)."""

    def bend(out: dict[str, Any], *, batch: BatchRecord, profile: Any, **_: Any) -> dict[str, Any]:
        if batch.terminal:
            if batch.extra.get("reported_terminal"):
                out["status"] = profile.lifecycle.status("in_progress") or out["status"]
            batch.extra["reported_terminal"] = True
        return out

    return Mutation(
        "status_goes_backwards", "a finished batch reports its running status again on a later poll", point, bend
    )
