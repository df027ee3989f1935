"""Errors raised by the model layer, by name from the profile's error catalogue.

The model layer knows *which* contract error applies (`file_not_found`, with `id=...`); the
HTTP layer renders it into the dialect's envelope from the profile, in one place.
"""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """A contract error: `name` is a key of the profile's `[errors]` catalogue."""

    def __init__(self, name: str, **fields: object) -> None:
        self.name = name
        self.fields = fields
        super().__init__(f"{name}: {fields}")
