"""The driver: with state in the store, one thread per server that claims and moves batches.

In memory nothing needs it: whoever looks at a batch catches it up. With the store
repository a batch must go on moving when its server is gone, and must be moved by one
server at a time, so each server runs one driver thread. Every `tick` seconds it:

1. every `scan_every` seconds, lists the unfinished batches of each surface and tries to
   take the lease of those nobody holds (new, released, or expired: `lease.Leases.acquire`);
   a lease taken is fenced into the batch record at once (`StoreRepository.claim`);
2. renews the leases due for renewal, and forgets the ones it lost;
3. catches every batch it holds up to the clock and commits it (`BatchService.drive`), which
   checkpoints its progress; a batch that is terminal gives its lease up.

`stop()` (SIGTERM, `Emulator.close`) lets the tick in progress finish, so the work in hand
is committed, then releases every lease it holds: another server takes those batches over at
once rather than after the lease expires. Nothing here sleeps to emulate time: the thread
waits on an event between ticks, and the engine decides from the clock what is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .batches import BatchService
from .store_repository import StoreRepository

__all__ = ["Driven", "Driver"]

_log = logging.getLogger("batchconf.driver")


@dataclass(frozen=True)
class Driven:
    """One surface the driver moves batches of."""

    repo: StoreRepository
    batches: BatchService


class Driver:
    """Claims and moves the batches of the given surfaces from one background thread."""

    def __init__(
        self,
        surfaces: Sequence[Driven],
        *,
        tick: float = 0.2,
        scan_every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.surfaces = tuple(surfaces)
        self.tick = tick
        self.scan_every = scan_every
        self._monotonic = monotonic
        self._next_scan = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="batchconf-driver", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a store error must not end the driver: the next tick retries
                _log.exception("driver tick failed; retrying at the next tick")
            self._stop.wait(self.tick)

    def run_once(self) -> None:
        """One tick: scan (when due), renew, move."""
        now = self._monotonic()
        scan = now >= self._next_scan
        if scan:
            self._next_scan = now + self.scan_every
        for surface in self.surfaces:
            repo = surface.repo
            leases = repo.leases
            if scan:
                # Under the services' lock: a claim reloads records in place.
                with surface.batches.lock:
                    for batch_id in repo.unfinished():
                        if self._stop.is_set():
                            return
                        if leases.holds(batch_id):
                            continue
                        lease = leases.acquire(batch_id)
                        if lease is not None and repo.claim(batch_id, lease.generation) is None:
                            leases.drop(batch_id)
            leases.renew_due()
            for batch_id in leases.held():
                if self._stop.is_set():
                    return
                if not leases.holds(batch_id):
                    continue
                if surface.batches.drive(batch_id):
                    leases.forget(batch_id)

    def stop(self) -> None:
        """Finish the tick in progress, then release every lease held (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for surface in self.surfaces:
            surface.repo.leases.release_all()
