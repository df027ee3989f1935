"""The small objects a store wrote lately, kept to answer its own reads of them.

A small batch reads back what it just wrote: the validation and the run read the uploaded
input, a download reads the results. On moto in-process each GET costs 1 to 2 ms, most of a
10-line batch's time. The bytes are still written to S3 first, and only a store that no
other process writes (moto in-process) keeps them, so a read answered here returns what S3
holds. Larger objects and objects under a key that changes (records, leases) are never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["RecentObjects"]

#: The largest object kept: a 1,000-line chat batch's input (about 300 kB) and its results,
#: not a 10,000-line one. Below the size of a large file's parts (`_storage.PART_BYTES`),
#: so that a 200 MB batch's parts are never kept: they would only add to its memory.
OBJECT_MAX = 1 << 20
#: The most bytes kept in all; the least recently used go first.
TOTAL_MAX = 32 << 20


class RecentObjects:
    """A bounded, least-recently-used map of key -> bytes (thread-safe)."""

    def __init__(self, object_max: int = OBJECT_MAX, total_max: int = TOTAL_MAX) -> None:
        self.object_max = object_max
        self.total_max = total_max
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def keep(self, key: str, data: bytes) -> None:
        """Remember `data` as the object under `key` (forgets `key` when `data` is too large)."""
        with self._lock:
            self._drop(key)
            if len(data) > self.object_max:
                return
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.total_max:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)

    def get(self, key: str) -> bytes | None:
        """The bytes kept for `key`, or None."""
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def forget(self, key: str) -> None:
        """Drop `key` (a delete, or a write this map does not see whole)."""
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
