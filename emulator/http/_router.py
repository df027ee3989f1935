"""Starlette's router, walking its route table once per distinct request line, not per request.

Starlette tries each route in turn, a regular expression each: the emulator's surfaces and
admin routes make the retrieve of a batch the eighth try, about a tenth of a served
retrieve's time. Which route a request reaches depends only on its method and path, and
clients repeat both (a poll loop retrieves one batch again and again; every create posts to
one path), so the answer is remembered for the most recent request lines.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

__all__ = ["RememberingRouter"]

#: The most request lines remembered (all are forgotten when the table is full: ids in paths
#: make the lines unbounded, and a cleared table costs one walk per line).
REMEMBERED = 4096


class RememberingRouter(Router):
    """A `Router` (no slash redirects) that remembers the route each (method, path) fully
    matched. Requests that match no route fully (404, 405) take Starlette's own walk, so
    they are answered exactly as Starlette answers them."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes, redirect_slashes=False)
        self._found: dict[tuple[str, str, str], tuple[BaseRoute, dict[str, Any]]] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        found = self._found.get(key)
        if found is None:
            found = self._first_full_match(scope)
            if found is None:
                await super().app(scope, receive, send)
                return
            if len(self._found) >= REMEMBERED:
                self._found.clear()
            self._found[key] = found
        route, child_scope = found
        scope.setdefault("router", self)
        scope["route"] = route
        scope.update(child_scope)
        # Each request gets its own parameters: a handler may change them.
        scope["path_params"] = dict(child_scope.get("path_params", {}))
        await route.handle(scope, receive, send)

    def _first_full_match(self, scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
        """The route Starlette would hand a fully matched request to, with its child scope."""
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, dict(child_scope)
        return None
