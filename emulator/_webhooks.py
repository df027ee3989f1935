"""Outbound webhooks: queue an event, POST it when due, retry with backoff on the clock.

The dispatcher knows no dialect: the caller gives the body (its own envelope, with the event
id in it) and the event's headers (`X-ScaiGrid-Event`, ...); the dispatcher adds only
`Content-Type: application/json` unless the caller set one. A delivery is an HTTP POST whose
2xx answer marks the event delivered, never to be sent again; a non-2xx answer (redirects are
never followed) or a transport error schedules the next attempt `backoff_seconds[attempt-1]`
later *on the emulator's clock*, up to `max_attempts`. With a `VirtualClock` a retry becomes
due when the clock is advanced; nothing here sleeps to emulate time.

Where deliveries go is a security boundary (an emulator must not become a way to make a host
POST anywhere), so every URL is checked against `allowed_hosts` at create time by the service
and again before every attempt.

Attempts run synchronously in `deliver_due()`, outside the lock, either called by the owner
or by the pump thread (`start()`), which wakes every `interval` real seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import re
import secrets
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

import httpx
import orjson

from ._clock import Clock

__all__ = ["Delivery", "WebhookDispatcher", "WebhookEvent"]

log = logging.getLogger("batchconf.webhooks")

DEFAULT_ALLOWED_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
_MAX_URL_LENGTH: Final = 2048
# RFC 9110 token characters, for header names; values must not break the header line.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# Framing headers belong to the HTTP layer, not to an event.
_RESERVED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})

State = Literal["pending", "delivered", "gave_up"]


@dataclass(frozen=True)
class WebhookEvent:
    """An event to deliver: its body is serialized once, so every attempt sends the same bytes."""

    id: str
    type: str
    batch_id: str
    url: str
    body: bytes
    headers: Mapping[str, str]
    created_at: float


@dataclass
class Delivery:
    """One attempt to deliver an event (`attempt` counts from 1 per event, resends included).

    `at` is the clock time the attempt started; `status_code` is the answer's (None if there
    was none); `error` says why the attempt failed (None when `delivered`).
    """

    event_id: str
    type: str
    batch_id: str
    url: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    delivered: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; holds no request header, so nothing secret."""
        return dataclasses.asdict(self)


