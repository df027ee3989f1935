"""Transitions: a batch enters a canonical role, and the profile's native status for it.

Every move is checked against the profile's transition graph; only a mutation may force a
move the graph does not have (`strict=False`). The moves a batch makes on its own (what
each role does next, and when) are the engine's table (`engine.MOVES`).
"""

from __future__ import annotations

from schemas import Profile

from .records import BatchRecord

__all__ = ["Transitions"]


class Transitions:
    """Enters roles for one profile: native status, timestamps, history."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.life = profile.lifecycle

    def start(self, b: BatchRecord, t: float) -> None:
        """Put a new batch in the profile's initial status (role validating)."""
        initial = self.life.initial
        b.status = initial
        b.role = "validating"
        b.entered["validating"] = t
        stamp = self.life.timestamps.get(initial)
        if stamp:
            b.stamps[stamp] = int(t)
        b.history.append(initial)

    def has(self, role: str) -> bool:
        """Whether the dialect has a status for `role`."""
        return self.life.status(role) is not None

    def enter(self, b: BatchRecord, role: str, t: float, *, strict: bool = True) -> None:
        """Move `b` into `role` at time `t` (never before its last move)."""
        native = self.life.status(role)
        if native is None:
            if strict:
                raise RuntimeError(f"profile {self.profile.name!r} has no status for role {role!r}")
            native = role
        if strict and not self.life.allows(b.status, native):
            raise RuntimeError(f"engine bug: {b.status!r} -> {native!r} is not in the profile's graph")
        t = max(t, max(b.entered.values(), default=t))
        b.status = native
        b.role = role
        b.entered[role] = t
        stamp = self.life.timestamps.get(native)
        if stamp and stamp not in b.stamps:
            b.stamps[stamp] = int(t)
        b.history.append(native)
