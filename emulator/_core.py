"""The emulator's model layer: files and batches services over one profile, clock and store.

No HTTP here: operations take plain values and raise `ApiError` by catalogue name. All
operations run under one re-entrant lock, so the HTTP layer may call them from threads.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator
from typing import IO, Any

import orjson

from schemas import Profile

from ._backend import MockBackend, ModelBackend
from ._clock import Clock, VirtualClock
from ._engine import Engine
from ._errors import ApiError
from ._faults import FaultSet
from ._ids import IdFactory
from ._lines import LineWriter, line_writer
from ._mutations import Mutations
from ._records import BatchRecord, FileRecord, Owner
from ._storage import ObjectStore
from ._timing import TimingModel

__all__ = ["BatchService", "Core", "FileService"]

_TERMINAL_ROLES = frozenset({"completed", "failed", "expired", "cancelled"})
_SNIFF_BYTES = 1 << 16


class Core:
    """Everything one emulated provider holds: profile, clock, storage, records, engine."""

    def __init__(
        self,
        profile: Profile,
        *,
        api_keys: tuple[str, ...],
        clock: Clock | None = None,
        timing: TimingModel | None = None,
        store: ObjectStore | None = None,
        backend: ModelBackend | None = None,
        seed: int | None = None,
    ) -> None:
        self.profile = profile
        self.api_keys = frozenset(api_keys)
        self.clock: Clock = clock or VirtualClock()
        self.timing = timing or TimingModel()
        self.store = store or ObjectStore()
        self.backend: ModelBackend = backend or MockBackend()
        self.seed = seed if seed is not None else 0
        self.ids = IdFactory(seed)
        self.faults = FaultSet()
        self.mutations = Mutations()
        self.lock = threading.RLock()
        self.files = FileService(self)
        self.batches = BatchService(self)
        self.engine = Engine(self)

    @property
    def lines(self) -> LineWriter:
        """The result-line writer of this dialect (mutations may bend its output)."""
        out = self.profile.output
        return line_writer(
            out.line_format,
            self.profile.ids.output_line,
            self.profile.ids.request,
            bad_shape=self.mutations.on("output_line_bad_shape"),
        )

    def authenticate(self, key: str | None, project: str | None) -> Owner:
        """The owner behind a key; raises the dialect's 401 errors."""
        if self.mutations.on("auth_not_enforced"):
            return (key or "anonymous", project or "")
        if not key:
            raise ApiError("missing_auth")
        if key not in self.api_keys:
            raise ApiError("unauthorized")
        return (key, project or "")

    def owns(self, owner: Owner, obj_owner: Owner) -> bool:
        """Isolation: each key (and project) sees only its own objects."""
        return owner == obj_owner or self.mutations.on("cross_key_visibility")

    def reset(self) -> None:
        """Forget every file and batch, fault and mutation (the clock keeps its time)."""
        with self.lock:
            self.batches.clear()
            self.files.clear()
            self.faults.clear()
            self.mutations.clear()
            self.store.clear()

    def close(self) -> None:
        """Release storage."""
        with self.lock:
            self.batches.clear()
            self.store.close()


def _page(items: list[Any], after: str | None, limit: int, ignore_after: bool = False) -> tuple[list[Any], bool]:
    if after is not None and not ignore_after:
        ids = [item.id for item in items]
        if after not in ids:
            return [], False
        items = items[ids.index(after) + 1 :]
    return items[:limit], len(items) > limit


