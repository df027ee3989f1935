"""The emulator's admin surface (`/_emulator/...`), for tests that need to steer a target.

Only targets with controls have these routes (the in-process emulator, `batchconf serve`,
or a URL given `--target-controls`); tests using them carry `needs_control`. Every
operation that changes shared state has a context manager that restores it, so a test
leaves the emulator as it found it (timing, faults, mutations). An admin call that fails
raises `ControlError`: that is a harness problem, not a finding about the target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

__all__ = ["Control", "ControlError"]

_PREFIX = "/_emulator"


class ControlError(RuntimeError):
    """An admin route answered with an error status or a body that is not JSON."""


#: Where the admin token of a guarded server comes from, and the header it travels in.
ADMIN_TOKEN_ENV = "BATCHCONF_ADMIN_TOKEN"
ADMIN_TOKEN_HEADER = "X-Batchconf-Admin-Token"


class Control:
    """Client of the admin routes.

    `root_url` is where `/_emulator` lives; by default the scheme, host and port of the
    `http` client's base URL (admin routes sit off the provider's own paths). A server that
    guards its admin routes with a token gets it from `token`, else from the environment
    variable `BATCHCONF_ADMIN_TOKEN`; it is sent only on admin requests, never printed.
    """

    def __init__(self, http: httpx.Client, root_url: str | None = None, token: str | None = None) -> None:
        self._http = http
        root = root_url if root_url is not None else str(http.base_url.copy_with(raw_path=b"/"))
        self._root = root.rstrip("/")
        token = token if token is not None else os.environ.get(ADMIN_TOKEN_ENV)
        self._headers = {ADMIN_TOKEN_HEADER: token} if token else {}

    # -- State ------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """`GET /_emulator/info`: profile, version, progression, clock."""
        return self._dict("GET", "/info")

    def reset(self) -> dict[str, Any]:
        """Forget every file, batch, fault and mutation (the clock is kept)."""
        return self._dict("POST", "/reset")

    # -- Clock ------------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """`{"now": ..., "kind": "virtual"|"real", "scale": ...}`."""
        return self._dict("GET", "/clock")

    def now(self) -> float:
        """The emulator's current time (seconds since the epoch)."""
        return float(self.clock()["now"])

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the emulator's clock forward by `seconds`."""
        return self._dict("POST", "/clock/advance", json={"seconds": seconds})

    # -- Timing -----------------------------------------------------------------------------

    def timing(self) -> dict[str, Any]:
        """The timing model (progression and phase durations)."""
        return self._dict("GET", "/timing")

    def set_timing(self, **changes: Any) -> dict[str, Any]:
        """Change some fields of the timing model; returns the whole model."""
        return self._dict("PUT", "/timing", json=changes)

    @contextmanager
    def timing_override(self, **changes: Any) -> Iterator[dict[str, Any]]:
        """Apply `changes` to the timing model for the `with` block, then restore it."""
        before = self.timing()
        try:
            yield self.set_timing(**changes)
        finally:
            self.set_timing(**before)

    # -- Batches ----------------------------------------------------------------------------

    def step(self, batch_id: str, lines: int | None = None) -> dict[str, Any]:
        """One transition of `batch_id`, or `lines` more lines processed while it runs.

        Returns the batch in its wire shape.
        """
        body: dict[str, Any] = {} if lines is None else {"lines": lines}
        return self._dict("POST", f"/batches/{batch_id}/step", json=body)

    # -- Faults -----------------------------------------------------------------------------

    def faults(self) -> list[dict[str, Any]]:
        """The active fault rules, in match order."""
        body = self._call("GET", "/faults")
        rules = body.get("data", body.get("faults")) if isinstance(body, dict) else body
        if not isinstance(rules, list):
            raise ControlError(f"GET {_PREFIX}/faults: expected a list of rules, got {body!r}")
        return rules

    def add_fault(
        self,
        custom_id: str,
        *,
        status_code: int | None = None,
        body: Mapping[str, Any] | None = None,
        error: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Make lines whose custom_id matches the glob fail: with an HTTP `status_code`
        (optional error `body`), or with a non-HTTP `error` `{code, message}`."""
        rule: dict[str, Any] = {"custom_id": custom_id}
        if status_code is not None:
            rule["status_code"] = status_code
        if body is not None:
            rule["body"] = dict(body)
        if error is not None:
            rule["error"] = dict(error)
        return self._dict("POST", "/faults", json=rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "/faults")

    def remove_faults(self, custom_id: str) -> int:
        """Remove the rules whose pattern is exactly `custom_id`, keeping the others in
        order; returns how many were removed."""
        before = self.faults()
        kept = [rule for rule in before if rule.get("custom_id") != custom_id]
        if len(kept) != len(before):
            self._replace_faults(kept)
        return len(before) - len(kept)

    def _replace_faults(self, rules: list[dict[str, Any]]) -> None:
        self.clear_faults()
        for rule in rules:
            self.add_fault(
                str(rule.get("custom_id", "*")),
                status_code=rule.get("status_code"),
                body=rule.get("body"),
                error=rule.get("error"),
            )

    @contextmanager
    def fault(
        self,
        custom_id: str,
        *,
        status_code: int | None = None,
        body: Mapping[str, Any] | None = None,
        error: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """A fault rule for the `with` block; the rules active before it are restored."""
        before = self.faults()
        try:
            yield self.add_fault(custom_id, status_code=status_code, body=body, error=error)
        finally:
            self._replace_faults(before)

    # -- Webhooks ---------------------------------------------------------------------------

    def webhooks(self) -> dict[str, Any]:
        """`GET /_emulator/webhooks`: `{"events": [...], "deliveries": [...], "pending": N}`
        (the events of ended batches, every delivery attempt, and the events not yet
        delivered)."""
        return self._dict("GET", "/webhooks")

    def deliver_webhooks(self) -> dict[str, Any]:
        """`POST /_emulator/webhooks`: deliver what is due now, then the same state as
        `webhooks()`."""
        return self._dict("POST", "/webhooks")

    # -- Mutations --------------------------------------------------------------------------

    def mutations(self) -> dict[str, Any]:
        """`{"enabled": [...], "available": ...}`: the named contract violations."""
        return self._dict("GET", "/mutations")

    def set_mutations(self, enabled: list[str]) -> dict[str, Any]:
        """Enable exactly the named mutations."""
        return self._dict("PUT", "/mutations", json={"enabled": enabled})

    # -- Plumbing ---------------------------------------------------------------------------

    def _dict(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        body = self._call(method, path, json=json)
        if not isinstance(body, dict):
            raise ControlError(f"{method} {_PREFIX}{path}: expected a JSON object, got {body!r}")
        return body

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        url = f"{self._root}{_PREFIX}{path}"
        response = self._http.request(method, url, json=json, headers=self._headers)
        if not 200 <= response.status_code < 300:
            raise ControlError(f"{method} {_PREFIX}{path} answered HTTP {response.status_code}: {response.text[:400]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ControlError(f"{method} {_PREFIX}{path}: body is not JSON: {response.text[:200]!r}") from None
