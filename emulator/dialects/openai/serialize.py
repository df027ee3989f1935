"""The OpenAI dialect's wire shapes: File, Batch, list pages, result lines, error envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from schemas import Profile, RenderedError

from ...model import seams
from ...model.records import BatchRecord, FileRecord, Usage

if TYPE_CHECKING:
    from .._base import Surface

__all__ = ["OpenAILines", "batch_json", "error_body", "file_json", "list_json", "usage_json"]


def file_json(f: FileRecord) -> dict[str, Any]:
    """The OpenAI File object."""
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": f.created_at,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": f.status,
        "expires_at": f.expires_at,
        "status_details": None,
    }


def usage_json(u: Usage) -> dict[str, Any]:
    """The OpenAI BatchUsage shape."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def batch_json(surface: Surface, b: BatchRecord) -> dict[str, Any]:
    """The OpenAI Batch object: every field present, `null` where unset."""
    profile = surface.profile
    results = b.results
    stamps = b.stamps
    out: dict[str, Any] = {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "model": b.model,
        "errors": {"object": "list", "data": b.errors} if b.errors else None,
        "input_file_id": b.input.value,
        "completion_window": b.window,
        "status": b.status,
        "output_file_id": results.get("output"),
        "error_file_id": results.get("error"),
    }
    for field in _stamp_fields(profile):
        out[field] = stamps.get(field)
    out["expires_at"] = b.expires_at
    out["request_counts"] = {"total": b.total, "completed": b.completed, "failed": b.failed}
    out["usage"] = usage_json(b.usage) if profile.output.usage else None
    out["metadata"] = b.metadata
    mutations = surface.mutations
    if not mutations.active(WIRE_BATCH):
        return out
    return mutations.apply(WIRE_BATCH, out, batch=b, profile=profile, clock=surface.clock)


#: Per lifecycle (by identity), its timestamp fields in status order: a list page
#: serializes many batches, and profiles never change once loaded.
_stamps_of: dict[int, tuple[object, tuple[str, ...]]] = {}


def _stamp_fields(profile: Profile) -> tuple[str, ...]:
    life = profile.lifecycle
    cached = _stamps_of.get(id(life))
    if cached is None or cached[0] is not life:
        fields = tuple(f for f in (life.timestamps.get(s) for s in life.statuses) if f)
        cached = _stamps_of[id(life)] = (life, fields)
    return cached[1]


def list_json(data: list[Any], has_more: bool, surface: Surface, ids: list[str] | None = None) -> dict[str, Any]:
    """An OpenAI list page of `data` (objects, or bodies serialized already; then `ids`
    names them)."""
    if ids is None:
        ids = [item["id"] for item in data[:1] + data[-1:]]
    out: dict[str, Any] = {
        "object": "list",
        "data": data,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
        "has_more": has_more,
    }
    return surface.mutations.apply(WIRE_LIST, out)


def error_body(err: RenderedError) -> dict[str, Any]:
    """`{"error": {message, type, param, code}}`, all four keys always present."""
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


WIRE_BATCH = f"{seams.WIRE_BATCH}:openai"
WIRE_LIST = f"{seams.WIRE_LIST}:openai"
WIRE_ERROR = f"{seams.WIRE_ERROR}:openai"
RESULT_LINE_SHAPE = "openai.result_line_shape"


class OpenAILines:
    """`{id, custom_id, response: {status_code, request_id, body} | null, error: {code, message} | null}`."""

    def __init__(self, profile: Profile) -> None:
        self.line_prefix = profile.ids.output_line
        self.request_prefix = profile.ids.request

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A response line."""
        return orjson.dumps(
            {
                "id": self.line_prefix + key,
                "custom_id": custom_id,
                "response": {"status_code": status_code, "request_id": self.request_prefix + key, "body": body},
                "error": None,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A failure line."""
        return orjson.dumps(
            {
                "id": self.line_prefix + key,
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": message},
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
