"""ScaiGrid's native wire shapes: the batch, list pages, result lines, events, the envelope.

The provider document names the statuses, `failed_count`, `results_url` and the result
line; the other field names are this project's reading, recorded in the scaigrid profile
as inferred (its samples were not captured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from schemas import RenderedError

from ...model import seams
from ...model.records import BatchRecord

if TYPE_CHECKING:
    from .._base import Surface

__all__ = ["WIRE_BATCH", "WIRE_ERROR", "WIRE_LIST", "ScaiGridLines", "batch_json", "error_body", "list_json"]

WIRE_BATCH = f"{seams.WIRE_BATCH}:scaigrid"
WIRE_LIST = f"{seams.WIRE_LIST}:scaigrid"
WIRE_ERROR = f"{seams.WIRE_ERROR}:scaigrid"


def results_url(surface: Surface, b: BatchRecord, base_url: str) -> str | None:
    """Where the batch's results file is served, once it has one."""
    if "results" not in b.results:
        return None
    route = surface.profile.http.route("batch_results")
    if route is None:
        return None
    return base_url + route[1].format(batch_id=b.id)


def batch_json(surface: Surface, b: BatchRecord, base_url: str) -> dict[str, Any]:
    """The ScaiGrid batch object."""
    out: dict[str, Any] = {
        "id": b.id,
        "object": "batch",
        "status": b.status,
        "endpoint_completion_window": b.window,
        "input_file_url": b.input.display,
        "webhook_url": b.webhook_url,
        "total_count": b.total,
        "completed_count": b.completed,
        "failed_count": b.failed,
        "results_url": results_url(surface, b, base_url),
        "errors": b.errors or None,
        "created_at": b.created_at,
        "expires_at": b.expires_at,
    }
    return surface.mutations.apply(WIRE_BATCH, out, batch=b, profile=surface.profile, clock=surface.clock)


def list_json(data: list[Any], has_more: bool, surface: Surface, ids: list[str] | None = None) -> dict[str, Any]:
    """A list page: newest first (`ids` are not part of it)."""
    return surface.mutations.apply(WIRE_LIST, {"object": "list", "data": data, "has_more": has_more})


def error_body(err: RenderedError) -> dict[str, Any]:
    """`{"error": {code, message, param}}`."""
    return {"error": {"code": err.code, "message": err.message, "param": err.param}}


def event_json(surface: Surface, b: BatchRecord, event_id: str, event_type: str, created_at: int) -> dict[str, Any]:
    """A webhook event: `{id, type, created_at, data: <batch>}`."""
    return {"id": event_id, "type": event_type, "created_at": created_at, "data": surface.batch_json(b)}


class ScaiGridLines:
    """`{custom_id, status: "ok", response}` or `{custom_id, status: "error", error: {code, message}}`."""

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A response line; HTTP errors become `status: error` with the body's message."""
        if 200 <= status_code < 300:
            return orjson.dumps(
                {"custom_id": custom_id, "status": "ok", "response": body}, option=orjson.OPT_APPEND_NEWLINE
            )
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else None
        return self.failure(key, custom_id, f"http_{status_code}", str(message or f"HTTP {status_code}"))

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A failure line."""
        return orjson.dumps(
            {"custom_id": custom_id, "status": "error", "error": {"code": code, "message": message}},
            option=orjson.OPT_APPEND_NEWLINE,
        )
