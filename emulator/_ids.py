"""Identifiers: the profile's prefix plus random hex, like the providers' own."""

from __future__ import annotations

import random
import threading

__all__ = ["IdFactory"]


class IdFactory:
    """Makes ids with a seeded generator, so a seeded emulator run is repeatable."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def hex(self, nbytes: int = 12) -> str:
        """`2 * nbytes` random hex digits."""
        with self._lock:
            return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def make(self, prefix: str) -> str:
        """A new id; a prefix of '' gives a UUID-shaped id (providers that use UUIDs)."""
        if prefix:
            return prefix + self.hex(12)
        h = self.hex(16)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
