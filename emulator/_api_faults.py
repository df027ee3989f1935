"""API-level faults: answers a client's retry logic must survive (429 with Retry-After, 5xx,
stalls), on chosen operations, for a number or a fraction of calls.

Per-line faults (`emulator._faults`) fail lines inside a batch; these fail the HTTP call
itself, before the provider's handler runs, so nothing is created, moved or read. A stall
holds the call for real seconds (it emulates a network, not the emulator's clock) and then
answers 504, so a client whose timeout is shorter sees a timeout.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from typing import Any

from .model.rules import RuleList, check_count, check_fraction, rule_fields

__all__ = ["ApiFault", "ApiFaultSet"]

_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_KEYS = frozenset({"operation", "status_code", "retry_after", "stall_seconds", "count", "fraction"})


@dataclass
class ApiFault:
    """One rule: calls of operations matching `operation` (shell pattern over the profile's
    operation names: create_batch, retrieve_batch, list_batches, file_content, ...) get
    `status_code` (with `Retry-After: retry_after` if set), or are held `stall_seconds` and
    then get a 504. `count` bounds how many calls fail (None: every one); `fraction` fails
    that share of the matching calls (seeded, so a run repeats)."""

    operation: str = "*"
    status_code: int | None = None
    retry_after: float | None = None
    stall_seconds: float | None = None
    count: int | None = None
    fraction: float | None = None
    id: int = 0
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if (self.status_code is None) == (self.stall_seconds is None):
            raise ValueError("an API fault needs exactly one of status_code or stall_seconds")
        if self.status_code is not None and self.status_code not in _STATUSES:
            raise ValueError(f"status_code must be one of {sorted(_STATUSES)}, got {self.status_code!r}")
        for name in ("retry_after", "stall_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.stall_seconds is not None and self.stall_seconds > 600:
            raise ValueError("stall_seconds must be at most 600")
        check_count(self.count)
        check_fraction(self.fraction)
        if not isinstance(self.operation, str) or not self.operation:
            raise ValueError("operation must be a non-empty string pattern")

    @classmethod
    def from_json(cls, data: Any) -> ApiFault:
        """Parse the admin route's JSON form; ValueError naming what is wrong."""
        return cls(**rule_fields(data, _KEYS, "API fault"))

    def to_json(self) -> dict[str, Any]:
        """JSON form, with how many calls it has failed so far."""
        return {
            "id": self.id,
            "operation": self.operation,
            "status_code": self.status_code,
            "retry_after": self.retry_after,
            "stall_seconds": self.stall_seconds,
            "count": self.count,
            "fraction": self.fraction,
            "hits": self.hits,
        }


class ApiFaultSet(RuleList[ApiFault]):
    """The active API fault rules; the first rule that fires wins."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self._rng = random.Random(f"api-faults:{seed}")

    def add(self, operation: str = "*", **fields: Any) -> ApiFault:
        """Add a rule (`status_code=429, retry_after=1, count=2`, or `stall_seconds=5`)."""
        return self._append(ApiFault(operation, **fields))

    def add_json(self, data: Any) -> ApiFault:
        """Add a rule from its JSON form."""
        parsed = ApiFault.from_json(data)
        fields = {k: v for k, v in parsed.to_json().items() if k not in ("id", "hits", "operation")}
        return self.add(parsed.operation, **fields)

    def take(self, operation: str) -> ApiFault | None:
        """The rule that fails this call of `operation`, if one does (and count it)."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if not fnmatch.fnmatchcase(operation, rule.operation):
                    continue
                if rule.count is not None and rule.hits >= rule.count:
                    continue
                if rule.fraction is not None and self._rng.random() >= rule.fraction:
                    continue
                rule.hits += 1
                return rule
        return None
