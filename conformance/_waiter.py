"""The one place the suite waits: poll batches until a terminal status (or a condition).

The waiter validates nothing (the suite's invariants do); it records every snapshot it
polled, so a test can check the whole observed history. Each wait is bounded by a *named*
timeout (`--wait-timeout terminal=600`) and announced by a log line before it starts. Between
rounds it sleeps the poll interval, which is 0 against the in-process emulator: there each
poll moves a batch one status, so nothing ever sleeps to wait for a state.

A terminal status is not always the end of polling: where the contract sets the result
references at that status and the target showed the status first (eventual consistency,
as users of real providers report), a `settled` predicate says the references are still
missing, and the waiter polls such a batch again, at most `settle_polls` more times, so the
results it then fetches are the batch's own. It still validates nothing: the snapshots keep
the lag, and the invariants report it once (`check_file_ids`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

__all__ = ["Observation", "Poller", "UnknownTimeoutError", "WaitError", "WaitTimeout", "Waiter"]

T = TypeVar("T")

log = logging.getLogger("batchconf.waiter")

# Statuses worth polling again: the target is busy or briefly unavailable.
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Response(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def json(self) -> Any: ...

    @property
    def content(self) -> bytes: ...


class Poller(Protocol):
    """What the waiter needs of an API client (`conformance.client.ApiClient` is one)."""

    def retrieve_batch(self, batch_id: str) -> Any: ...


@dataclass
class Observation:
    """What polling one batch saw.

    `snapshots` holds every polled batch body in order; `statuses` their statuses with
    consecutive repeats collapsed; `final` is the last snapshot. `error` is set only by
    `wait_many(..., raise_errors=False)` for a batch whose wait failed.
    """

    batch_id: str
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    polls: int = 0
    elapsed: float = 0.0
    error: WaitError | None = None
    #: Polls made after a terminal status whose result references were not yet set.
    settle_polls: int = 0

    @property
    def final(self) -> dict[str, Any]:
        """The last polled body (KeyError-free: an empty dict if nothing was polled)."""
        return self.snapshots[-1] if self.snapshots else {}

    @property
    def status(self) -> str | None:
        """The last observed status."""
        return self.statuses[-1] if self.statuses else None

    def _record(self, body: dict[str, Any], status: str) -> None:
        self.snapshots.append(body)
        if not self.statuses or self.statuses[-1] != status:
            self.statuses.append(status)


class WaitError(Exception):
    """Polling a batch failed (an error answer, an unreadable body); `observation` holds
    what was seen until then."""

    def __init__(self, message: str, batch_id: str, observation: Observation) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.observation = observation


class WaitTimeout(WaitError, TimeoutError):
    """A batch did not reach the awaited state within the named timeout."""

    def __init__(self, name: str, seconds: float, batch_id: str, observation: Observation, goal: str) -> None:
        self.name = name
        self.seconds = seconds
        self.last_status = observation.status
        seen = " -> ".join(observation.statuses) or "nothing"
        super().__init__(
            f"batch {batch_id} did not reach {goal} within timeout {name!r} = {seconds:g}s: "
            f"last status {observation.status!r} after {observation.polls} polls (statuses seen: {seen}); "
            f"raise it with --wait-timeout {name}=SECONDS",
            batch_id,
            observation,
        )


class UnknownTimeoutError(KeyError):
    """A wait named a timeout that is not configured."""

    def __str__(self) -> str:
        return str(self.args[0])


class Waiter:
    """Polls batches through an API client until a terminal status of the profile, or until
    an `until` predicate holds.

    `terminal` is the profile's terminal statuses; `timeouts` the named timeouts in seconds;
    `poll_interval` the sleep between polling rounds (0: never sleep). `settled`, a
    predicate on a terminal batch body, says whether its result references are all there;
    while it is false the batch is polled again, at most `settle_polls` times (then the
    waiter stops and the invariants judge). `sleep` and `clock` are injectable for tests.
    """

    def __init__(
        self,
        *,
        terminal: Collection[str],
        timeouts: Mapping[str, float],
        poll_interval: float = 0.0,
        status_field: str = "status",
        max_transient_errors: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        announce: Callable[[str], None] | None = None,
        settled: Callable[[dict[str, Any]], bool] | None = None,
        settle_polls: int = 3,
    ) -> None:
        self.terminal = frozenset(terminal)
        self.timeouts = dict(timeouts)
        self.poll_interval = poll_interval
        self.status_field = status_field
        self.max_transient_errors = max_transient_errors
        self._sleep = sleep
        self._clock = clock
        self._announce = announce
        self.settled = settled
        self.settle_polls = settle_polls

    def timeout(self, name: str) -> float:
        """The seconds of timeout `name` (UnknownTimeoutError lists the configured names)."""
        try:
            return self.timeouts[name]
        except KeyError:
            raise UnknownTimeoutError(
                f"unknown timeout {name!r}; configured timeouts: {', '.join(sorted(self.timeouts))}"
            ) from None

    def wait(
        self,
        api: Poller,
        batch_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: str = "terminal",
    ) -> Observation:
        """Poll `batch_id` until its status is terminal or `until(snapshot)` holds.

        Raises `WaitTimeout` (a TimeoutError naming the timeout, its seconds, the batch and
        its last status) or `WaitError` if the target answers an error that is not transient.
        """
        return self.wait_many(api, [batch_id], until=until, timeout=timeout)[batch_id]

    def wait_many(
        self,
        api: Poller,
        batch_ids: Iterable[str],
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: str = "terminal",
        *,
        raise_errors: bool = True,
        log_line: str | None = None,
    ) -> dict[str, Observation]:
        """Poll several batches together (one round polls each unfinished batch once), all
        against one deadline.

        With `raise_errors` (the default) the first failed batch raises its `WaitError`
        once every batch is done or failed; without, each failed batch's observation
        carries the error and the others are returned normally.
        """
        ids = list(dict.fromkeys(batch_ids))
        seconds = self.timeout(timeout)
        goal = self._goal(until)
        message = log_line or (
            f"waiting up to {seconds:g}s (timeout {timeout!r}) for {len(ids)} batch(es) to reach {goal}: "
            + ", ".join(ids[:5])
            + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        )
        log.info("%s", message)
        if self._announce is not None:
            self._announce(message)
        observations = {bid: Observation(bid) for bid in ids}
        transient = dict.fromkeys(ids, 0)
        start = self._clock()
        deadline = start + seconds
        pending = list(ids)
        while pending:
            for bid in list(pending):
                obs = observations[bid]
                try:
                    done = self._poll_once(api, obs, until, transient)
                except WaitError as exc:
                    obs.error = exc
                    done = True
                obs.elapsed = self._clock() - start
                if done:
                    pending.remove(bid)
            if not pending:
                break
            now = self._clock()
            if now >= deadline:
                for bid in pending:
                    obs = observations[bid]
                    # A batch re-polled only for its late references did reach its end.
                    if obs.status not in self.terminal:
                        obs.error = WaitTimeout(timeout, seconds, bid, obs, goal)
                break
            if self.poll_interval > 0:
                self._sleep(min(self.poll_interval, deadline - now))
        if raise_errors:
            for obs in observations.values():
                if obs.error is not None:
                    raise obs.error
        return observations

    def until(self, probe: Callable[[], T | None], *, what: str, timeout: str = "terminal") -> T:
        """Call `probe()` until it returns something other than None (returned), sleeping
        the poll interval between calls, within the named timeout; raises `TimeoutError`
        naming `what`, the timeout and its seconds. For states other than a batch's (e.g.
        the target's pending webhook deliveries)."""
        seconds = self.timeout(timeout)
        log.info("waiting up to %gs (timeout %r) for %s", seconds, timeout, what)
        deadline = self._clock() + seconds
        calls = 0
        while True:
            calls += 1
            value = probe()
            if value is not None:
                return value
            now = self._clock()
            if now >= deadline:
                raise TimeoutError(
                    f"timeout {timeout!r} ({seconds:g}s) passed before {what} ({calls} checks); "
                    f"raise it with --wait-timeout {timeout}=SECONDS"
                )
            if self.poll_interval > 0:
                self._sleep(min(self.poll_interval, deadline - now))

    def _goal(self, until: Callable[[dict[str, Any]], bool] | None) -> str:
        terminal = "a terminal status (" + ", ".join(sorted(self.terminal)) + ")"
        if until is None:
            return terminal
        name = getattr(until, "__name__", "condition")
        return f"{name} or {terminal}"

    def _poll_once(
        self,
        api: Poller,
        obs: Observation,
        until: Callable[[dict[str, Any]], bool] | None,
        transient: dict[str, int],
    ) -> bool:
        bid = obs.batch_id
        obs.polls += 1
        try:
            response: _Response = api.retrieve_batch(bid)
        except httpx.TransportError as exc:
            return self._transient(obs, transient, f"{type(exc).__name__}: {exc}")
        if response.status in _TRANSIENT:
            return self._transient(obs, transient, f"HTTP {response.status}")
        if response.status != 200:
            body = response.content[:400].decode("utf-8", errors="replace")
            raise WaitError(f"polling batch {bid}: the target answered HTTP {response.status}: {body}", bid, obs)
        transient[bid] = 0
        body_json = response.json
        status = body_json.get(self.status_field) if isinstance(body_json, dict) else None
        if not isinstance(status, str):
            body = response.content[:400].decode("utf-8", errors="replace")
            raise WaitError(
                f"polling batch {bid}: HTTP 200 without a string {self.status_field!r} field, "
                f"so the waiter cannot tell its state: {body}",
                bid,
                obs,
            )
        assert isinstance(body_json, dict)
        obs._record(body_json, status)
        if status in self.terminal:
            return self._settled(obs, body_json)
        return bool(until is not None and until(body_json))

    def _settled(self, obs: Observation, body: dict[str, Any]) -> bool:
        """Whether polling a terminal batch is over: its references are there, or the bound
        on polling again for them is used up."""
        if self.settled is None or self.settled(body) or obs.settle_polls >= self.settle_polls:
            return True
        obs.settle_polls += 1
        log.warning(
            "polling batch %s: status %r without all its result references; polling again (%d of at most %d)",
            obs.batch_id,
            body.get(self.status_field),
            obs.settle_polls,
            self.settle_polls,
        )
        return False

    def _transient(self, obs: Observation, transient: dict[str, int], what: str) -> bool:
        bid = obs.batch_id
        transient[bid] += 1
        log.warning("polling batch %s: %s (attempt %d of %d)", bid, what, transient[bid], self.max_transient_errors)
        if transient[bid] >= self.max_transient_errors:
            raise WaitError(
                f"polling batch {bid}: {transient[bid]} transient failures in a row, the last {what}", bid, obs
            )
        return False
