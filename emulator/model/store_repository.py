"""The repository kept in the object store: state that survives a restart and that two servers share.

Chosen by `batchconf serve --state store` / `Emulator(state="store")` with a persistent S3
endpoint. Everything lives under a state prefix of the emulator's bucket,
`state/<profile name>/`:

    files/<file id>.json            a file record (immutable once written)
    batches/<batch id>.json         a batch record, with the journal of its result chunks
    plans/<batch id>.plan           its line plan (written once, when validation ends)
    chunks/<batch id>/<first line>-<server id>-<n>.out|.err
                                    result lines of one checkpoint, in the dialect's format
    leases/<batch id>.json          who processes the batch (`lease`)

**Commits.** A batch record is only ever written by `save`, as a conditional `PutObject`:
`If-None-Match: *` for a new record, `If-Match: <the ETag this process last read or wrote>`
after that. Before writing the record, `save` writes the result lines produced since the
last commit as chunk objects whose keys name this server and a counter (so no two writers
ever write the same chunk key), and adds them to the record's journal. The chunk becomes part
of the batch only when the record that lists it is committed: a chunk written by a commit
that fails, or by a process killed before its commit, is never referenced. A refused commit
raises `StaleRecord` after reloading the record in place (the caller redoes its operation
on the fresh state or gives up). So the store only ever holds records whose journal tiles
the lines `[0, done)` exactly once, and a restart redoes at most the lines processed since
the last commit. Checkpoints are made after every `checkpoint_lines` lines and at the end
of every catch-up (the driver catches up the batches it leases every tick).

**Finalizing.** When a batch ends, `before_results` rebuilds its result buffers from the
journal (the chunks committed before this process loaded the record, read back from the
store, then what this process wrote itself), the result sink stores them as files, and the
terminal record is committed. A commit that is then refused deletes the files this attempt
made; a process killed between storing the files and committing the record leaves those
files unreferenced (the restarted finalize makes new ones, and the record names only those).
After a terminal commit the chunks, the plan and the lease are deleted.

**Reads and the cache.** Each process keeps the records it has seen:
- a batch this process holds the lease of is served from memory (no other server can commit
  it without first taking the lease, which fences this process out: see `lease`);
- a terminal batch never changes, and is served from memory;
- any other batch is revalidated with a conditional `GetObject` (`If-None-Match: <ETag>`,
  a 304 costs no body) when its cached copy is older than `revalidate_after` seconds;
- file records never change; a cached one is revalidated the same way (a file deleted on
  another server is gone here within `revalidate_after`); lists read one `ListObjectsV2`
  page per 1,000 records and fetch only the records not cached yet.
A record refreshed from the store is updated in place, so every holder of the object sees it.

Ordering: `seq` (batches and files) is the creation time in nanoseconds, made strictly
increasing within a process, so lists are in creation order across servers. API keys never
reach the bucket (`codec.OwnerCodec`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from .._storage import ObjectStore, PreconditionFailed
from .codec import OwnerCodec, decode_batch, decode_file, decode_plan, encode_batch, encode_file, encode_plan
from .lease import Leases
from .records import BatchRecord, FileRecord, LinePlan, Owner, _spool
from .repository import StaleRecord

__all__ = ["StaleRecord", "StoreRepository"]

#: The record fields a refresh copies (the buffers and the plan are handled apart).
_COPIED = tuple(f.name for f in dataclasses.fields(BatchRecord) if f.name not in ("_out_spool", "_err_spool", "plan"))


@dataclass
class _Batch:
    """A batch record as this process knows it, with what it last committed."""

    record: BatchRecord
    etag: str | None
    checked: float
    journal: list[list[Any]] = field(default_factory=list)
    lease_gen: int = 0
    base: int = 0  # journal entries whose bytes are not in this process's buffers
    out_pos: int = 0  # buffer bytes already journalled
    err_pos: int = 0
    committed: bytes = b""
    plan_stored: bool = False


@dataclass
class _File:
    record: FileRecord
    seq: int
    etag: str | None
    checked: float


class StoreRepository:
    """File and batch records of one provider surface, kept under `prefix` in `store`."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        prefix: str,
        owners: OwnerCodec,
        leases: Leases,
        revalidate_after: float = 0.25,
        checkpoint_lines: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.owners = owners
        self.leases = leases
        self.writer = leases.holder
        self.revalidate_after = revalidate_after
        self.checkpoint_lines = checkpoint_lines
        self._monotonic = monotonic
        self._files: dict[str, _File] = {}
        self._batches: dict[str, _Batch] = {}
        self._meta: dict[str, tuple[int, Owner]] = {}
        self._plans: dict[str, LinePlan] = {}
        self._last_seq = 0
        self._chunks = 0
        self._lock = threading.RLock()
        # Files the result sink made for a batch being finalized on this thread.
        self._attempt = threading.local()

    # -- keys -------------------------------------------------------------------------

    def _file_key(self, file_id: str) -> str:
        return f"{self.prefix}files/{file_id}.json"

    def _batch_key(self, batch_id: str) -> str:
        return f"{self.prefix}batches/{batch_id}.json"

    def _plan_key(self, batch_id: str) -> str:
        return f"{self.prefix}plans/{batch_id}.plan"

    def _next_seq(self) -> int:
        with self._lock:
            self._last_seq = max(self._last_seq + 1, time.time_ns())
            return self._last_seq

    # -- files ------------------------------------------------------------------------

    def add_file(self, record: FileRecord) -> None:
        """Store a new file record (refused if one with its id exists)."""
        seq = self._next_seq()
        etag = self.store.put_if(self._file_key(record.id), encode_file(record, self.owners, seq), if_absent=True)
        self._files[record.id] = _File(record, seq, etag, self._monotonic())
        made: list[FileRecord] | None = getattr(self._attempt, "files", None)
        if made is not None:
            made.append(record)

    def file(self, file_id: str) -> FileRecord | None:
        """A file record by id, read through the cache."""
        entry = self._files.get(file_id)
        now = self._monotonic()
        if entry is not None and now - entry.checked < self.revalidate_after:
            return entry.record
        try:
            found = self.store.get_if(self._file_key(file_id), entry.etag if entry is not None else None)
        except KeyError:
            self._files.pop(file_id, None)
            return None
        if found is None:
            assert entry is not None
            entry.checked = now
            return entry.record
        record, seq = decode_file(found[0], self.owners)
        self._files[file_id] = _File(record, seq, found[1], now)
        return record

    def remove_file(self, file_id: str) -> None:
        """Delete a file record."""
        self.store.delete(self._file_key(file_id))
        self._files.pop(file_id, None)

    def files(self) -> Iterator[FileRecord]:
        """Every file record, oldest first."""
        listed = [k[len(self.prefix) + 6 : -5] for k in self.store.keys(f"{self.prefix}files/") if k.endswith(".json")]
        entries: list[_File] = []
        for file_id in listed:
            entry = self._files.get(file_id)
            if entry is None and self.file(file_id) is not None:
                entry = self._files.get(file_id)
            if entry is not None:
                entries.append(entry)
        gone = set(self._files) - set(listed)
        for file_id in gone:
            self._files.pop(file_id, None)
        entries.sort(key=lambda e: e.seq)
        return iter([e.record for e in entries])

    # -- batches ----------------------------------------------------------------------

    def add_batch(self, record: BatchRecord) -> None:
        """Store a new batch record and take its lease (this server will process it)."""
        record.seq = self._next_seq()
        lease = self.leases.acquire(record.id)
        entry = _Batch(record, None, self._monotonic(), lease_gen=lease.generation if lease else 0)
        with self._lock:
            self._batches[record.id] = entry
            self._meta[record.id] = (record.seq, record.owner)
        self.save(record)

    def batch(self, batch_id: str) -> BatchRecord | None:
        """A batch record by id: from memory when this server holds its lease or it is
        terminal, else revalidated against the store."""
        entry = self._batches.get(batch_id)
        if entry is not None:
            b = entry.record
            if b.terminal or self.leases.holds(batch_id):
                return b
            if self._monotonic() - entry.checked < self.revalidate_after:
                return b
        return self._load(batch_id, entry)

    def _load(self, batch_id: str, entry: _Batch | None) -> BatchRecord | None:
        now = self._monotonic()
        try:
            found = self.store.get_if(self._batch_key(batch_id), entry.etag if entry is not None else None)
        except KeyError:
            with self._lock:
                gone = self._batches.pop(batch_id, None)
                self._meta.pop(batch_id, None)
            if gone is not None:
                gone.record.close_spools()
            return None
        if found is None:
            assert entry is not None
            entry.checked = now
            return entry.record
        data, etag = found
        record, has_plan, state = decode_batch(data, self.owners)
        with self._lock:
            entry = self._batches.get(batch_id)
            if entry is None:
                entry = _Batch(record, etag, now)
                self._batches[batch_id] = entry
                self._meta[batch_id] = (record.seq, record.owner)
            else:
                _copy_into(entry.record, record)
            b = entry.record
            b.plan = self._plan(batch_id) if has_plan and not b.terminal else None
            entry.etag, entry.checked, entry.committed = etag, now, data
            entry.journal = list(state.get("journal", []))
            entry.lease_gen = int(state.get("lease_gen", 0))
            entry.base = len(entry.journal)
            entry.out_pos = entry.err_pos = 0
            entry.plan_stored = has_plan
        return b

    def _plan(self, batch_id: str) -> LinePlan:
        plan = self._plans.get(batch_id)
        if plan is None:
            plan = decode_plan(self.store.read(self._plan_key(batch_id)))
            self._plans[batch_id] = plan
        return plan

    def _index(self) -> list[tuple[int, Owner, str]]:
        """(seq, owner, id) of every stored batch, in creation order (one LIST; a record is
        fetched only the first time its id is seen)."""
        names = self.store.keys(f"{self.prefix}batches/")
        ids = [k[len(self.prefix) + 8 : -5] for k in names if k.endswith(".json")]
        index: list[tuple[int, Owner, str]] = []
        for batch_id in ids:
            meta = self._meta.get(batch_id)
            if meta is None and self._load(batch_id, None) is not None:
                meta = self._meta.get(batch_id)
            if meta is not None:
                index.append((meta[0], meta[1], batch_id))
        index.sort()
        return index

    def batches(self) -> Sequence[BatchRecord]:
        """Every batch, oldest first (each read through the cache when it is accessed)."""
        return _Lazy([i for _, _, i in self._index()], self.batch)

    def batches_of(self, owner: Owner) -> tuple[Sequence[BatchRecord], Sequence[int]]:
        """An owner's batches oldest first, and their seq numbers."""
        mine = [(seq, i) for seq, o, i in self._index() if o == owner]
        return _Lazy([i for _, i in mine], self.batch), [seq for seq, _ in mine]

    def unfinished(self) -> list[str]:
        """The ids of the batches that are not terminal, as far as the store says."""
        out = []
        for _, _, batch_id in self._index():
            b = self.batch(batch_id)
            if b is not None and not b.terminal:
                out.append(batch_id)
        return out

    # -- moves and commits --------------------------------------------------------------

    def may_move(self, b: BatchRecord) -> bool:
        """Whether this server holds the batch's lease (the work on it is its own)."""
        return self.leases.holds(b.id)

    def claim(self, batch_id: str, generation: int) -> BatchRecord | None:
        """This server has just taken the batch's lease at `generation`: reload the record
        and commit the new generation into it, which fences out the previous holder."""
        b = self._load(batch_id, self._batches.get(batch_id))
        if b is None:
            return None
        entry = self._batches[batch_id]
        if entry.lease_gen >= generation or b.terminal:
            return b
        entry.lease_gen = generation
        try:
            self.save(b)
        except StaleRecord:
            return None
        return b

    def save(self, b: BatchRecord) -> None:
        """Commit the record if it changed: new result lines as a chunk, then the record with
        `If-Match` on the ETag this process last saw; `StaleRecord` when the store moved on."""
        entry = self._batches[b.id]
        written: list[str] = []
        journal = entry.journal
        if b.plan is not None and not entry.plan_stored:
            self.store.put_bytes(self._plan_key(b.id), encode_plan(b.plan))
            self._plans[b.id] = b.plan
            entry.plan_stored = True
        out_end = err_end = 0
        if not b.out_spool.closed:
            out_end, err_end = _end(b.out_spool), _end(b.err_spool)
            if out_end > entry.out_pos or err_end > entry.err_pos:
                journal = [*journal, self._write_chunk(b, entry, out_end, err_end, written)]
        data = encode_batch(b, self.owners, {"journal": journal, "lease_gen": entry.lease_gen})
        if data == entry.committed:
            return
        try:
            if entry.etag is None:
                etag = self.store.put_if(self._batch_key(b.id), data, if_absent=True)
            else:
                etag = self.store.put_if(self._batch_key(b.id), data, if_match=entry.etag)
        except PreconditionFailed:
            self._discard(written)
            self._discard_attempt()
            self._load(b.id, None if entry.etag is None else entry)
            raise StaleRecord(f"batch {b.id} changed in the store; reloaded") from None
        entry.etag, entry.committed, entry.journal = etag, data, journal
        entry.checked = self._monotonic()
        if out_end or err_end:
            entry.out_pos, entry.err_pos = out_end, err_end
        self._attempt.files = None
        if b.terminal:
            self._ended(b.id, entry)

    def _write_chunk(self, b: BatchRecord, entry: _Batch, out_end: int, err_end: int, written: list[str]) -> list[Any]:
        with self._lock:
            self._chunks += 1
            n = self._chunks
        first = entry.journal[-1][1] if entry.journal else 0
        stem = f"{self.prefix}chunks/{b.id}/{first:08d}-{self.writer}-{n}"
        keys: list[str | None] = []
        for spool, start, end, suffix in (
            (b.out_spool, entry.out_pos, out_end, ".out"),
            (b.err_spool, entry.err_pos, err_end, ".err"),
        ):
            if end <= start:
                keys.append(None)
                continue
            spool.seek(start)
            data = spool.read(end - start)
            spool.seek(0, 2)
            self.store.put_bytes(stem + suffix, data, "application/jsonl")
            written.append(stem + suffix)
            keys.append(stem + suffix)
        return [first, b.done, keys[0], keys[1]]

    def _discard(self, keys: list[str]) -> None:
        for key in keys:
            self.store.delete(key)

    def _discard_attempt(self) -> None:
        made: list[FileRecord] | None = getattr(self._attempt, "files", None)
        self._attempt.files = None
        for record in made or ():
            self.remove_file(record.id)
            self.store.delete(record.key, record.parts)

    def _ended(self, batch_id: str, entry: _Batch) -> None:
        """After a terminal commit: the chunks, the plan and the lease are no longer needed."""
        for first, _, out_key, err_key in entry.journal:
            del first
            self._discard([k for k in (out_key, err_key) if k])
        self.store.delete(self._plan_key(batch_id))
        self._plans.pop(batch_id, None)
        self.leases.forget(batch_id)

    # -- the engine's journal hooks -------------------------------------------------------

    def checkpoint(self, b: BatchRecord) -> None:
        """The engine finished a chunk of lines: commit them."""
        self.save(b)

    def before_results(self, b: BatchRecord) -> None:
        """The batch ends: put the lines committed before this process loaded it back in
        front of its buffers, and remember the files the sink is about to make."""
        self._attempt.files = []
        entry = self._batches.get(b.id)
        if entry is None or entry.base == 0 or b.out_spool.closed:
            return
        for attr, index in (("out_spool", 2), ("err_spool", 3)):
            old = getattr(b, attr)
            new = _spool()
            for chunk in entry.journal[: entry.base]:
                if chunk[index]:
                    for piece in self.store.iter_chunks(chunk[index]):
                        new.write(piece)
            old.seek(0)
            while piece := old.read(1 << 20):
                new.write(piece)
            old.close()
            setattr(b, attr, new)
        entry.base = 0
        entry.out_pos, entry.err_pos = _end(b.out_spool), _end(b.err_spool)

    # -- whole repository ---------------------------------------------------------------

    def clear(self) -> None:
        """Forget every record: in the store too (every server sharing it loses them)."""
        keys = self.store.keys(self.prefix)
        for key in keys:
            self.store.delete(key)
        self.forget_cache()

    def forget_cache(self) -> None:
        """Drop what this process cached (the store keeps everything)."""
        with self._lock:
            for entry in self._batches.values():
                entry.record.close_spools()
            self._files.clear()
            self._batches.clear()
            self._meta.clear()
            self._plans.clear()


def _end(spool: Any) -> int:
    spool.seek(0, 2)
    return int(spool.tell())


def _copy_into(target: BatchRecord, source: BatchRecord) -> None:
    for name in _COPIED:
        setattr(target, name, getattr(source, name))
    target.close_spools()
    target.out_spool, target.err_spool = source.out_spool, source.err_spool


class _Lazy(Sequence[BatchRecord]):
    """Batches by id, each read through the repository when accessed."""

    def __init__(self, ids: list[str], load: Callable[[str], BatchRecord | None]) -> None:
        self._ids = ids
        self._load = load

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> BatchRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[BatchRecord]: ...

    def __getitem__(self, index: int | slice) -> BatchRecord | Sequence[BatchRecord]:
        if isinstance(index, slice):
            return [b for b in (self._load(i) for i in self._ids[index]) if b is not None]
        b = self._load(self._ids[index])
        if b is None:
            raise IndexError(index)
        return b
