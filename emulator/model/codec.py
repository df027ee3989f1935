"""Records <-> bytes, for the repository kept in the object store (`store_repository`).

- A `FileRecord` or a `BatchRecord` becomes one JSON object (orjson). What a record holds in
  this process only is left out: a batch's result buffers (`out_spool`, `err_spool`: their
  bytes are journalled as chunk objects by the store repository) and its line plan (`plan`,
  up to two 8-byte integers per request line: stored once, as its own object, when
  validation ends, because it never changes after that).
- An owner is `(API key, project)`. The key itself is never written to the bucket: it is
  stored as `sha256:<hex>` and mapped back, when read, to the configured or already seen key
  with that digest (`OwnerCodec`). A digest that matches no key this process knows stays a
  digest: the record is then owned by nobody who can authenticate here, which is what
  isolation asks for.
- `extra` keeps the JSON values only (it is a free-form bag that mutations write to).
- A plan is a JSON header line (source object, model, count, byte order), then the offsets
  and the lengths as raw 8-byte integers.

Every encoded record carries `"v": 1`; a reader refuses any other version rather than guess.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from typing import Any

import orjson

from .records import BatchRecord, FileRecord, InputObject, InputRef, LinePlan, Owner, Usage

__all__ = [
    "FORMAT_VERSION",
    "OwnerCodec",
    "decode_batch",
    "decode_file",
    "decode_plan",
    "encode_batch",
    "encode_file",
    "encode_plan",
]

#: The version of the stored record format.
FORMAT_VERSION = 1

_DIGEST = "sha256:"


class OwnerCodec:
    """Writes owners with their API key hashed, and reads them back to the key."""

    def __init__(self, keys: tuple[str, ...] | frozenset[str] = ()) -> None:
        self._known: dict[str, str] = {}
        for key in keys:
            self.encode((key, ""))

    def encode(self, owner: Owner) -> list[str]:
        """`[sha256:<hex of the key>, project]` (the digest of a key is remembered)."""
        key, project = owner
        digest = _DIGEST + hashlib.sha256(key.encode()).hexdigest()
        self._known.setdefault(digest, key)
        return [digest, project]

    def decode(self, value: Any) -> Owner:
        """The owner a stored value names: the key whose digest it holds, when known."""
        digest, project = str(value[0]), str(value[1])
        return (self._known.get(digest, digest), project)


def _json_only(extra: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in extra.items():
        try:
            orjson.dumps(value)
        except TypeError:
            continue
        kept[name] = value
    return kept


def encode_file(record: FileRecord, owners: OwnerCodec, seq: int) -> bytes:
    """A file record as JSON; `seq` orders files by creation across servers."""
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "id": record.id,
            "owner": owners.encode(record.owner),
            "filename": record.filename,
            "purpose": record.purpose,
            "bytes": record.bytes,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "key": record.key,
            "status": record.status,
            "parts": list(record.parts),
            "seq": seq,
        }
    )


def decode_file(data: bytes, owners: OwnerCodec) -> tuple[FileRecord, int]:
    """A file record and its creation sequence number."""
    raw = _checked(data)
    record = FileRecord(
        id=raw["id"],
        owner=owners.decode(raw["owner"]),
        filename=raw["filename"],
        purpose=raw["purpose"],
        bytes=int(raw["bytes"]),
        created_at=int(raw["created_at"]),
        expires_at=raw["expires_at"],
        key=raw["key"],
        status=raw["status"],
        parts=tuple(int(p) for p in raw["parts"]),
    )
    return record, int(raw["seq"])


def encode_batch(b: BatchRecord, owners: OwnerCodec, envelope: dict[str, Any]) -> bytes:
    """A batch record as JSON, with the repository's own fields (`envelope`: the journal of
    result chunks, the lease generation, ...) beside it under "state"."""
    return orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "id": b.id,
            "owner": owners.encode(b.owner),
            "endpoint": b.endpoint,
            "input": [b.input.kind, b.input.value],
            "window": b.window,
            "metadata": b.metadata,
            "created_at": b.created_at,
            "expires_at": b.expires_at,
            "status": b.status,
            "role": b.role,
            "output_expires_after": b.output_expires_after,
            "webhook_url": b.webhook_url,
            "seq": b.seq,
            "stamps": b.stamps,
            "entered": b.entered,
            "history": b.history,
            "total": b.total,
            "completed": b.completed,
            "failed": b.failed,
            "errors": b.errors,
            "results": b.results,
            "model": b.model,
            "usage": [b.usage.input_tokens, b.usage.output_tokens],
            "has_plan": b.plan is not None,
            "done": b.done,
            "extra": _json_only(b.extra),
            "state": envelope,
        }
    )


def decode_batch(data: bytes, owners: OwnerCodec) -> tuple[BatchRecord, bool, dict[str, Any]]:
    """A batch record (with empty result buffers and no plan), whether it has a stored plan,
    and the repository's own fields."""
    raw = _checked(data)
    kind, value = raw["input"]
    record = BatchRecord(
        id=raw["id"],
        owner=owners.decode(raw["owner"]),
        endpoint=raw["endpoint"],
        input=InputRef(kind, value),
        window=raw["window"],
        metadata=raw["metadata"],
        created_at=int(raw["created_at"]),
        expires_at=raw["expires_at"],
        status=raw["status"],
        role=raw["role"],
        output_expires_after=raw["output_expires_after"],
        webhook_url=raw["webhook_url"],
        seq=int(raw["seq"]),
        stamps={k: int(v) for k, v in raw["stamps"].items()},
        entered={k: float(v) for k, v in raw["entered"].items()},
        history=list(raw["history"]),
        total=int(raw["total"]),
        completed=int(raw["completed"]),
        failed=int(raw["failed"]),
        errors=raw["errors"],
        results=dict(raw["results"]),
        model=raw["model"],
        usage=Usage(int(raw["usage"][0]), int(raw["usage"][1])),
        done=int(raw["done"]),
        extra=dict(raw["extra"]),
    )
    return record, bool(raw["has_plan"]), dict(raw["state"])


