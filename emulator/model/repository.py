"""Where records live: a small repository interface, kept in memory today.

Services read and write records only through it, so that a repository kept in the object
store (state that survives a restart, or that two servers share) can replace this one
without touching them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Protocol

from .records import BatchRecord, FileRecord, Owner

__all__ = ["MemoryRepository", "Repository"]


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

    def clear(self) -> None:
        """Forget every record."""
        ...


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

    def clear(self) -> None:
        """Forget every record and release the batches' result buffers."""
        for b in self._batches.values():
            b.close_spools()
        self._files.clear()
        self._batches.clear()
        self._all.clear()
        self._owned.clear()
        self._owned_seq.clear()