class FileService:
    """The Files API: upload, list, retrieve, delete, content; and result files."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._files: dict[str, FileRecord] = {}

    def clear(self) -> None:
        """Forget every file record."""
        self._files.clear()

    def get_record(self, file_id: str, owner: Owner) -> FileRecord | None:
        """The file if it exists and `owner` may see it."""
        record = self._files.get(file_id)
        if record is None or not self.core.owns(owner, record.owner):
            return None
        return record

    def retrieve(self, file_id: str, owner: Owner) -> FileRecord:
        """The file, or the dialect's 404."""
        with self.core.lock:
            record = self.get_record(file_id, owner)
            if record is None:
                raise ApiError("file_not_found", id=file_id)
            return record

    def create(
        self,
        owner: Owner,
        *,
        filename: str,
        purpose: str,
        fileobj: IO[bytes],
        size: int,
        expires_after: tuple[str, int] | None = None,
    ) -> FileRecord:
        """Store an uploaded file after the profile's upload checks."""
        core = self.core
        rules = core.profile.files
        limits = core.profile.limits
        if purpose not in rules.upload_purposes:
            raise ApiError(
                "invalid_value", param="purpose", value=purpose, expected="one of " + ", ".join(rules.upload_purposes)
            )
        if limits.max_upload_bytes and size > limits.max_upload_bytes:
            raise ApiError("upload_too_large", max=limits.max_upload_bytes)
        is_batch = purpose == rules.batch_purpose
        if is_batch:
            if limits.enforced_at.get("max_input_bytes") == "upload" and size > limits.max_input_bytes:
                raise ApiError("file_too_large", max=limits.max_input_bytes)
            if not core.mutations.on("accept_non_jsonl_upload") and not self._looks_like_jsonl(filename, fileobj):
                raise ApiError("invalid_file_format")
        now = int(core.clock.now())
        expires_at: int | None = None
        if expires_after is not None:
            anchor, seconds = expires_after
            if anchor != "created_at":
                raise ApiError("invalid_value", param="expires_after[anchor]", value=anchor, expected="'created_at'")
            if not rules.expiry_seconds_min <= seconds <= rules.expiry_seconds_max:
                raise ApiError(
                    "invalid_value",
                    param="expires_after[seconds]",
                    value=seconds,
                    expected=f"an integer between {rules.expiry_seconds_min} and {rules.expiry_seconds_max}",
                )
            expires_at = now + seconds
        elif is_batch and rules.default_expiry_seconds:
            expires_at = now + rules.default_expiry_seconds
        file_id = core.ids.make(core.profile.ids.file)
        key = f"files/{file_id}"
        fileobj.seek(0)
        parts = core.store.put_file(
            key, fileobj, "application/jsonl" if is_batch else "application/octet-stream", size, split=True
        )
        record = FileRecord(file_id, owner, filename, purpose, size, now, expires_at, key, rules.upload_status, parts)
        with core.lock:
            self._files[file_id] = record
        return record

    def _looks_like_jsonl(self, filename: str, fileobj: IO[bytes]) -> bool:
        rules = self.core.profile.files
        if rules.batch_file_extension and not filename.lower().endswith(rules.batch_file_extension):
            return False
        if not rules.check_first_line_is_json:
            return True
        fileobj.seek(0)
        head = fileobj.read(_SNIFF_BYTES)
        fileobj.seek(0)
        if not head.strip():
            # Nothing to judge: an empty file is refused at validation (too few requests).
            return True
        # A BOM does not make a file non-JSONL: validation reports it as invalid_json_line.
        first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip()
        if not first:
            return False
        if b"\n" not in head and len(head) == _SNIFF_BYTES:
            return first.startswith(b"{")
        try:
            return isinstance(orjson.loads(first), dict)
        except orjson.JSONDecodeError:
            return False

    def list(
        self, owner: Owner, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> tuple[list[FileRecord], bool]:
        """A page of the owner's files."""
        with self.core.lock:
            items = [f for f in self._files.values() if self.core.owns(owner, f.owner)]
        if purpose:
            items = [f for f in items if f.purpose == purpose]
        # Insertion order is creation order; ids break created_at ties deterministically.
        if order == "desc":
            items.reverse()
        return _page(items, after, limit)

    def delete(self, file_id: str, owner: Owner) -> str:
        """Delete a file (its bytes too); returns its id."""
        with self.core.lock:
            record = self.retrieve(file_id, owner)
            del self._files[record.id]
        self.core.store.delete(record.key, record.parts)
        return record.id

    def content(self, file_id: str, owner: Owner) -> tuple[FileRecord, Iterator[bytes]]:
        """The file and a stream of its bytes."""
        record = self.retrieve(file_id, owner)
        if record.purpose in self.core.profile.files.not_downloadable_purposes:
            raise ApiError("download_not_allowed", purpose=record.purpose)
        return record, self.core.store.iter_chunks(record.key, parts=record.parts)

    def store_result(self, b: BatchRecord, spool: IO[bytes], template: str, stamp: int) -> str:
        """Store a batch's result buffer as a file with the output purpose; returns its id."""
        core = self.core
        file_id = core.ids.make(core.profile.ids.file)
        key = f"files/{file_id}"
        size = spool.tell()
        spool.seek(0)
        parts = core.store.put_file(key, spool, "application/jsonl", size, split=True)
        expires_at = stamp + (b.output_expires_after or core.profile.files.default_expiry_seconds) or None
        name = template.format(batch_id=b.id, filename=b.input_file_id, stem=b.input_file_id)
        self._files[file_id] = FileRecord(
            file_id, b.owner, name, core.profile.files.output_purpose, size, stamp, expires_at, key, "processed", parts
        )
        return file_id


class BatchService:
    """The Batches API: create, retrieve (which may move the batch), list, cancel."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._batches: dict[str, BatchRecord] = {}
        self._owned: dict[Owner, list[BatchRecord]] = {}
        self._owned_seq: dict[Owner, list[int]] = {}
        self._seq = itertools.count()

    def clear(self) -> None:
        """Forget every batch."""
        for b in self._batches.values():
            b.close_spools()
        self._batches.clear()
        self._owned.clear()
        self._owned_seq.clear()

    def _get(self, batch_id: str, owner: Owner) -> BatchRecord:
        b = self._batches.get(batch_id)
        if b is None or not self.core.owns(owner, b.owner):
            raise ApiError("batch_not_found", id=batch_id)
        return b

    def get_any(self, batch_id: str) -> BatchRecord | None:
        """A batch by id regardless of owner (admin routes)."""
        return self._batches.get(batch_id)

    def create(self, owner: Owner, payload: Any) -> BatchRecord:
        """Validate create parameters (400s) and make a `validating` batch."""
        core = self.core
        profile = core.profile
        if not isinstance(payload, dict):
            raise ApiError("invalid_json_body")
        for name in profile.batches.create_required:
            if payload.get(name) is None:
                raise ApiError("missing_parameter", param=name)
        for name in ("input_file_id", "endpoint", "completion_window"):
            value = payload.get(name)
            if value is not None and not isinstance(value, str):
                raise ApiError("invalid_type", param=name, expected="a string", got=_json_kind(value))
        if payload.get("completion_window") is None and profile.batches.default_window:
            payload = {**payload, "completion_window": profile.batches.default_window}
        endpoint = str(payload.get("endpoint", ""))
        if endpoint not in profile.endpoints:
            raise ApiError("invalid_endpoint", value=endpoint, supported=_quoted(profile.endpoints))
        window = str(payload.get("completion_window", ""))
        if window not in profile.windows:
            raise ApiError("invalid_completion_window", value=window, supported=_quoted(profile.windows))
        metadata = self._metadata(payload.get("metadata"))
        output_expires_after = self._output_expiry(payload.get("output_expires_after"))
        input_file_id = str(payload.get("input_file_id"))
        with core.lock:
            record = core.files.get_record(input_file_id, owner)
            limits = profile.limits
            if record is None and profile.batches.missing_input_file == "reject_create":
                raise ApiError("file_not_found", id=input_file_id)
            if (
                record is not None
                and limits.max_input_bytes
                and limits.enforced_at.get("max_input_bytes") == "create"
                and record.bytes > limits.max_input_bytes
            ):
                raise ApiError("file_too_large", max=limits.max_input_bytes)
            now = core.clock.now()
            created = int(now)
            expires_at: int | None = created + profile.windows[window]
            if core.mutations.on("wrong_expires_at") and expires_at is not None:
                expires_at += 3600
            batch_id = core.ids.make(profile.ids.batch)
            initial = profile.lifecycle.initial
            b = BatchRecord(
                id=batch_id,
                owner=owner,
                endpoint=endpoint,
                input_file_id=input_file_id,
                completion_window=window,
                metadata=metadata,
                created_at=created,
                expires_at=expires_at,
                status=initial,
                role="validating",
                output_expires_after=output_expires_after,
            )
            b.extra["hex"] = core.ids.hex(12)
            b.extra["seq"] = next(self._seq)
            b.entered["validating"] = now
            stamp_field = profile.lifecycle.timestamps.get(initial)
            if stamp_field:
                b.stamps[stamp_field] = created
            b.history.append(initial)
            self._batches[batch_id] = b
            self._owned.setdefault(owner, []).append(b)
            self._owned_seq.setdefault(owner, []).append(b.extra["seq"])
            return b

    def _metadata(self, value: Any) -> dict[str, str] | None:
        limits = self.core.profile.limits
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError("invalid_type", param="metadata", expected="an object", got=_json_kind(value))
        if not self.core.profile.has("metadata"):
            # The provider documents no metadata: it is neither limited nor echoed back.
            return None
        if len(value) > limits.metadata_max_pairs:
            raise ApiError("metadata_too_many", count=len(value), max=limits.metadata_max_pairs)
        for key, item in value.items():
            if len(key) > limits.metadata_key_max_chars:
                raise ApiError("metadata_key_too_long", key=key, max=limits.metadata_key_max_chars, length=len(key))
            if not isinstance(item, str):
                raise ApiError("invalid_type", param=f"metadata.{key}", expected="a string", got=_json_kind(item))
            if len(item) > limits.metadata_value_max_chars:
                raise ApiError(
                    "metadata_value_too_long", key=key, max=limits.metadata_value_max_chars, length=len(item)
                )
        return dict(value)

    def _output_expiry(self, value: Any) -> int | None:
        if value is None:
            return None
        rules = self.core.profile.files
        if not isinstance(value, dict):
            raise ApiError("invalid_type", param="output_expires_after", expected="an object", got=_json_kind(value))
        if value.get("anchor") != "created_at":
            raise ApiError(
                "invalid_value", param="output_expires_after.anchor", value=value.get("anchor"), expected="'created_at'"
            )
        seconds = value.get("seconds")
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not (rules.expiry_seconds_min <= seconds <= rules.expiry_seconds_max)
        ):
            raise ApiError(
                "invalid_value",
                param="output_expires_after.seconds",
                value=seconds,
                expected=f"an integer between {rules.expiry_seconds_min} and {rules.expiry_seconds_max}",
            )
        return seconds

    def retrieve(self, batch_id: str, owner: Owner, *, poll: bool = True) -> BatchRecord:
        """The batch, caught up to the clock (and moved one status under per-poll progression)."""
        with self.core.lock:
            b = self._get(batch_id, owner)
            if poll:
                self.core.engine.on_poll(b)
            else:
                self.core.engine.catch_up(b)
            return b

    def list(self, owner: Owner, *, limit: int, after: str | None) -> tuple[list[BatchRecord], bool]:
        """A page of the owner's batches, newest first, each caught up to the clock."""
        core = self.core
        with core.lock:
            if core.mutations.on("cross_key_visibility"):
                items = list(self._batches.values())
                seqs = [b.extra["seq"] for b in items]
            else:
                # Per-owner lists in creation order: a page costs O(limit + log n), not O(n).
                items = self._owned.get(owner, [])
                seqs = self._owned_seq.get(owner, [])
            desc = core.profile.batches.list_order == "desc"
            cursor: int | None = None
            if after is not None and not core.mutations.on("list_ignores_after"):
                anchor = self._batches.get(after)
                if anchor is None or not core.owns(owner, anchor.owner):
                    return [], False
                cursor = bisect.bisect_left(seqs, anchor.extra["seq"])
            if desc:
                end = len(items) if cursor is None else cursor
                page = items[max(0, end - limit) : end][::-1]
                more = end - limit > 0
            else:
                start = 0 if cursor is None else cursor + 1
                page = items[start : start + limit]
                more = start + limit < len(items)
            for b in page:
                self.core.engine.catch_up(b)
            return page, more

    def cancel(self, batch_id: str, owner: Owner) -> BatchRecord:
        """Start cancelling; the dialect's 409 for a batch that can no longer be cancelled."""
        core = self.core
        with core.lock:
            b = self._get(batch_id, owner)
            core.engine.catch_up(b)
            life = core.profile.lifecycle
            if b.status in life.cancel_idempotent:
                return b
            if b.status not in life.cancellable:
                if core.mutations.on("cancel_completed_accepted"):
                    return b
                if core.mutations.on("leave_terminal_state") and life.status("cancelling"):
                    core.engine._force(b, "cancelling", core.clock.now())
                    return b
                raise ApiError("cancel_terminal", status=b.status)
            core.engine.cancel(b)
            return b

    def step(self, batch_id: str, lines: int | None = None) -> BatchRecord:
        """Admin: move a batch one status, or process `lines` more lines."""
        with self.core.lock:
            b = self._batches.get(batch_id)
            if b is None:
                raise ApiError("batch_not_found", id=batch_id)
            self.core.engine.step(b, lines)
            return b


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _quoted(values: Any) -> str:
    items = [f"'{v}'" for v in values]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]
