"""Per-line faults: make chosen request lines fail with a chosen HTTP status or error.

Two triggers, both documented in the README:
- rules, set from Python (`Emulator.faults.add(...)`) or `POST /_emulator/faults`, matching
  custom_ids with shell-style patterns;
- an in-line trigger in a request body: `"batchconf_fault": {"status_code": 500}` or
  `"batchconf_fault": {"error": {"code": "request_timeout", "message": "..."}}`.

A rule with `fraction` applies to that share of the matching lines, chosen by a hash of the
rule's id and the line's custom_id: the same lines on every run and on every attempt, so a
transient rule (`times`) fails a retried line's first attempts only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_BODY_KEY", "Fault", "FaultSet", "default_error_body"]

FAULT_BODY_KEY = "batchconf_fault"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    408: ("timeout_error", None),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def default_error_body(status_code: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error body for an HTTP status."""
    kind, code = _ERROR_TYPES.get(
        status_code, ("server_error" if status_code >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message or f"Injected fault: the request failed with HTTP {status_code}.",
            "type": kind,
            "param": None,
            "code": code,
        }
    }


@dataclass(frozen=True)
class Fault:
    """What happens to a matching line: an HTTP error (`status_code` >= 400, optional
    `body`) or a non-HTTP failure (`error_code`, `error_message`)."""

    custom_id: str = "*"
    status_code: int | None = None
    body: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    id: int = field(default=0, compare=False)
    times: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.fraction is not None and (
            not isinstance(self.fraction, (int, float)) or isinstance(self.fraction, bool) or not 0 < self.fraction <= 1
        ):
            raise ValueError(f"fraction must be a number in (0, 1], got {self.fraction!r}")
        if self.times is not None and (
            not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 1
        ):
            raise ValueError(f"times must be an integer >= 1 (a transient fault), got {self.times!r}")
        if (self.status_code is None) == (self.error_code is None):
            raise ValueError("a fault needs exactly one of status_code (HTTP failure) or error.code (non-HTTP failure)")
        if self.status_code is not None and not (isinstance(self.status_code, int) and 400 <= self.status_code <= 599):
            raise ValueError(f"status_code must be an integer 400..599, got {self.status_code!r}")

    @classmethod
    def from_json(cls, data: Any, *, id: int = 0) -> Fault:
        """Parse the JSON form (admin route or in-line trigger); ValueError on bad input."""
        if not isinstance(data, dict):
            raise ValueError(f"a fault must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"custom_id", "status_code", "body", "error", "id", "times", "fraction"}
        if unknown:
            raise ValueError(
                f"unknown fault keys {sorted(unknown)}; known: body, custom_id, error, fraction, status_code, times"
            )
        error = data.get("error")
        if error is not None and not (isinstance(error, dict) and isinstance(error.get("code"), str)):
            raise ValueError("fault 'error' must be an object with a string 'code'")
        body = data.get("body")
        if body is not None and not isinstance(body, dict):
            raise ValueError("fault 'body' must be a JSON object")
        custom_id = data.get("custom_id", "*")
        if not isinstance(custom_id, str):
            raise ValueError("fault 'custom_id' must be a string pattern")
        return cls(
            custom_id=custom_id,
            status_code=data.get("status_code"),
            body=body,
            error_code=error["code"] if error else None,
            error_message=str(error.get("message", "")) if error else None,
            id=id,
            times=data.get("times"),
            fraction=data.get("fraction"),
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"id": self.id, "custom_id": self.custom_id}
        if self.times is not None:
            out["times"] = self.times
        if self.fraction is not None:
            out["fraction"] = self.fraction
        if self.status_code is not None:
            out["status_code"] = self.status_code
            out["body"] = self.body
        else:
            out["error"] = {"code": self.error_code, "message": self.error_message}
        return out

    def matches(self, custom_id: str) -> bool:
        """Whether this rule applies to `custom_id` (for a `fraction` rule: whether the line is
        among the share it picks)."""
        if not fnmatch.fnmatchcase(custom_id, self.custom_id):
            return False
        if self.fraction is None:
            return True
        digest = hashlib.blake2b(f"{self.id}:{custom_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self.fraction * 2**64


class FaultSet:
    """The active fault rules, first match wins."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._next = 1
        self._lock = threading.Lock()

    def add(
        self,
        custom_id: str = "*",
        *,
        status_code: int | None = None,
        body: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        times: int | None = None,
        fraction: float | None = None,
    ) -> Fault:
        """Add a rule; returns it with its id. `times` makes it transient: it fails only the
        first `times` attempts at a line (see `TimingModel.backend_attempts`). `fraction`
        makes it apply to that share of the matching lines (a fixed choice per custom_id)."""
        with self._lock:
            fault = Fault(
                custom_id, status_code, body, error_code, error_message, id=self._next, times=times, fraction=fraction
            )
            self._next += 1
            self._rules.append(fault)
            return fault

    def add_json(self, data: Any) -> Fault:
        """Add a rule from its JSON form."""
        parsed = Fault.from_json(data)
        return self.add(
            parsed.custom_id,
            status_code=parsed.status_code,
            body=parsed.body,
            error_code=parsed.error_code,
            error_message=parsed.error_message,
            times=parsed.times,
            fraction=parsed.fraction,
        )

    def remove(self, fault_id: int) -> bool:
        """Remove one rule by id."""
        with self._lock:
            before = len(self._rules)
            self._rules = [f for f in self._rules if f.id != fault_id]
            return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def rules(self) -> list[Fault]:
        """The rules in match order."""
        return list(self._rules)

    def match(self, custom_id: str) -> Fault | None:
        """The first rule matching `custom_id`."""
        for rule in self._rules:
            if rule.matches(custom_id):
                return rule
        return None

    def __bool__(self) -> bool:
        return bool(self._rules)