@dataclass(eq=False)
class _Entry:
    event: WebhookEvent
    seq: int
    state: State = "pending"
    next_attempt_at: float | None = None
    attempts: int = 0  # every attempt of the event
    run_attempts: int = 0  # attempts of the current run (max_attempts bounds these)
    times_delivered: int = 0
    resends_owed: int = 0  # resend() while a run was still pending: another run after it
    in_flight: bool = False

    def start_run(self, now: float) -> None:
        self.state = "pending"
        self.run_attempts = 0
        self.next_attempt_at = now

    def end_run(self, state: State, now: float) -> None:
        self.state = state
        self.next_attempt_at = None
        if self.resends_owed:
            self.resends_owed -= 1
            self.start_run(now)


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    # A refused URL is refused on every attempt: no point retrying.
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Delivers webhook events to URLs on allowed hosts, with retries on the given clock.

    `backoff_seconds[n-1]` is the wait after the n-th failed attempt of a run (the last value
    repeats if there are more attempts than values); `timeout` bounds each attempt in real
    seconds; `transport` replaces the network (tests, or an in-process receiver).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
        max_attempts: int = 5,
        backoff_seconds: Sequence[float] = (1, 2, 4, 8),
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if any(b < 0 for b in backoff_seconds):
            raise ValueError(f"backoff_seconds must all be >= 0, got {list(backoff_seconds)}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if isinstance(allowed_hosts, str):
            # A bare string would be read as a set of one-letter hosts.
            raise TypeError("allowed_hosts must be an iterable of host names, not a string")
        self._clock = clock
        self._allowed = frozenset(h.strip().strip("[]").lower() for h in allowed_hosts)
        self._max_attempts = max_attempts
        self._backoff = tuple(float(b) for b in backoff_seconds)
        self._timeout = httpx.Timeout(timeout)
        self._join_timeout = timeout + 1.0
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._deliveries: list[Delivery] = []
        self._seq = itertools.count()
        # clear() bumps this, so an attempt in flight across a clear() leaves no trace.
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    # -- URLs ---------------------------------------------------------------------------------

    @property
    def allowed_hosts(self) -> list[str]:
        """The hosts deliveries may go to, sorted ("*" allows any)."""
        return sorted(self._allowed)

    def check_url(self, url: str) -> None:
        """Raise ValueError (naming the URL and the reason) unless `url` may receive webhooks.

        The scheme must be http or https, the URL must carry no user info, and its host must
        be one of `allowed_hosts` (exact, case-insensitive; `"*"` allows any host).
        """
        self._parse_checked(url)

    def _parse_checked(self, url: str) -> httpx.URL:
        # The sender's own parser decides the host that is checked, so the host checked is
        # the host connected to (no disagreement between two URL parsers to exploit).
        if not isinstance(url, str) or not url:
            raise ValueError(f"webhook URL {url!r} is refused: it must be a non-empty string")
        if len(url) > _MAX_URL_LENGTH:
            raise ValueError(f"webhook URL {url[:64]!r}... is refused: it is longer than {_MAX_URL_LENGTH} characters")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"webhook URL {url!r} is refused: it does not parse ({exc})") from None
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"webhook URL {url!r} is refused: the scheme must be http or https, not {parsed.scheme!r}")
        if parsed.userinfo:
            raise ValueError(f"webhook URL {url!r} is refused: it must not carry user info (user:password@)")
        host = parsed.host
        if not host:
            raise ValueError(f"webhook URL {url!r} is refused: it has no host")
        if parsed.port is not None and not 1 <= parsed.port <= 65535:
            raise ValueError(f"webhook URL {url!r} is refused: port {parsed.port} is out of range")
        if "*" not in self._allowed and host.lower() not in self._allowed:
            allowed = ", ".join(sorted(self._allowed)) or "none"
            raise ValueError(f"webhook URL {url!r} is refused: host {host!r} is not an allowed host ({allowed})")
        return parsed

    # -- queueing -----------------------------------------------------------------------------

    def enqueue(
        self,
        url: str,
        event_type: str,
        payload: Mapping[str, Any],
        batch_id: str,
        *,
        headers: Mapping[str, str] = MappingProxyType({}),
        event_id: str | None = None,
    ) -> WebhookEvent:
        """Queue an event, due now; returns it. `payload` is the whole body, sent as given.

        The event id is `event_id`, else the payload's `"id"`, else a new `evt_<24 hex>`
        (the body is not changed to carry it). The URL is not checked here but before each
        attempt, where a refusal is recorded as a failed delivery.
        """
        body_id = payload.get("id")
        if event_id is None:
            event_id = body_id if isinstance(body_id, str) and body_id else "evt_" + secrets.token_hex(12)
        elif body_id is not None and body_id != event_id:
            raise ValueError(f"event_id {event_id!r} differs from the payload's id {body_id!r}")
        event = WebhookEvent(
            id=event_id,
            type=event_type,
            batch_id=batch_id,
            url=url,
            # orjson serializes dicts, not every Mapping.
            body=orjson.dumps(payload if isinstance(payload, dict) else dict(payload)),
            headers=MappingProxyType(_event_headers(headers)),
            created_at=self._clock.now(),
        )
        with self._lock:
            if event.id in self._entries:
                raise ValueError(f"event id {event.id!r} is already queued")
            entry = _Entry(event, next(self._seq))
            entry.start_run(event.created_at)
            self._entries[event.id] = entry
        return event

    def resend(self, event: WebhookEvent) -> None:
        """Schedule one more delivery of `event`, same id and body, due now.

        For a deliberate violation (a delivered event sent again). If the event's current
        delivery is still pending, the extra one starts when that one ends.
        """
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(event.id)
            if entry is None:  # forgotten by clear(): the event carries all it needs
                entry = self._entries[event.id] = _Entry(event, next(self._seq))
                entry.start_run(now)
            elif entry.state == "pending":
                entry.resends_owed += 1
            else:
                entry.start_run(now)

    # -- delivering ---------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Attempt every delivery due at the clock's now; returns the number of attempts.

        Thread-safe: an attempt in flight on one thread is not due for another.
        """
        now = self._clock.now()
        with self._lock:
            generation = self._generation
            due = sorted(
                (
                    e
                    for e in self._entries.values()
                    if e.state == "pending"
                    and not e.in_flight
                    and e.next_attempt_at is not None
                    and e.next_attempt_at <= now
                ),
                key=lambda e: (e.next_attempt_at, e.seq),
            )
            for entry in due:
                entry.in_flight = True
        settled = 0
        try:
            for entry in due:
                at = self._clock.now()
                outcome = _Outcome(None, "the attempt did not finish")
                try:
                    outcome = self._attempt(entry.event)
                finally:
                    settled += 1
                    self._settle(entry, generation, at, outcome)
        finally:
            # Only an interrupt gets here with entries unsettled: make them due again.
            with self._lock:
                for entry in due[settled:]:
                    entry.in_flight = False
        return len(due)

    def _attempt(self, event: WebhookEvent) -> _Outcome:
        try:
            url = self._parse_checked(event.url)
        except ValueError as exc:
            return _Outcome(None, str(exc), final=True)
        request = httpx.Request(
            "POST",
            url,
            content=event.body,
            # One request per connection: no pooled socket outlives the attempt.
            headers={**event.headers, "Connection": "close"},
            extensions={"timeout": self._timeout.as_dict()},
        )
        try:
            with self._open_transport() as transport:
                response = transport.handle_request(request)
                response.close()  # the answer's body is not needed, and may be large
        except Exception as exc:
            # Any failure, the transport's or a test double's, is a failed attempt to retry.
            return _Outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        code = response.status_code
        if 200 <= code < 300:
            return _Outcome(code, None)
        hint = " (redirects are not followed)" if 300 <= code < 400 else ""
        return _Outcome(code, f"answered {code}, expected 2xx{hint}")

    @contextlib.contextmanager
    def _open_transport(self) -> Iterator[httpx.BaseTransport]:
        if self._transport is not None:
            yield self._transport  # the owner's: not ours to close
            return
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        # A transport, not a Client: no redirects, no proxies from the environment.
        with httpx.HTTPTransport(verify=self._ssl, retries=0) as transport:
            yield transport

    def _settle(self, entry: _Entry, generation: int, at: float, outcome: _Outcome) -> None:
        event = entry.event
        with self._lock:
            entry.in_flight = False
            if generation != self._generation:
                return
            entry.attempts += 1
            entry.run_attempts += 1
            self._deliveries.append(
                Delivery(
                    event_id=event.id,
                    type=event.type,
                    batch_id=event.batch_id,
                    url=event.url,
                    attempt=entry.attempts,
                    at=at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    delivered=outcome.delivered,
                )
            )
            now = self._clock.now()
            if outcome.delivered:
                entry.times_delivered += 1
                entry.end_run("delivered", now)
            elif outcome.final or entry.run_attempts >= self._max_attempts:
                entry.end_run("gave_up", now)
            else:
                # From the attempt's start, as the owner saw it: an owner that advances the clock
                # while the attempt is in flight must not push the retry further away.
                entry.next_attempt_at = at + self._backoff_after(entry.run_attempts)
            attempt, gave_up = entry.attempts, entry.state == "gave_up"
        # Event id, URL and outcome only: never the request's headers.
        if outcome.delivered:
            log.debug("webhook %s delivered to %s (attempt %d)", event.id, event.url, attempt)
        elif gave_up:
            log.warning("webhook %s to %s: gave up after attempt %d: %s", event.id, event.url, attempt, outcome.error)
        else:
            log.info("webhook %s to %s: attempt %d failed: %s", event.id, event.url, attempt, outcome.error)

    def _backoff_after(self, failed_attempts: int) -> float:
        if not self._backoff:
            return 0.0
        return self._backoff[min(failed_attempts, len(self._backoff)) - 1]

    # -- views --------------------------------------------------------------------------------

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first, JSON-ready (see `Delivery`)."""
        with self._lock:
            return [d.to_dict() for d in self._deliveries]

    def events(self) -> list[dict[str, Any]]:
        """Every event with its state (pending, delivered or gave_up), oldest first, JSON-ready."""
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: e.seq)
            return [
                {
                    "id": e.event.id,
                    "type": e.event.type,
                    "batch_id": e.event.batch_id,
                    "url": e.event.url,
                    "created_at": e.event.created_at,
                    "state": e.state,
                    "attempts": e.attempts,
                    "times_delivered": e.times_delivered,
                    "next_attempt_at": e.next_attempt_at,
                }
                for e in entries
            ]

    def pending(self) -> int:
        """How many events still have a delivery to make."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.state == "pending")

    def clear(self) -> None:
        """Forget every event and delivery (an attempt in flight finishes, unrecorded)."""
        with self._lock:
            self._entries.clear()
            self._deliveries.clear()
            self._generation += 1

    # -- the pump thread ----------------------------------------------------------------------

    def start(self, tick: Callable[[], None] | None = None, interval: float = 0.05) -> None:
        """Deliver in the background: every `interval` real seconds, `tick()` then `deliver_due()`.

        `tick` lets the owner catch its batches up to the clock first (so a batch that ends
        with time queues its event). Idempotent: a running pump is left as it is.
        """
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self._pump, args=(stop, tick, interval), name="batchconf-webhooks", daemon=True
            )
            self._thread, self._stop = thread, stop
        thread.start()

    def stop(self) -> None:
        """Stop the pump thread and wait for it (at most one attempt's timeout). Idempotent."""
        with self._lock:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
        if stop is not None:
            stop.set()
        if thread is None or thread is threading.current_thread():
            return
        thread.join(self._join_timeout)
        if thread.is_alive():
            log.warning("webhook pump did not stop within %.1f s; it exits after its attempt", self._join_timeout)

    def _pump(self, stop: threading.Event, tick: Callable[[], None] | None, interval: float) -> None:
        # Waiting on the Event paces the loop and makes stop() prompt; it emulates no time.
        while not stop.wait(interval):
            # The pump outlives any one failure: log it and go on.
            if tick is not None:
                try:
                    tick()
                except Exception:
                    log.exception("webhook pump: tick failed")
            try:
                self.deliver_due()
            except Exception:
                log.exception("webhook pump: deliver_due failed")


def _event_headers(extra: Mapping[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    for name, value in extra.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP token")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the HTTP layer, not by an event")
        if not isinstance(value, str) or _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} has a value that is not a single-line string")
        if name.lower() == "content-type":
            headers.pop("Content-Type", None)
        headers[name] = value
    return headers
