"""Clocks: virtual (advanced explicitly) or real time with a scale factor.

Nothing in the emulator sleeps to emulate time: the engine asks the clock what time it is
and catches every batch up to that moment when the batch is next looked at.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock(Protocol):
    """What the engine needs from a clock."""

    kind: str

    def now(self) -> float:
        """Seconds since the epoch, as this clock sees them."""
        ...

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new time."""
        ...

    def describe(self) -> dict[str, object]:
        """A JSON-able description for the admin routes."""
        ...


class VirtualClock:
    """A clock that moves only when told to: a 24 h window passes in one call."""

    kind = "virtual"

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time() if start is None else start))
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got seconds={seconds}")
        with self._lock:
            self._now += seconds
            return self._now

    def describe(self) -> dict[str, object]:
        """JSON description."""
        return {"kind": self.kind, "now": self._now, "scale": 0.0}


class RealClock:
    """Wall time, optionally running `scale` times faster, plus any explicit advances."""

    kind = "real"

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale
        self._origin = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Scaled wall time."""
        return self._origin + (time.time() - self._origin) * self.scale + self._offset

    def advance(self, seconds: float) -> float:
        """Jump forward by `seconds`."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got seconds={seconds}")
        with self._lock:
            self._offset += seconds
        return self.now()

    def describe(self) -> dict[str, object]:
        """JSON description."""
        return {"kind": self.kind, "now": self.now(), "scale": self.scale}
