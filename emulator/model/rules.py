"""Numbered fault rules: the list every kind of fault keeps, and the checks their fields share.

API faults, storage faults and consistency faults each hold their own rule type, matched
their own way; what they share is here: ids handed out in order, the match order, clearing,
and the validation of `count` and `fraction`.
"""

from __future__ import annotations

import threading
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["RuleList", "check_count", "check_fraction", "rule_fields"]


class _Numbered(Protocol):
    id: int


R = TypeVar("R", bound=_Numbered)


class RuleList(Generic[R]):
    """Rules in match order (the order added), each given the next id when added."""

    def __init__(self) -> None:
        self._rules: list[R] = []
        self._next = 1
        self._lock = threading.Lock()

    def _append(self, rule: R) -> R:
        with self._lock:
            rule.id = self._next
            self._next += 1
            self._rules.append(rule)
        return rule

    def rules(self) -> list[R]:
        """The rules, in match order."""
        return list(self._rules)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def __bool__(self) -> bool:
        return bool(self._rules)


def rule_fields(data: Any, known: frozenset[str], noun: str) -> dict[str, Any]:
    """`data`, the JSON form of a rule the admin routes take, checked to be an object with
    only `known` keys; ValueError naming what is wrong (`noun`: "storage fault", ...)."""
    if not isinstance(data, dict):
        article = "an" if noun[:1].lower() in "aeiou" else "a"
        raise ValueError(f"{article} {noun} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {noun} keys {sorted(unknown)}; known: {sorted(known)}")
    return data


def check_count(count: object) -> None:
    """`count` is None or an integer >= 1 (ValueError otherwise)."""
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError(f"count must be an integer >= 1, got {count!r}")


def check_fraction(fraction: object) -> None:
    """`fraction` is None or a number in (0, 1] (ValueError otherwise)."""
    if fraction is not None and (
        not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1
    ):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
