"""Who may do what: API keys, and isolation between owners."""

from __future__ import annotations

from .._mutations import Mutations
from . import seams
from .errors import ApiError
from .records import Owner

__all__ = ["Access"]


class Access:
    """Authenticates keys and decides what an owner may see (mutations may relax both)."""

    def __init__(self, api_keys: tuple[str, ...] | frozenset[str], mutations: Mutations) -> None:
        self.api_keys = frozenset(api_keys)
        self._mutations = mutations

    def authenticate(self, key: str | None, project: str | None) -> Owner:
        """The owner behind a key; raises the dialect's 401 errors."""
        if not self._mutations.apply(seams.ACCESS_REQUIRE_KEY, True):
            return (key or "anonymous", project or "")
        if not key:
            raise ApiError("missing_auth")
        if key not in self.api_keys:
            raise ApiError("unauthorized")
        return (key, project or "")

    def owns(self, owner: Owner, obj_owner: Owner) -> bool:
        """Isolation: each key (and project) sees only its own objects."""
        return owner == obj_owner or not self._mutations.apply(seams.ACCESS_ISOLATE, True)

    @property
    def isolated(self) -> bool:
        """Whether isolation is in force."""
        return bool(self._mutations.apply(seams.ACCESS_ISOLATE, True))