def encode_plan(plan: LinePlan) -> bytes:
    """A line plan: a JSON header line, then the offsets and lengths as raw integers."""
    src = plan.source
    header = orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "source": [src.key, list(src.parts), src.bucket, src.size, src.url_form],
            "model": plan.model,
            "count": len(plan),
            "itemsize": plan.offsets.itemsize,
            "byteorder": sys.byteorder,
        }
    )
    return header + b"\n" + plan.offsets.tobytes() + plan.lengths.tobytes()


def decode_plan(data: bytes) -> LinePlan:
    """The line plan `encode_plan` wrote."""
    head, _, body = data.partition(b"\n")
    raw = _checked(head)
    key, parts, bucket, size, url_form = raw["source"]
    count = int(raw["count"])
    width = count * int(raw["itemsize"])
    offsets, lengths = array("q"), array("q")
    if int(raw["itemsize"]) != offsets.itemsize or len(body) != 2 * width:
        raise ValueError(f"stored line plan: expected {count} pairs of {offsets.itemsize}-byte integers")
    offsets.frombytes(body[:width])
    lengths.frombytes(body[width:])
    if raw["byteorder"] != sys.byteorder:
        offsets.byteswap()
        lengths.byteswap()
    source = InputObject(key, tuple(int(p) for p in parts), bucket, int(size), url_form)
    return LinePlan(source, offsets, lengths, raw["model"])


def _checked(data: bytes) -> dict[str, Any]:
    raw = orjson.loads(data)
    if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
        version = raw.get("v") if isinstance(raw, dict) else None
        raise ValueError(f"stored record of format version {version!r}; this batchconf reads version {FORMAT_VERSION}")
    return raw
