"""ScaiGrid's native dialect: input by URL or inline base64, mixed endpoints in one batch,
one results file behind `results_url`, webhooks when a batch ends."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from schemas import Profile, RenderedError

from ..._mutations import Mutation
from ...model.records import BatchRecord
from ...model.results import LineWriter
from .._base import Surface
from . import serialize
from .mutations import scaigrid_mutations
from .routes import parse_create, scaigrid_routes

__all__ = ["DIALECT", "ScaiGridDialect", "parse_create"]


class ScaiGridDialect:
    """ScaiGrid's native wire protocol."""

    name = "scaigrid"

    def line_writer(self, profile: Profile) -> LineWriter:
        """`{custom_id, status, response | error}` lines."""
        return serialize.ScaiGridLines()

    def mutations(self, profile: Profile) -> list[Mutation]:
        """ScaiGrid's own mutations."""
        return scaigrid_mutations(profile)

    def routes(self, surface: Surface) -> list[Route]:
        """The native batch routes."""
        return scaigrid_routes(surface)

    def error_body(self, err: RenderedError) -> dict[str, Any]:
        """`{"error": {code, message, param}}`."""
        return serialize.error_body(err)

    def batch_json(self, surface: Surface, b: BatchRecord, base_url: str) -> dict[str, Any]:
        """The ScaiGrid batch object."""
        return serialize.batch_json(surface, b, base_url)

    def event_json(
        self, surface: Surface, b: BatchRecord, event_id: str, event_type: str, created_at: int
    ) -> dict[str, Any]:
        """`{id, type, created_at, data}`."""
        return serialize.event_json(surface, b, event_id, event_type, created_at)


DIALECT = ScaiGridDialect()
