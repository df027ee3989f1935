"""The OpenAI dialect's routes: Files and Batches handlers and their wire shapes.

Handlers are a few lines: parse, call the model layer (in a worker thread: it may stream
S3 objects), serialize. Paths come from the profile's operations, so Azure's `/openai/v1`
or any other base path is the same code.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .._core import Core
from .._errors import ApiError
from .._records import BatchRecord, FileRecord
from ._common import json_response, owner_of, read_json

__all__ = ["batch_json", "file_json", "openai_routes"]

_MAX_FORM_PART = 1 << 20


def file_json(core: Core, f: FileRecord) -> dict[str, Any]:
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


def batch_json(core: Core, b: BatchRecord) -> dict[str, Any]:
    """The OpenAI Batch object: every field present, `null` where unset."""
    life = core.profile.lifecycle
    mut = core.mutations
    status = b.status
    completed, failed, total = b.completed, b.failed, b.total
    stamps = dict(b.stamps)
    terminal = b.role in ("completed", "failed", "expired", "cancelled")
    if mut.on("status_goes_backwards") and terminal:
        if b.extra.get("reported_terminal"):
            status = life.status("in_progress") or status
        b.extra["reported_terminal"] = True
    if mut.on("status_outside_enum") and b.role == "in_progress":
        status = "running"
    if mut.on("timestamp_changes") and "in_progress_at" in stamps:
        stamps["in_progress_at"] = int(core.clock.now()) + len(b.history) + b.extra.setdefault("polls", 0)
        b.extra["polls"] += 1
    if mut.on("timestamps_out_of_order") and "completed_at" in stamps and "finalizing_at" in stamps:
        stamps["completed_at"] = stamps["finalizing_at"] - 1
    if terminal and mut.on("counts_dont_add_up"):
        completed += 1
    if terminal and mut.on("counts_decrease"):
        completed = 0
    if mut.on("counts_disagree_with_files"):
        failed = 0
    out: dict[str, Any] = {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "model": b.model,
        "errors": {"object": "list", "data": b.errors} if b.errors else None,
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
    }
    for native in life.statuses:
        field = life.timestamps.get(native)
        if field:
            out[field] = stamps.get(field)
    out["expires_at"] = b.expires_at
    out["request_counts"] = {"total": total, "completed": completed, "failed": failed}
    out["usage"] = b.usage.to_json() if core.profile.output.usage else None
    out["metadata"] = b.metadata
    if mut.on("batch_field_wrong_type"):
        out["created_at"] = str(out.get("created_at"))
    return out


def _list_json(data: list[dict[str, Any]], has_more: bool, omit_has_more: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
    if omit_has_more:
        del out["has_more"]
    return out


def _int_query(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("invalid_value", param=name, value=raw, expected=f"an integer between 1 and {maximum}") from None
    if not 1 <= value <= maximum:
        raise ApiError("invalid_value", param=name, value=raw, expected=f"an integer between 1 and {maximum}")
    return value


def openai_routes(core: Core) -> list[Route]:
    """The provider routes of an OpenAI-dialect profile."""
    profile = core.profile

    async def create_file(request: Request) -> Response:
        owner = owner_of(core, request)
        limit = profile.limits.max_upload_bytes
        declared = request.headers.get("content-length")
        if limit and declared and declared.isdigit() and int(declared) > limit + _MAX_FORM_PART:
            raise ApiError("upload_too_large", max=limit)
        try:
            form = await request.form(max_files=1, max_fields=16, max_part_size=_MAX_FORM_PART)
        except Exception as exc:  # malformed multipart: a client error, never a 500
            raise ApiError(
                "invalid_value", param="file", value="(body)", expected=f"multipart/form-data ({exc})"
            ) from None
        try:
            upload = form.get("file")
            purpose = form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise ApiError("missing_parameter", param="file")
            if not isinstance(purpose, str) or not purpose:
                raise ApiError("missing_parameter", param="purpose")
            expires: tuple[str, int] | None = None
            anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
            if anchor is not None or seconds is not None:
                if not isinstance(seconds, str) or not seconds.strip().isdigit():
                    raise ApiError(
                        "invalid_value", param="expires_after[seconds]", value=seconds, expected="an integer"
                    )
                expires = (str(anchor), int(seconds))
            upload.file.seek(0, 2)
            size = upload.file.tell()
            record = await run_in_threadpool(
                core.files.create,
                owner,
                filename=upload.filename or "upload",
                purpose=purpose,
                fileobj=upload.file,
                size=size,
                expires_after=expires,
            )
        finally:
            await form.close()
        return json_response(file_json(core, record))

    async def list_files(request: Request) -> Response:
        owner = owner_of(core, request)
        rules = profile.files
        limit = _int_query(request, "limit", rules.list_default_limit, rules.list_max_limit)
        order = request.query_params.get("order", rules.list_default_order)
        if order not in ("asc", "desc"):
            raise ApiError("invalid_value", param="order", value=order, expected="'asc' or 'desc'")
        page, more = core.files.list(
            owner,
            purpose=request.query_params.get("purpose"),
            limit=limit,
            order=order,
            after=request.query_params.get("after"),
        )
        return json_response(_list_json([file_json(core, f) for f in page], more))

    async def retrieve_file(request: Request) -> Response:
        owner = owner_of(core, request)
        return json_response(file_json(core, core.files.retrieve(request.path_params["file_id"], owner)))

    async def delete_file(request: Request) -> Response:
        owner = owner_of(core, request)
        file_id = await run_in_threadpool(core.files.delete, request.path_params["file_id"], owner)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def file_content(request: Request) -> Response:
        owner = owner_of(core, request)
        record, chunks = await run_in_threadpool(core.files.content, request.path_params["file_id"], owner)
        return StreamingResponse(
            chunks,
            media_type="application/octet-stream",
            headers={"content-length": str(record.bytes)},
        )

    async def create_batch(request: Request) -> Response:
        owner = owner_of(core, request)
        payload = await read_json(request)
        b = await run_in_threadpool(core.batches.create, owner, payload)
        return json_response(batch_json(core, b))

    async def retrieve_batch(request: Request) -> Response:
        owner = owner_of(core, request)
        batch_id = request.path_params["batch_id"]
        try:
            b = await run_in_threadpool(core.batches.retrieve, batch_id, owner)
        except ApiError as exc:
            if exc.name == "batch_not_found" and core.mutations.on("not_found_returns_200"):
                return json_response({})
            raise
        return json_response(batch_json(core, b))

    async def list_batches(request: Request) -> Response:
        owner = owner_of(core, request)
        rules = profile.batches
        limit = _int_query(request, "limit", rules.list_default_limit, rules.list_max_limit)
        page, more = await run_in_threadpool(
            core.batches.list, owner, limit=limit, after=request.query_params.get("after")
        )
        data = [batch_json(core, b) for b in page]
        return json_response(_list_json(data, more, core.mutations.on("list_missing_has_more")))

    async def cancel_batch(request: Request) -> Response:
        owner = owner_of(core, request)
        b = await run_in_threadpool(core.batches.cancel, request.path_params["batch_id"], owner)
        return json_response(batch_json(core, b))

    handlers = {
        "create_file": create_file,
        "list_files": list_files,
        "retrieve_file": retrieve_file,
        "delete_file": delete_file,
        "file_content": file_content,
        "create_batch": create_batch,
        "list_batches": list_batches,
        "retrieve_batch": retrieve_batch,
        "cancel_batch": cancel_batch,
    }
    routes: list[Route] = []
    # Literal paths before templated ones so `/files/{id}` never shadows a longer route.
    for op in sorted(profile.http.operations, key=lambda o: profile.http.operations[o][1].count("{")):
        route = profile.http.route(op)
        if route is None or op not in handlers:
            continue
        method, path = route
        routes.append(Route(path, handlers[op], methods=[method], name=op))
    return routes
