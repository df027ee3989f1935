"""The timing model: how long each phase of a batch takes, and how batches progress.

`progression` chooses what moves a batch:
- "per_poll": each retrieve of a batch moves it one status (like moto's state manager), so
  an unmodified polling loop finishes at once; the clock still drives expiry.
- "timed": statuses follow the clock and the durations below (server default, real time).
- "manual": only explicit steps (`Emulator.step`, the admin route) and clock-driven expiry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["PROGRESSIONS", "TimingModel"]

PROGRESSIONS = ("per_poll", "timed", "manual")


@dataclass(frozen=True)
class TimingModel:
    """Durations in clock seconds; `request_seconds` is one request's latency and
    `concurrency` how many requests run at once. `backend_attempts` is how many times the
    provider tries a line whose backend answered 408, 429, 5xx or timed out (1: no retry)."""

    progression: str = "per_poll"
    validation_seconds: float = 0.0
    request_seconds: float = 0.0
    concurrency: int = 1
    finalization_seconds: float = 0.0
    cancellation_seconds: float = 0.0
    shuffle: bool = True
    backend_attempts: int = 1

    def __post_init__(self) -> None:
        if self.progression not in PROGRESSIONS:
            raise ValueError(f"progression must be one of {PROGRESSIONS}, got {self.progression!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_seconds") and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{f.name} must be a number >= 0, got {value!r}")
        if not isinstance(self.concurrency, int) or isinstance(self.concurrency, bool) or self.concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {self.concurrency!r}")
        if (
            not isinstance(self.backend_attempts, int)
            or isinstance(self.backend_attempts, bool)
            or not (1 <= self.backend_attempts <= 10)
        ):
            raise ValueError(f"backend_attempts must be an integer 1..10, got {self.backend_attempts!r}")
        if not isinstance(self.shuffle, bool):
            raise ValueError(f"shuffle must be true or false, got {self.shuffle!r}")

    @classmethod
    def quick(cls) -> TimingModel:
        """Real-time default for `batchconf serve`: a small batch finishes within seconds."""
        return cls(
            progression="timed",
            validation_seconds=1.0,
            request_seconds=0.05,
            concurrency=100,
            finalization_seconds=1.0,
            cancellation_seconds=1.0,
        )

    def lines_done_by(self, elapsed: float, total: int) -> int:
        """How many of `total` requests have finished `elapsed` seconds into processing."""
        if self.request_seconds == 0:
            return total
        waves = math.floor(max(elapsed, 0.0) / self.request_seconds + 1e-9)
        return min(total, waves * self.concurrency)

    def processing_seconds(self, total: int) -> float:
        """How long processing `total` requests takes."""
        return math.ceil(total / self.concurrency) * self.request_seconds

    def to_json(self) -> dict[str, Any]:
        """JSON form for the admin routes."""
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> TimingModel:
        """A copy with `changes` applied; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown timing keys {unknown}; known: {sorted(known)}")
        return replace(self, **changes)
