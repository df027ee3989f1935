"""The Files API of the model layer: upload, list, retrieve, delete, content.

No HTTP here: operations take plain values and raise `ApiError` by catalogue name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import IO

import orjson

from schemas import Profile

from .._clock import Clock
from .._ids import IdFactory
from .._mutations import Mutations
from .._storage import ObjectStore
from . import seams
from .access import Access
from .errors import ApiError
from .records import FileRecord, Owner
from .repository import MemoryRepository, Repository

__all__ = ["FileService", "page"]

_SNIFF_BYTES = 1 << 16


def page(items: list[FileRecord], after: str | None, limit: int) -> tuple[list[FileRecord], bool]:
    """The items after the one with id `after` (none if it is unknown), at most `limit`."""
    if after is not None:
        ids = [item.id for item in items]
        if after not in ids:
            return [], False
        items = items[ids.index(after) + 1 :]
    return items[:limit], len(items) > limit


class FileService:
    """Files of one provider surface, kept in `repo`, their bytes in `store`."""

    def __init__(
        self,
        profile: Profile,
        *,
        repo: Repository,
        store: ObjectStore,
        ids: IdFactory,
        clock: Clock,
        access: Access,
        mutations: Mutations,
        lock: threading.RLock,
    ) -> None:
        self.profile = profile
        self.repo = repo
        self.store = store
        self.ids = ids
        self.clock = clock
        self.access = access
        self.mutations = mutations
        self.lock = lock
        # Records in this process's memory: `content_now` may answer on the event loop.
        self._local = isinstance(repo, MemoryRepository)

    def get_record(self, file_id: str, owner: Owner) -> FileRecord | None:
        """The file if it exists and `owner` may see it."""
        record = self.repo.file(file_id)
        if record is None or not self.access.owns(owner, record.owner):
            return None
        return record

    def retrieve(self, file_id: str, owner: Owner) -> FileRecord:
        """The file, or the dialect's 404."""
        with self.lock:
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
        rules = self.profile.files
        limits = self.profile.limits
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
            if self.mutations.apply(seams.UPLOAD_JSONL_CHECK, True) and not self._looks_like_jsonl(filename, fileobj):
                raise ApiError("invalid_file_format")
        now = int(self.clock.now())
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
        file_id = self.ids.make(self.profile.ids.file)
        key = f"files/{file_id}"
        fileobj.seek(0)
        parts = self.store.put_file(
            key, fileobj, "application/jsonl" if is_batch else "application/octet-stream", size, split=True
        )
        record = FileRecord(file_id, owner, filename, purpose, size, now, expires_at, key, rules.upload_status, parts)
        with self.lock:
            self.repo.add_file(record)
        return record

    def create_now(
        self,
        owner: Owner,
        *,
        filename: str,
        purpose: str,
        fileobj: IO[bytes],
        size: int,
        expires_after: tuple[str, int] | None = None,
    ) -> FileRecord | None:
        """`create(...)` when it can be done at once: records in memory, the provider's
        lock free, and a file the store handles at once (`ObjectStore.at_once`: small, in
        this process). None: call `create` (a worker thread). Raises what `create` raises."""
        if not self._local or not self.store.at_once(size) or not self.lock.acquire(blocking=False):
            return None
        try:
            return self.create(
                owner, filename=filename, purpose=purpose, fileobj=fileobj, size=size, expires_after=expires_after
            )
        finally:
            self.lock.release()

    def _looks_like_jsonl(self, filename: str, fileobj: IO[bytes]) -> bool:
        rules = self.profile.files
        # The name counts only where the profile says the provider refuses other names: the
        # SDK names raw bytes "upload", and a JSONL upload so named is accepted elsewhere.
        if rules.require_jsonl_extension and not filename.lower().endswith(rules.batch_file_extension):
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
        with self.lock:
            items = [f for f in self.repo.files() if self.access.owns(owner, f.owner)]
        if purpose:
            items = [f for f in items if f.purpose == purpose]
        # Insertion order is creation order; ids break created_at ties deterministically.
        if order == "desc":
            items.reverse()
        return page(items, after, limit)

    def delete(self, file_id: str, owner: Owner) -> str:
        """Delete a file (its bytes too); returns its id."""
        with self.lock:
            record = self.retrieve(file_id, owner)
            self.repo.remove_file(record.id)
        self.store.delete(record.key, record.parts)
        return record.id

    def content(self, file_id: str, owner: Owner) -> tuple[FileRecord, Iterator[bytes]]:
        """The file and a stream of its bytes."""
        record = self.retrieve(file_id, owner)
        if record.purpose in self.profile.files.not_downloadable_purposes:
            raise ApiError("download_not_allowed", purpose=record.purpose)
        return record, self.store.iter_chunks(record.key, parts=record.parts)

    def content_now(self, file_id: str, owner: Owner) -> tuple[FileRecord, bytes] | None:
        """`content(file_id, owner)` with the bytes in hand, when that needs no I/O and no
        wait: records in memory, the provider's lock free, and the bytes still kept by the
        store (a small file written lately). None: call `content` (a worker thread).
        Raises what `content` raises."""
        if not self._local or not self.lock.acquire(blocking=False):
            return None
        try:
            # The stream is a generator not yet started: dropping it reads nothing.
            record, _ = self.content(file_id, owner)
        finally:
            self.lock.release()
        data = None if record.parts else self.store.kept(record.key)
        return None if data is None else (record, data)
