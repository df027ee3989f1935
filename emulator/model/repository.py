"""Where records live: a small repository interface, in memory or in the object store.

Services read and write records only through it. `MemoryRepository` (the default) keeps
records in dictionaries and records are changed in place; `store_repository.StoreRepository`
keeps them in the object store, so that a restarted server, or a second one, resumes.

Two calls make the difference visible to the services, and cost nothing in memory:
- `save(record)` after a batch moved: the store repository commits it (a conditional write
  that raises `StaleRecord` when another server committed first); in memory a no-op.
- `may_move(record)`: whether this process may do the batch's routine work (in the store:
  it holds the batch's lease); in memory always true.

The engine checkpoints through a `Journal`: `checkpoint(b)` after every `checkpoint_lines`
lines (0: never; the memory repository's journal is `NO_JOURNAL`), and `before_results(b)`
just before a batch's result buffers are handed to the result sink.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Protocol

from .records import BatchRecord, FileRecord, Owner

__all__ = ["NO_JOURNAL", "Journal", "MemoryRepository", "NoJournal", "Repository", "StaleRecord"]


class StaleRecord(Exception):
    """A batch changed in the store since this process read it (another server committed
    first); the record has been reloaded in place, so the caller may redo its move on it."""


class Repository(Protocol):
    """The records of one emulated provider surface."""

    def add_file(self, record: FileRecord) -> None:
        """Keep a new file record."""
        ...

    def file(self, file_id: str) -> FileRecord | None:
        """A file record by id."""
        ...

    def remove_file(self, file_id: str) -> None:
        """Forget a file record."""
        ...

    def files(self) -> Iterator[FileRecord]:
        """Every file record, oldest first."""
        ...

    def add_batch(self, record: BatchRecord) -> None:
        """Keep a new batch record (its `seq` is assigned here)."""
        ...

    def batch(self, batch_id: str) -> BatchRecord | None:
        """A batch record by id."""
        ...

    def batches(self) -> Sequence[BatchRecord]:
        """Every batch, oldest first."""
        ...

    def batches_of(self, owner: Owner) -> tuple[Sequence[BatchRecord], Sequence[int]]:
        """An owner's batches oldest first, and their `seq` numbers (ascending)."""
        ...

    def save(self, record: BatchRecord) -> None:
        """Keep the changes made to a batch record (in memory: nothing to do)."""
        ...

    def may_move(self, record: BatchRecord) -> bool:
        """Whether this process may move the batch on its own (timed progress, polls)."""
        ...

    def clear(self) -> None:
        """Forget every record."""
        ...


class Journal(Protocol):
    """Where the engine checkpoints a batch's progress."""

    checkpoint_lines: int

    def checkpoint(self, b: BatchRecord) -> None:
        """Lines up to `b.done` and their results are in `b`'s buffers: make them durable."""
        ...

    def before_results(self, b: BatchRecord) -> None:
        """`b` ends: make its buffers hold every result line before the sink stores them."""
        ...


class NoJournal:
    """No checkpoints: records live in this process only."""

    checkpoint_lines = 0

    def checkpoint(self, b: BatchRecord) -> None:
        """Nothing to do."""

    def before_results(self, b: BatchRecord) -> None:
        """Nothing to do: the buffers already hold every line."""


#: The journal of the memory repository.
NO_JOURNAL = NoJournal()


class MemoryRepository:
    """Records in dictionaries, with a per-owner index so a batch list page is O(limit + log n)."""

    def __init__(self) -> None:
        self._files: dict[str, FileRecord] = {}
        self._batches: dict[str, BatchRecord] = {}
        self._all: list[BatchRecord] = []
        self._owned: dict[Owner, list[BatchRecord]] = {}
        self._owned_seq: dict[Owner, list[int]] = {}
        self._seq = itertools.count()

    def add_file(self, record: FileRecord) -> None:
        """Keep a new file record."""
        self._files[record.id] = record

    def file(self, file_id: str) -> FileRecord | None:
        """A file record by id."""
        return self._files.get(file_id)

    def remove_file(self, file_id: str) -> None:
        """Forget a file record."""
        self._files.pop(file_id, None)

    def files(self) -> Iterator[FileRecord]:
        """Every file record, oldest first (insertion order is creation order)."""
        return iter(list(self._files.values()))

    def add_batch(self, record: BatchRecord) -> None:
        """Keep a new batch record and index it by owner."""
        record.seq = next(self._seq)
        self._batches[record.id] = record
        self._all.append(record)
        self._owned.setdefault(record.owner, []).append(record)
        self._owned_seq.setdefault(record.owner, []).append(record.seq)

    def batch(self, batch_id: str) -> BatchRecord | None:
        """A batch record by id."""
        return self._batches.get(batch_id)

    def batches(self) -> Sequence[BatchRecord]:
        """Every batch, oldest first."""
        return self._all

    def batches_of(self, owner: Owner) -> tuple[Sequence[BatchRecord], Sequence[int]]:
        """An owner's batches oldest first, and their seq numbers."""
        return self._owned.get(owner, []), self._owned_seq.get(owner, [])

    def save(self, record: BatchRecord) -> None:
        """Nothing to do: the record was changed in place."""

    def may_move(self, record: BatchRecord) -> bool:
        """Always: this process is the only one."""
        return True

    def clear(self) -> None:
        """Forget every record and release the batches' result buffers."""
        for b in self._batches.values():
            b.close_spools()
        self._files.clear()
        self._batches.clear()
        self._all.clear()
        self._owned.clear()
        self._owned_seq.clear()
