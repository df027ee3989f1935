"""Named mutations: deliberate contract violations, off by default, acting through seams.

Each mutation is a bug that real implementations have shipped; the conformance suite must
fail on every one of them (that is how the suite proves its teeth). A mutation is a small
function attached to one named *seam*, a point where the model layer or a dialect hands a
value through `Mutations.apply(point, value, **context)`: the wire body of a batch, the
result lines before they are stored, the decision to refuse a cancel. No code branches on a
mutation's name; the catalogue holds the behaviour.

The catalogue depends on the profile: mutations of the model layer apply to every dialect
(or to those whose profile has what they break), wire mutations to their dialect only.
Switch them on from Python (`emu.mutations.enable("drop_output_line")`) or with
`PUT /_emulator/mutations`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Mutation", "Mutations", "constant"]

T = TypeVar("T")


@dataclass(frozen=True)
class Mutation:
    """One named violation: `apply(value, **context)` bends the value handed through `point`."""

    name: str
    description: str
    point: str
    apply: Callable[..., Any]


def constant(value: Any) -> Callable[..., Any]:
    """A mutation body that replaces whatever its seam hands it with `value`."""
    return lambda _value, **_: value


class Mutations:
    """The mutations one emulator offers (its catalogue) and the active ones."""

    def __init__(self, catalogue: Iterable[Mutation] = ()) -> None:
        self._catalogue: dict[str, Mutation] = {m.name: m for m in catalogue}
        self._on: frozenset[str] = frozenset()
        self._by_point: dict[str, tuple[Mutation, ...]] = {}
        self._lock = threading.Lock()

    @property
    def catalogue(self) -> Mapping[str, str]:
        """Every mutation this emulator offers: name -> the contract violation it makes."""
        return {name: m.description for name, m in self._catalogue.items()}

    def active(self, point: str) -> bool:
        """Whether any active mutation acts at `point` (cheap: hot paths ask this first)."""
        return point in self._by_point

    @property
    def any_active(self) -> bool:
        """Whether any mutation is active."""
        return bool(self._on)

    def apply(self, point: str, value: T, **context: Any) -> T:
        """`value` as the active mutations at `point` leave it (unchanged when none are)."""
        for mutation in self._by_point.get(point, ()):
            value = mutation.apply(value, **context)
        return value

    def on(self, name: str) -> bool:
        """Whether mutation `name` is active."""
        return name in self._on

    def enable(self, *names: str) -> None:
        """Switch mutations on; unknown names raise ValueError listing the known ones."""
        self.set(self._on | set(names))

    def disable(self, *names: str) -> None:
        """Switch mutations off."""
        self.set(self._on - set(names))

    def set(self, names: set[str] | frozenset[str] | list[str]) -> None:
        """Make exactly `names` active."""
        unknown = sorted(set(names) - set(self._catalogue))
        if unknown:
            raise ValueError(f"unknown mutations {unknown}; known: {sorted(self._catalogue)}")
        by_point: dict[str, list[Mutation]] = {}
        # Catalogue order, so that two mutations at one seam always compose the same way.
        for name, mutation in self._catalogue.items():
            if name in names:
                by_point.setdefault(mutation.point, []).append(mutation)
        with self._lock:
            self._on = frozenset(names)
            self._by_point = {point: tuple(ms) for point, ms in by_point.items()}

    def clear(self) -> None:
        """Switch every mutation off."""
        self.set(frozenset())

    @property
    def enabled(self) -> list[str]:
        """The active mutations, sorted."""
        return sorted(self._on)
