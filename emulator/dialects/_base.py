"""What a dialect is, and what its handlers work with.

A dialect owns a wire shape: its routes, its request parsers (wire body -> neutral
command), its serializers (neutral record -> wire body), its result lines, its error
envelope and the mutations of its wire. A `Surface` is one dialect served for one profile
over the model layer's services; a provider may have more than one (ScaiGrid's native API
and its OpenAI-compatible one beside it, over one store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.routing import Route

from schemas import Profile, RenderedError

from .._clock import Clock
from .._mutations import Mutation, Mutations
from ..http._common import base_url_of
from ..model.access import Access
from ..model.batches import BatchService
from ..model.engine import Engine
from ..model.files import FileService
from ..model.records import TERMINAL_ROLES, BatchRecord
from ..model.repository import Repository
from ..model.results import LineWriter

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["Dialect", "Surface"]

#: The most finished-batch bodies a surface keeps (all are dropped when it is full).
_KEPT_BODIES = 4096


class Dialect(Protocol):
    """One wire protocol of batch APIs."""

    name: str

    def line_writer(self, profile: Profile) -> LineWriter:
        """How this dialect writes result lines."""
        ...

    def mutations(self, profile: Profile) -> list[Mutation]:
        """The named violations of this dialect's wire."""
        ...

    def routes(self, surface: Surface) -> list[Route]:
        """The provider routes of `surface` (paths from its profile)."""
        ...

    def error_body(self, err: RenderedError) -> dict[str, Any]:
        """The error envelope for a rendered catalogue error."""
        ...

    def batch_json(self, surface: Surface, b: BatchRecord, base_url: str) -> dict[str, Any]:
        """The wire body of a batch (`base_url` is the origin clients reach this surface at)."""
        ...

    def event_json(
        self, surface: Surface, b: BatchRecord, event_id: str, event_type: str, created_at: int
    ) -> dict[str, Any]:
        """The body of a notification about `b` (dialects without notifications raise)."""
        ...


@dataclass
class Surface:
    """One dialect served for one profile: the services its handlers call."""

    profile: Profile
    dialect: Dialect
    repo: Repository
    files: FileService | None
    batches: BatchService
    engine: Engine
    access: Access
    mutations: Mutations
    clock: Clock
    lock: threading.RLock
    public_url: Callable[[], str] = field(default=lambda: "")
    #: batch id -> (origin, status, result references, the body serialized): `batch_body`.
    _bodies: dict[str, tuple[str, str, dict[str, str], orjson.Fragment]] = field(default_factory=dict, repr=False)

    def base_url(self, request: Request | None = None) -> str:
        """The origin clients use: the request's own, else the provider's public URL."""
        if request is not None:
            return base_url_of(request)
        return self.public_url().rstrip("/")

    def batch_json(self, b: BatchRecord, request: Request | None = None) -> dict[str, Any]:
        """`b` on this surface's wire."""
        return self.dialect.batch_json(self, b, self.base_url(request))

    def batch_body(self, b: BatchRecord, base: str) -> Any:
        """`b` on this surface's wire, as seen from origin `base` (`base_url(request)`), for
        a response about to be serialized by orjson: a dict, or for a finished batch its
        body serialized already (an `orjson.Fragment`), kept and given again while nothing
        it shows has changed. A list page is mostly finished batches, and building and
        serializing their bodies was most of its cost. Nothing is kept while a mutation
        is active (a mutation may change a body on every call)."""
        return self.batch_bodies([b], base)[0]

    def batch_bodies(self, page: list[BatchRecord], base: str) -> list[Any]:
        """`batch_body(b, base)` for each batch of `page`."""
        if self.mutations.any_active:
            return [self.dialect.batch_json(self, b, base) for b in page]
        bodies = self._bodies
        out: list[Any] = []
        for b in page:
            if b.role not in TERMINAL_ROLES:
                out.append(self.dialect.batch_json(self, b, base))
                continue
            # What a finished batch shows can still change in two ways only: its status (a
            # dialect may name the steps of a cancel or an expiry apart) and its result
            # references (a late output reference, a consistency fault, fills them after
            # completion). Counts, stamps and the model are final when a batch finishes.
            kept = bodies.get(b.id)
            if kept is not None and kept[0] == base and kept[1] == b.status and kept[2] == b.results:
                out.append(kept[3])
                continue
            body = orjson.Fragment(orjson.dumps(self.dialect.batch_json(self, b, base)))
            if len(bodies) >= _KEPT_BODIES:
                bodies.clear()
            bodies[b.id] = (base, b.status, dict(b.results), body)
            out.append(body)
        return out

    def forget_bodies(self) -> None:
        """Drop every kept body (the records they showed are gone: a reset)."""
        self._bodies.clear()
