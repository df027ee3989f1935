"""Result lines, per dialect: how a success, an HTTP error or a failure is written."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

__all__ = ["LineWriter", "OpenAILines", "ScaiGridLines", "line_writer"]


class LineWriter(Protocol):
    """Serializes one result line (newline included)."""

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A line for a request that got an HTTP answer (success or HTTP error)."""
        ...

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A line for a request that got no HTTP answer (expired, cancelled, timeout)."""
        ...


class OpenAILines:
    """`{id, custom_id, response: {status_code, request_id, body} | null, error: {code, message} | null}`."""

    def __init__(self, line_prefix: str, request_prefix: str, *, status_as_string: bool = False) -> None:
        self.line_prefix = line_prefix
        self.request_prefix = request_prefix
        self.status_as_string = status_as_string

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A response line."""
        status: int | str = str(status_code) if self.status_as_string else status_code
        return orjson.dumps(
            {
                "id": self.line_prefix + key,
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": self.request_prefix + key, "body": body},
                "error": None,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A failure line."""
        return orjson.dumps(
            {
                "id": self.line_prefix + key,
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": message},
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )


class ScaiGridLines:
    """`{custom_id, status: "ok", response}` or `{custom_id, status: "error", error: {code, message}}`."""

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A response line; HTTP errors become `status: error` with the body's message."""
        if 200 <= status_code < 300:
            return orjson.dumps(
                {"custom_id": custom_id, "status": "ok", "response": body}, option=orjson.OPT_APPEND_NEWLINE
            )
        err = (body or {}).get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else None
        return self.failure(key, custom_id, f"http_{status_code}", str(message or f"HTTP {status_code}"))

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A failure line."""
        return orjson.dumps(
            {"custom_id": custom_id, "status": "error", "error": {"code": code, "message": message}},
            option=orjson.OPT_APPEND_NEWLINE,
        )


def line_writer(line_format: str, line_prefix: str, request_prefix: str, *, bad_shape: bool = False) -> LineWriter:
    """The writer for a profile's `output.line_format`."""
    if line_format == "scaigrid":
        return ScaiGridLines()
    return OpenAILines(line_prefix, request_prefix, status_as_string=bad_shape)
