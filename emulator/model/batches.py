"""The Batches API of the model layer: create (from a neutral command), retrieve, list, cancel.

No HTTP here and no wire field names: a dialect parses its create body into `CreateBatch`,
and serializes the `BatchRecord` it gets back.

Every move of a batch ends with `repo.save(b)` (free in memory). With the store repository
a save can find that another server committed first (`StaleRecord`): the record is then
reloaded in place and the move is redone on it (`_moving`), a bounded number of times.
Polls (retrieve, list) move a batch under timed progression only on the server that holds
its lease (`repo.may_move`); elsewhere they show the state last committed, which the
holder's driver keeps at most one tick behind the clock. Commands (cancel, the admin step)
and per-poll progression move it on any server. `drive` is the driver's entry point.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import Profile

from .._clock import Clock
from .._ids import IdFactory
from .._mutations import Mutations
from .._storage import ObjectStore
from . import seams
from .access import Access
from .engine import Engine
from .errors import ApiError
from .inputs import InputResolver
from .lifecycle import Transitions
from .records import INPUT_BYTES, TERMINAL_ROLES, BatchRecord, InputRef, Owner
from .repository import MemoryRepository, Repository, StaleRecord

__all__ = ["BatchService", "CreateBatch", "json_kind"]

#: A page of batches, and whether more follow.
Page = tuple[list[BatchRecord], bool]

#: How many times a move is redone on a fresh copy when another server committed first.
_ATTEMPTS = 5


@dataclass(frozen=True)
class CreateBatch:
    """A create request, as a dialect parsed it.

    `input` names the input (a file id or an object URL); `inline` carries it instead (the
    JSONL bytes). `endpoint` is None for dialects whose lines name their own endpoint;
    `window` None asks for the profile's default. `metadata` and `output_expires_after` are
    the raw JSON values (checked here against the profile's limits); `webhook_url` asks for
    a notification when the batch ends.
    """

    input: InputRef | None = None
    inline: bytes | None = None
    endpoint: str | None = None
    window: str | None = None
    metadata: Any = None
    output_expires_after: Any = None
    webhook_url: str | None = None


class BatchService:
    """Batches of one provider surface."""

    def __init__(
        self,
        profile: Profile,
        *,
        repo: Repository,
        engine: Engine,
        inputs: InputResolver,
        transitions: Transitions,
        store: ObjectStore,
        clock: Clock,
        ids: IdFactory,
        access: Access,
        mutations: Mutations,
        lock: threading.RLock,
        check_webhook_url: Callable[[str], None] | None = None,
    ) -> None:
        self.profile = profile
        self.repo = repo
        self.engine = engine
        self.inputs = inputs
        self.transitions = transitions
        self.store = store
        self.clock = clock
        self.ids = ids
        self.access = access
        self.mutations = mutations
        self.lock = lock
        self.check_webhook_url = check_webhook_url
        # Unfinished batches by owner, kept only where something needs them: a concurrency
        # quota, or batches waiting to announce their end.
        self._active: dict[Owner, dict[str, BatchRecord]] = {}
        self._track_active = bool(profile.limits.max_concurrent_batches or check_webhook_url)
        # Records in this process's memory: a request that moves nothing does no I/O, and
        # the `*_now` methods may answer it on the caller's thread (the event loop).
        self._local = isinstance(repo, MemoryRepository)

    def clear(self) -> None:
        """Forget the concurrency bookkeeping (the repository is cleared by its owner)."""
        self._active.clear()

    def _get(self, batch_id: str, owner: Owner | None) -> BatchRecord:
        b = self.repo.batch(batch_id)
        if b is None or (owner is not None and not self.access.owns(owner, b.owner)):
            raise ApiError("batch_not_found", id=batch_id)
        return b

    def _moving(
        self, batch_id: str, owner: Owner | None, move: Callable[[BatchRecord], None], *, poll: bool = False
    ) -> BatchRecord:
        """`move` the batch and keep it; redone on the fresh record when another server
        committed first. A poll leaves a batch it may not move as the store has it."""
        for _ in range(_ATTEMPTS):
            b = self._get(batch_id, owner)
            if poll and self.engine.timing.progression == "timed" and not self.repo.may_move(b):
                return b
            move(b)
            try:
                self.repo.save(b)
            except StaleRecord:
                continue
            return b
        return self._get(batch_id, owner)

    def _settle(self, b: BatchRecord) -> None:
        """Catch `b` up to the clock where this process may move it."""
        if not self.repo.may_move(b):
            return
        self.engine.catch_up(b)
        # A stale record was reloaded in place: the other server's state is as good.
        with contextlib.suppress(StaleRecord):
            self.repo.save(b)

    def get_any(self, batch_id: str) -> BatchRecord | None:
        """A batch by id regardless of owner (admin routes)."""
        return self.repo.batch(batch_id)

    # -- create -----------------------------------------------------------------------

    def create(self, owner: Owner, cmd: CreateBatch) -> BatchRecord:
        """Check the command against the profile (400s, quotas) and make a new batch."""
        profile = self.profile
        window = cmd.window
        if window is None:
            window = self.mutations.apply(seams.CREATE_DEFAULT_WINDOW, profile.batches.default_window)
        endpoint = cmd.endpoint
        if endpoint is not None and endpoint not in profile.endpoints:
            raise ApiError("invalid_endpoint", value=endpoint, supported=quoted(profile.endpoints))
        if window not in profile.windows:
            raise ApiError("invalid_completion_window", value=window, supported=quoted(profile.windows))
        metadata = self._metadata(cmd.metadata)
        output_expires_after = self._output_expiry(cmd.output_expires_after)
        if cmd.webhook_url is not None:
            self._check_webhook(cmd.webhook_url)
        limits = profile.limits
        inline_max = self.mutations.apply(seams.CREATE_INLINE_MAX, limits.inline_base64_max_bytes)
        if cmd.inline is not None and inline_max and len(cmd.inline) >= inline_max:
            raise ApiError("inline_too_large", size=len(cmd.inline), max=inline_max)
        if cmd.inline is not None and limits.max_input_bytes and len(cmd.inline) > limits.max_input_bytes:
            raise ApiError("file_too_large", max=limits.max_input_bytes)
        if cmd.input is not None:
            self.inputs.check(cmd.input)
        with self.lock:
            input_bytes = len(cmd.inline) if cmd.inline is not None else None
            if cmd.input is not None and cmd.input.kind == "file":
                input_bytes = self._check_input_file(cmd.input.value, owner)
            self._check_quota(owner)
            batch_id = self.ids.make(profile.ids.batch)
            ref = cmd.input
            if cmd.inline is not None:
                ref = InputRef("inline", f"inputs/{batch_id}.jsonl")
                self.store.put_bytes(ref.value, cmd.inline, "application/jsonl")
            if ref is None:
                raise ApiError("missing_parameter", param="input")
            now = self.clock.now()
            created = int(now)
            b = BatchRecord(
                id=batch_id,
                owner=owner,
                endpoint=endpoint or "",
                input=ref,
                window=window,
                metadata=metadata,
                created_at=created,
                expires_at=created + profile.windows[window],
                status=profile.lifecycle.initial,
                role="validating",
                output_expires_after=output_expires_after,
                webhook_url=cmd.webhook_url,
            )
            b.extra["hex"] = self.ids.hex(12)
            if input_bytes is not None:
                b.extra[INPUT_BYTES] = input_bytes
            self.transitions.start(b, now)
            self.repo.add_batch(b)
            if self._track_active:
                self._active.setdefault(owner, {})[b.id] = b
            return b

    def create_now(self, owner: Owner, cmd: CreateBatch) -> BatchRecord | None:
        """`create(owner, cmd)` when it can answer at once: records in memory, the lock
        free, no input bytes to store, and no concurrency quota (checking one catches the
        owner's batches up, which may process them). None: call `create` (see
        `retrieve_now`)."""
        if not self._local or cmd.inline is not None:
            return None
        if self.mutations.apply(seams.CREATE_MAX_CONCURRENT, self.profile.limits.max_concurrent_batches):
            return None
        if not self.lock.acquire(blocking=False):
            return None
        try:
            return self.create(owner, cmd)
        finally:
            self.lock.release()

    def _check_input_file(self, file_id: str, owner: Owner) -> int | None:
        """The 404 or 413 create gives for the input file, if any; else the file's size
        (None for a file this surface does not know: validation fails the batch)."""
        limits = self.profile.limits
        record = self.inputs.files.file(file_id) if self.inputs.files is not None else None
        if record is not None and not self.access.owns(owner, record.owner):
            record = None
        if record is None and self.profile.batches.missing_input_file == "reject_create":
            raise ApiError("file_not_found", id=file_id)
        if (
            record is not None
            and limits.max_input_bytes
            and limits.enforced_at.get("max_input_bytes") == "create"
            and record.bytes > limits.max_input_bytes
        ):
            raise ApiError("file_too_large", max=limits.max_input_bytes)
        return None if record is None else record.bytes

    def _check_quota(self, owner: Owner) -> None:
        maximum = self.mutations.apply(seams.CREATE_MAX_CONCURRENT, self.profile.limits.max_concurrent_batches)
        if not maximum:
            return
        active = self._active.get(owner, {})
        for b in list(active.values()):
            self._settle(b)
            if b.terminal:
                del active[b.id]
        if len(active) >= maximum:
            raise ApiError("quota_exceeded", limit="concurrent batches", max=maximum)

    def _check_webhook(self, url: str) -> None:
        if self.check_webhook_url is None:
            raise ApiError("invalid_webhook_url", value=url, reason="this provider has no webhooks")
        try:
            self.check_webhook_url(url)
        except ValueError as exc:
            raise ApiError("invalid_webhook_url", value=url, reason=str(exc)) from None

    def _metadata(self, value: Any) -> dict[str, str] | None:
        limits = self.profile.limits
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError("invalid_type", param="metadata", expected="an object", got=json_kind(value))
        if not self.profile.has("metadata"):
            # The provider documents no metadata: it is neither limited nor echoed back.
            return None
        if len(value) > limits.metadata_max_pairs:
            raise ApiError("metadata_too_many", count=len(value), max=limits.metadata_max_pairs)
        for key, item in value.items():
            if len(key) > limits.metadata_key_max_chars:
                raise ApiError("metadata_key_too_long", key=key, max=limits.metadata_key_max_chars, length=len(key))
            if not isinstance(item, str):
                raise ApiError("invalid_type", param=f"metadata.{key}", expected="a string", got=json_kind(item))
            if len(item) > limits.metadata_value_max_chars:
                raise ApiError(
                    "metadata_value_too_long", key=key, max=limits.metadata_value_max_chars, length=len(item)
                )
        return dict(value)

    def _output_expiry(self, value: Any) -> int | None:
        if value is None:
            return None
        rules = self.profile.files
        if not isinstance(value, dict):
            raise ApiError("invalid_type", param="output_expires_after", expected="an object", got=json_kind(value))
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

    # -- read and move ----------------------------------------------------------------

    def retrieve(self, batch_id: str, owner: Owner, *, poll: bool = True) -> BatchRecord:
        """The batch, caught up to the clock (and moved one status under per-poll progression)."""
        with self.lock:
            return self._moving(batch_id, owner, self.engine.on_poll if poll else self.engine.catch_up, poll=True)

    def retrieve_now(self, batch_id: str, owner: Owner) -> BatchRecord | None:
        """`retrieve(batch_id, owner)` when it can answer at once: records in memory, the
        lock free, and the batch finished (a poll then moves nothing and reads no storage)
        or its next step small work that waits on nothing (`Engine.small_step`: a small
        input in a store in this process, a model backend in this process). None: call
        `retrieve`, where blocking is harmless (a worker thread).

        Never waits for the lock: whoever holds it may be processing a large batch, and
        the caller is the event loop that every other request needs."""
        if not self._local or not self.lock.acquire(blocking=False):
            return None
        try:
            b = self._get(batch_id, owner)
            if not b.terminal and not self.engine.small_step(b):
                return None
            return self._moving(batch_id, owner, self.engine.on_poll, poll=True)
        finally:
            self.lock.release()

    def list(self, owner: Owner, *, limit: int, after: str | None) -> tuple[list[BatchRecord], bool]:
        """A page of the owner's batches in the profile's order, each caught up to the clock."""
        with self.lock:
            page, more = self._page(owner, limit=limit, after=after)
            for b in page:
                self._settle(b)
            return page, more

    def list_now(self, owner: Owner, *, limit: int, after: str | None) -> Page | None:
        """`list(...)` when it can answer at once (records in memory, the lock free, every
        batch of the page finished); None otherwise (see `retrieve_now`)."""
        if not self._local or not self.lock.acquire(blocking=False):
            return None
        try:
            page, more = self._page(owner, limit=limit, after=after)
            if not all(b.role in TERMINAL_ROLES for b in page):
                return None
            # A finished batch has nothing to catch up; `_settle` would return at once.
            return page, more
        finally:
            self.lock.release()

    def _page(self, owner: Owner, *, limit: int, after: str | None) -> Page:
        if self.access.isolated:
            # Per-owner lists in creation order: a page costs O(limit + log n), not O(n).
            items, seqs = self.repo.batches_of(owner)
        else:
            items = self.repo.batches()
            seqs = [b.seq for b in items]
        desc = self.profile.batches.list_order == "desc"
        cursor: int | None = None
        after = self.mutations.apply(seams.LIST_AFTER, after)
        if after is not None:
            anchor = self.repo.batch(after)
            if anchor is None or not self.access.owns(owner, anchor.owner):
                return [], False
            cursor = bisect.bisect_left(seqs, anchor.seq)
        if desc:
            end = len(items) if cursor is None else cursor
            page = list(items[max(0, end - limit) : end])[::-1]
            more = end - limit > 0
        else:
            start = 0 if cursor is None else cursor + 1
            page = list(items[start : start + limit])
            more = start + limit < len(items)
        return page, more

    def cancel(self, batch_id: str, owner: Owner) -> BatchRecord:
        """Start cancelling; the dialect's 409 for a batch that can no longer be cancelled."""
        with self.lock:
            return self._moving(batch_id, owner, self._cancel)

    def _cancel(self, b: BatchRecord) -> None:
        self.engine.catch_up(b)
        life = self.profile.lifecycle
        if b.status in life.cancel_idempotent:
            return
        if b.status not in life.cancellable:
            action = self.mutations.apply(seams.CANCEL_REFUSED, "refuse")
            if action == "accept":
                return
            if action.startswith("force:"):
                self.engine.force(b, action.removeprefix("force:"))
                return
            raise ApiError("cancel_terminal", status=b.status)
        self.engine.cancel(b)

    def step(self, batch_id: str, lines: int | None = None) -> BatchRecord:
        """Admin: move a batch one status, or process `lines` more lines."""
        with self.lock:
            return self._moving(batch_id, None, lambda b: self.engine.step(b, lines))

    def drive(self, batch_id: str) -> bool:
        """The driver's move (this process holds the batch's lease): catch it up to the
        clock and commit. Whether the batch needs no more driving (terminal, or gone)."""
        with self.lock:
            b = self.repo.batch(batch_id)
            if b is None:
                return True
            self.engine.catch_up(b)
            # A stale record was reloaded in place; the driver checks its lease again.
            with contextlib.suppress(StaleRecord):
                self.repo.save(b)
            return b.terminal

    def catch_up_watched(self) -> None:
        """Catch up every unfinished batch that someone waits to hear about (webhooks)."""
        with self.lock:
            for active in self._active.values():
                for b in list(active.values()):
                    if b.webhook_url:
                        self._settle(b)
                    if b.terminal:
                        del active[b.id]


def json_kind(value: Any) -> str:
    """How a JSON value's type is named in error messages."""
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


def quoted(values: Any) -> str:
    """'a', 'b', and 'c'."""
    items = [f"'{v}'" for v in values]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]
