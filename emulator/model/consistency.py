"""Eventual-consistency faults: what real providers show between a batch's state and its results.

Two kinds, set from Python (`Emulator.consistency.add(kind="late_output_file", polls=2)`) or
`POST /_emulator/consistency`:
- "late_output_file": a batch is reported `completed` before its output reference is set;
  the reference appears after `polls` retrieves of the completed batch (reported by users
  of OpenAI: a poll sees `completed` with `output_file_id: null` while the counts show
  successes, the next has the id). The file itself exists from completion; only the
  batch's reference to it lags. The OpenAI contract sets the reference at completion
  (openai-batch-spec.md §2.3), so the conformance suite flags this.
- "stuck_validating": a batch never leaves validation and, when its completion window
  passes, expires (only where the profile's expiry takes a validating batch).

`count` bounds how many batches a rule affects (None: every batch while it is active).
The engine asks `stuck(b)` before validating, `completed(b)` when a batch completes and
`polled(b)` on every retrieve; nothing else knows these faults exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import Profile

from .records import BatchRecord
from .rules import RuleList, check_count, rule_fields

__all__ = ["KINDS", "ConsistencyFault", "ConsistencyFaults", "held_in_validation"]

KINDS = ("late_output_file", "stuck_validating")
_KEYS = frozenset({"kind", "polls", "count"})
#: BatchRecord.extra keys: whether a batch is held in validation; its lagging output reference.
_STUCK = "consistency_stuck"
_LATE = "consistency_late_output"


@dataclass
class ConsistencyFault:
    """One rule: `kind` ("late_output_file" with `polls` >= 1, or "stuck_validating"), for
    the next `count` batches (None: all)."""

    kind: str
    polls: int | None = None
    count: int | None = None
    id: int = 0
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.kind == "late_output_file":
            if not isinstance(self.polls, int) or isinstance(self.polls, bool) or not 1 <= self.polls <= 1000:
                raise ValueError(f"late_output_file needs polls, an integer 1..1000, got {self.polls!r}")
        elif self.polls is not None:
            raise ValueError(f"{self.kind} takes no polls")
        check_count(self.count)

    @classmethod
    def from_json(cls, data: Any) -> ConsistencyFault:
        """Parse the admin route's JSON form; ValueError naming what is wrong."""
        data = rule_fields(data, _KEYS, "consistency fault")
        if "kind" not in data:
            raise ValueError(f"a consistency fault needs a kind, one of {list(KINDS)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """JSON form, with how many batches it has affected so far."""
        return {"id": self.id, "kind": self.kind, "polls": self.polls, "count": self.count, "hits": self.hits}


class ConsistencyFaults(RuleList[ConsistencyFault]):
    """The active consistency rules of one emulated provider (`profile`: which kinds its
    contract can show). Clearing them leaves batches already affected as they are."""

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        self.profile = profile

    def add(self, kind: str, *, polls: int | None = None, count: int | None = None) -> ConsistencyFault:
        """Add a rule; returns it with its id. ValueError for a kind the profile cannot show."""
        fault = ConsistencyFault(kind, polls, count)
        if kind == "stuck_validating" and self.profile is not None:
            expiry = self.profile.expiry
            if not expiry.enabled or "validating" not in expiry.from_roles:
                raise ValueError(
                    f"profile {self.profile.name!r} never expires a validating batch (expiry.from_roles "
                    f"{list(expiry.from_roles)}), so a batch stuck in validation would never end"
                )
        return self._append(fault)

    def add_json(self, data: Any) -> ConsistencyFault:
        """Add a rule from its JSON form."""
        parsed = ConsistencyFault.from_json(data)
        return self.add(parsed.kind, polls=parsed.polls, count=parsed.count)

    def _take(self, kind: str) -> ConsistencyFault | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and (rule.count is None or rule.hits < rule.count):
                    rule.hits += 1
                    return rule
        return None

    # -- what the engine asks ------------------------------------------------------------

    def stuck(self, b: BatchRecord) -> bool:
        """Whether `b` stays in validation (decided once, at its first validation)."""
        decided = b.extra.get(_STUCK)
        if decided is None:
            decided = bool(self._rules) and self._take("stuck_validating") is not None
            b.extra[_STUCK] = decided
        return bool(decided)

    def completed(self, b: BatchRecord) -> None:
        """`b` has just completed: a late_output_file rule hides its output reference."""
        if not self._rules or "output" not in b.results:
            return
        rule = self._take("late_output_file")
        if rule is not None:
            assert rule.polls is not None
            b.extra[_LATE] = {"output": b.results.pop("output"), "polls": rule.polls}

    def polled(self, b: BatchRecord) -> None:
        """A client retrieved `b`: after the rule's number of polls its output reference appears."""
        late = b.extra.get(_LATE)
        if late is None:
            return
        if late["polls"] > 0:
            late["polls"] -= 1
            return
        b.results["output"] = late["output"]
        del b.extra[_LATE]


def held_in_validation(b: BatchRecord) -> bool:
    """Whether a consistency fault holds `b` in validation (decided at its first validation)."""
    return bool(b.extra.get(_STUCK))
