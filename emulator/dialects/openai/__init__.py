"""The OpenAI dialect: Files + Batches, two result files, `{"error": {...}}` envelopes.

OpenAI itself, Azure OpenAI, OVHcloud, gateways such as TrueFoundry, and ScaiGrid's
compatible surface all speak it; their profiles differ, this code does not.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from schemas import Profile, RenderedError

from ..._mutations import Mutation
from ...model.records import BatchRecord
from ...model.results import LineWriter
from .._base import Surface
from .mutations import openai_mutations
from .routes import openai_routes, parse_create
from .serialize import OpenAILines, batch_json, error_body, file_json, list_json

__all__ = ["DIALECT", "OpenAIDialect", "batch_json", "file_json", "list_json", "parse_create"]


class OpenAIDialect:
    """The OpenAI wire protocol."""

    name = "openai"

    def line_writer(self, profile: Profile) -> LineWriter:
        """`{id, custom_id, response, error}` lines."""
        return OpenAILines(profile)

    def mutations(self, profile: Profile) -> list[Mutation]:
        """The OpenAI wire's mutations."""
        return openai_mutations(profile)

    def routes(self, surface: Surface) -> list[Route]:
        """Files and Batches routes."""
        return openai_routes(surface)

    def error_body(self, err: RenderedError) -> dict[str, Any]:
        """`{"error": {message, type, param, code}}`."""
        return error_body(err)

    def batch_json(self, surface: Surface, b: BatchRecord, base_url: str) -> dict[str, Any]:
        """The OpenAI Batch object."""
        return batch_json(surface, b)

    def event_json(
        self, surface: Surface, b: BatchRecord, event_id: str, event_type: str, created_at: int
    ) -> dict[str, Any]:
        """OpenAI batches announce nothing."""
        raise NotImplementedError("the OpenAI dialect has no batch notifications")


DIALECT = OpenAIDialect()
