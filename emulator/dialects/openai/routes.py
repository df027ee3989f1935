"""The OpenAI dialect's routes: Files and Batches handlers.

Handlers are a few lines: authenticate, parse (wire body -> neutral command), call the model
layer (in a worker thread where it may stream S3 objects), serialize. Paths come from the
profile's operations, so Azure's `/openai/v1`, ScaiGrid's `/oai/v1` or any other base path
is the same code.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...http._common import build_routes, int_query, json_response, owner_of, query_of, read_json
from ...model.batches import CreateBatch, json_kind
from ...model.errors import ApiError
from ...model.records import InputRef
from .._base import Surface
from .._handlers import batch_handlers
from .serialize import file_json, list_json

__all__ = ["openai_routes", "parse_create"]

_MAX_FORM_PART = 1 << 20


def parse_create(surface: Surface, payload: Any) -> CreateBatch:
    """An OpenAI create body as a neutral command (400s for missing or mistyped fields)."""
    profile = surface.profile
    if not isinstance(payload, dict):
        raise ApiError("invalid_json_body")
    for name in profile.batches.create_required:
        if payload.get(name) is None:
            raise ApiError("missing_parameter", param=name)
    for name in ("input_file_id", "endpoint", "completion_window"):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError("invalid_type", param=name, expected="a string", got=json_kind(value))
    # Object-storage providers (Scaleway) take the input object's URL in input_file_id.
    by_url = profile.storage is not None and profile.storage.input_reference == "object_url"
    return CreateBatch(
        input=InputRef("url" if by_url else "file", str(payload.get("input_file_id"))),
        endpoint=str(payload.get("endpoint", "")),
        window=payload.get("completion_window"),
        metadata=payload.get("metadata"),
        output_expires_after=payload.get("output_expires_after"),
    )


def openai_routes(surface: Surface) -> list[Route]:
    """The provider routes of an OpenAI-dialect surface."""
    profile = surface.profile
    files = surface.files
    batches = surface.batches

    async def create_file(request: Request) -> Response:
        assert files is not None  # the route exists only where the profile has a Files API
        owner = owner_of(surface, request)
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
            name = upload.filename or "upload"
            record = files.create_now(
                owner, filename=name, purpose=purpose, fileobj=upload.file, size=size, expires_after=expires
            )
            if record is None:
                record = await run_in_threadpool(
                    files.create,
                    owner,
                    filename=name,
                    purpose=purpose,
                    fileobj=upload.file,
                    size=size,
                    expires_after=expires,
                )
        finally:
            await form.close()
        return json_response(file_json(record))

    async def list_files(request: Request) -> Response:
        assert files is not None
        owner = owner_of(surface, request)
        rules = profile.files
        limit = int_query(request, "limit", rules.list_default_limit, rules.list_max_limit)
        order = query_of(request).get("order", rules.list_default_order)
        if order not in ("asc", "desc"):
            raise ApiError("invalid_value", param="order", value=order, expected="'asc' or 'desc'")
        page, more = files.list(
            owner,
            purpose=query_of(request).get("purpose"),
            limit=limit,
            order=order,
            after=query_of(request).get("after"),
        )
        return json_response(list_json([file_json(f) for f in page], more, surface))

    async def retrieve_file(request: Request) -> Response:
        assert files is not None
        owner = owner_of(surface, request)
        return json_response(file_json(files.retrieve(request.path_params["file_id"], owner)))

    async def delete_file(request: Request) -> Response:
        assert files is not None
        owner = owner_of(surface, request)
        file_id = await run_in_threadpool(files.delete, request.path_params["file_id"], owner)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def file_content(request: Request) -> Response:
        assert files is not None
        owner = owner_of(surface, request)
        now = files.content_now(request.path_params["file_id"], owner)
        if now is not None:
            return Response(now[1], media_type="application/octet-stream")
        record, chunks = await run_in_threadpool(files.content, request.path_params["file_id"], owner)
        return StreamingResponse(
            chunks, media_type="application/octet-stream", headers={"content-length": str(record.bytes)}
        )

    async def create_batch(request: Request) -> Response:
        owner = owner_of(surface, request)
        cmd = parse_create(surface, await read_json(request))
        b = batches.create_now(owner, cmd)
        if b is None:
            b = await run_in_threadpool(batches.create, owner, cmd)
        return json_response(surface.batch_json(b, request))

    return build_routes(
        surface,
        {
            "create_file": create_file,
            "list_files": list_files,
            "retrieve_file": retrieve_file,
            "delete_file": delete_file,
            "file_content": file_content,
            "create_batch": create_batch,
            **batch_handlers(surface, list_json),
        },
    )
