"""Which adapter serves a profile: by `profile.dialect`, then by the first chooser that
accepts the profile (the most recently registered first, so a specialised adapter, such as
one for object-storage input and results, can be added for profiles of an existing dialect)."""

from __future__ import annotations

from schemas import Profile

from ._base import Chooser, Dialect

__all__ = ["UnknownDialect", "adapter_for", "known_dialects", "register"]

_REGISTRY: dict[str, list[tuple[Chooser, type[Dialect]]]] = {}


class UnknownDialect(LookupError):
    """No adapter serves the profile (a harness error)."""


def _always(profile: Profile) -> bool:
    return True


def register(adapter: type[Dialect], *, when: Chooser | None = None) -> type[Dialect]:
    """Register `adapter` for the profiles of `adapter.name` that `when(profile)` accepts
    (default: every one); later registrations are tried first."""
    _REGISTRY.setdefault(adapter.name, []).insert(0, (when or _always, adapter))
    return adapter


def known_dialects() -> tuple[str, ...]:
    """The dialect names with at least one adapter."""
    return tuple(sorted(_REGISTRY))


def adapter_for(profile: Profile) -> Dialect:
    """The dialect adapter for `profile`; `UnknownDialect` names the known dialects."""
    for when, adapter in _REGISTRY.get(profile.dialect, ()):
        if when(profile):
            return adapter(profile)
    raise UnknownDialect(
        f"no dialect adapter serves profile {profile.name!r} (dialect {profile.dialect!r}); "
        f"known dialects: {', '.join(known_dialects()) or 'none'}"
    )
