"""Leases: which server processes a batch kept in the object store, one at a time.

A lease is one small JSON object per batch, `<state prefix>leases/<batch id>.json`:
`{"holder": <server id>, "generation": g, "expires": <wall-clock seconds>}`.

- **Acquire**: `PutObject` with `If-None-Match: *` (generation 1); the write fails (412)
  when the object exists. An existing lease whose `expires` has passed (or that its holder
  released by writing `expires: 0`) is **stolen** with `PutObject` `If-Match: <its ETag>`
  and the generation plus one; a second server racing for the same lease fails that
  condition.
- **Renew**: the holder rewrites its lease with `If-Match: <the ETag it wrote>` before a
  third of the time to live has passed; a refused renewal means someone else took it.
- **Hold**: a server treats its lease as valid only until `expires - ttl/4`, so it stops
  working on a batch before any other server may take it over (clocks of the servers must
  agree to within a quarter of the time to live; `batchconf serve --lease-seconds`).
- **Release** (SIGTERM, close): the holder writes `expires: 0` with `If-Match`, so another
  server takes over at once instead of after expiry. When the batch is terminal the lease
  object is deleted.

Leases use wall-clock time, never the emulator's clock (a virtual clock would never expire
one).

**Fencing.** A lease only decides who does the work; what makes a stalled holder harmless is
checked at commit. A server that acquires a lease at generation g first commits the batch
record with `lease_gen = g` (a conditional write on the record's ETag, see
`store_repository`), and every later commit of the record is a `PutObject` with
`If-Match: <ETag it last read or wrote>`. A holder that stalls past expiry (a GC pause, a
stopped VM, SIGSTOP) and wakes up after another server took over finds that ETag changed by
the new holder's fencing commit: its commit is refused, it drops its uncommitted chunk and
reloads. Whatever it wrote before committing (result chunk objects) is keyed by its own
server id, so it never overwrites the new holder's objects and is never referenced.

**moto.** moto 5.2.5 (the version in the project's environment) enforces both conditions on
`put_object` (`If-None-Match: *` on an existing key and `If-Match` with another ETag answer
412 PreconditionFailed; `If-Match` on a missing key answers 404 NoSuchKey). It checks them
before the write, not atomically with it: its request handler looks the key up, then stores
the new object, with no lock around the two, and the moto server handles requests on several
threads. Two conditional writes to one key that arrive within that window can both succeed.
AWS S3 and MinIO evaluate the condition atomically with the write. So on moto this module
adds a read-back after acquiring (the lease must name this server), and the design does not
rest on the lease for safety: every commit is built from a record read from the store plus
this server's own chunk, so each record the store ever holds lists result chunks that tile
lines `[0, done)` exactly once, whichever of two racing writers wins. A lost race costs
repeated work and unreferenced objects, never a duplicate or missing line in the results.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .._storage import ObjectStore, PreconditionFailed

__all__ = ["Lease", "Leases"]


@dataclass
class Lease:
    """A lease this server holds: its generation, the ETag it last wrote and when it ends."""

    batch_id: str
    generation: int
    etag: str
    expires: float
    renewed: float


class Leases:
    """The leases one server holds on the batches under one state prefix."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        *,
        holder: str,
        ttl: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease time to live must be > 0 seconds, got {ttl}")
        self.store = store
        self.prefix = prefix
        self.holder = holder
        self.ttl = ttl
        self._now = now
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def _key(self, batch_id: str) -> str:
        return f"{self.prefix}leases/{batch_id}.json"

    def _body(self, generation: int, expires: float) -> bytes:
        return orjson.dumps({"holder": self.holder, "generation": generation, "expires": expires})

    # -- local view (no I/O) ----------------------------------------------------------

    def holds(self, batch_id: str) -> bool:
        """Whether this server holds a lease on the batch that it may still work under."""
        lease = self._held.get(batch_id)
        return lease is not None and self._now() < lease.expires - self.ttl / 4

    def held(self) -> list[str]:
        """The batches this server holds leases on."""
        with self._lock:
            return list(self._held)

    def generation(self, batch_id: str) -> int:
        """The generation of the lease held on the batch (0: none)."""
        lease = self._held.get(batch_id)
        return lease.generation if lease is not None else 0

    # -- store operations -------------------------------------------------------------

    def acquire(self, batch_id: str) -> Lease | None:
        """Take the batch's lease (new, released or expired); None when another server holds it."""
        if self.holds(batch_id):
            return self._held[batch_id]
        key = self._key(batch_id)
        now = self._now()
        try:
            etag = self.store.put_if(key, self._body(1, now + self.ttl), if_absent=True)
            return self._verified(batch_id, 1, etag, now)
        except PreconditionFailed:
            pass
        try:
            found = self.store.get_if(key)
        except KeyError:
            return None  # deleted in between (the batch ended); the next scan looks again
        assert found is not None
        data, etag = found
        current = orjson.loads(data)
        if float(current["expires"]) > now and current["holder"] != self.holder:
            return None
        generation = int(current["generation"]) + 1
        try:
            etag = self.store.put_if(key, self._body(generation, now + self.ttl), if_match=etag)
        except PreconditionFailed:
            return None
        return self._verified(batch_id, generation, etag, now)

    def _verified(self, batch_id: str, generation: int, etag: str, now: float) -> Lease | None:
        # Read back what the store holds: on a store whose conditional writes are not atomic
        # (moto), a racing writer whose write landed after ours shows here.
        try:
            found = self.store.get_if(self._key(batch_id))
        except KeyError:
            return None
        assert found is not None
        current = orjson.loads(found[0])
        if current["holder"] != self.holder or int(current["generation"]) != generation:
            return None
        lease = Lease(batch_id, generation, found[1], now + self.ttl, now)
        with self._lock:
            self._held[batch_id] = lease
        return lease

    def renew_due(self) -> list[str]:
        """Renew every lease past a third of its time to live; returns the batches whose lease
        was lost (someone else took it, or it ended before it could be renewed)."""
        lost: list[str] = []
        now = self._now()
        for batch_id in self.held():
            lease = self._held.get(batch_id)
            if lease is None or now - lease.renewed < self.ttl / 3:
                continue
            if now >= lease.expires or not self._renew(lease, now):
                self.drop(batch_id)
                lost.append(batch_id)
        return lost

    def _renew(self, lease: Lease, now: float) -> bool:
        try:
            lease.etag = self.store.put_if(
                self._key(lease.batch_id), self._body(lease.generation, now + self.ttl), if_match=lease.etag
            )
        except PreconditionFailed:
            return False
        lease.expires = now + self.ttl
        lease.renewed = now
        return True

    def release(self, batch_id: str) -> None:
        """Give the lease up so that another server may take it over at once."""
        lease = self.drop(batch_id)
        if lease is None:
            return
        with contextlib.suppress(PreconditionFailed):  # already taken over
            self.store.put_if(self._key(batch_id), self._body(lease.generation, 0.0), if_match=lease.etag)

    def forget(self, batch_id: str) -> None:
        """The batch is terminal: drop its lease and delete the lease object."""
        self.drop(batch_id)
        self.store.delete(self._key(batch_id))

    def drop(self, batch_id: str) -> Lease | None:
        """Stop considering the lease held (no I/O)."""
        with self._lock:
            return self._held.pop(batch_id, None)

    def release_all(self) -> None:
        """Release every lease this server holds."""
        for batch_id in self.held():
            self.release(batch_id)
