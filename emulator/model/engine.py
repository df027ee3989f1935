"""The batch engine: validates input, runs lines, finalizes, expires and cancels batches.

The engine speaks canonical roles (validating, in_progress, ...) and enters the native status
the profile maps each role to (`Transitions`), checking every move against the profile's
graph. What each role does next, and after how long, is one table (`MOVES`). It never
sleeps and has no thread of its own: whoever looks at a batch first catches it up to the
clock (`catch_up`), and per-poll or manual progression moves it explicitly (`step`).
Input is streamed from object storage line by line; results are buffered in spooled files,
handed to the profile's result sink at the end, and the notifier is told. A `Journal` (the
repository's) is told after every `journal.checkpoint_lines` lines and at the end of each
catch-up, and just before the results are stored: with the store repository that is how a
batch's progress survives a restart (`store_repository`); in memory it costs nothing.

Its collaborators are given to it; it never calls back into the services above it.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import Profile

from .._backend import LineRequest, ModelBackend, Reply
from .._clock import Clock
from .._faults import FAULT_BODY_KEY, Fault, FaultSet, default_error_body
from .._jsonl import iter_lines
from .._mutations import Mutations
from .._storage import ObjectStore
from .._timing import TimingModel
from . import seams
from .consistency import ConsistencyFaults, held_in_validation
from .inputs import InputMissing, InputResolver
from .lifecycle import Transitions
from .notify import Notifier
from .records import INPUT_BYTES, BatchRecord
from .repository import NO_JOURNAL, Journal
from .results import LineWriter, ResultSink
from .storage_faults import StorageFailure, StorageFaultSet, storage_lag
from .validation import InputValidator

__all__ = ["MOVES", "Engine", "Move"]

_SHUFFLE_WINDOW = 2048


@dataclass(frozen=True)
class Move:
    """What a batch in a role does next: `run` at `delay` seconds after entering the role
    (under timed progression), or at once when stepped."""

    delay: Callable[[TimingModel, BatchRecord], float]
    run: Callable[[Engine, BatchRecord, float], None]


#: The moves of every non-terminal role: the state machine in one table.
MOVES: dict[str, Move] = {
    "validating": Move(
        # A batch a consistency fault holds in validation has no due move: it waits for expiry.
        lambda timing, b: math.inf if held_in_validation(b) else timing.validation_seconds + storage_lag(b),
        lambda e, b, t: e._validate(b, t),
    ),
    "in_progress": Move(
        lambda timing, b: timing.processing_seconds(len(b.plan) if b.plan is not None else 0) + storage_lag(b),
        lambda e, b, t: e._run_all(b, t),
    ),
    "finalizing": Move(
        lambda timing, b: timing.finalization_seconds + storage_lag(b), lambda e, b, t: e._finish(b, "completed", t)
    ),
    "cancelling": Move(
        lambda timing, b: timing.cancellation_seconds + storage_lag(b), lambda e, b, t: e._finish(b, "cancelled", t)
    ),
}


def _store_guarded(method: Callable[..., None]) -> Callable[..., None]:
    """An engine entry point on a batch (`method(self, b, ...)`) that fails the batch with a
    batch-level error when the store keeps failing (`StorageFailure`, after its retries)."""

    @functools.wraps(method)
    def guarded(self: Engine, b: BatchRecord, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, b, *args, **kwargs)
        except StorageFailure as failure:
            self._store_failed(b, failure)

    return guarded


class Engine:
    """Moves the batches of one provider surface through their lifecycle."""

    #: The storage faults whose delays slow its moves (the provider sets them; none by default).
    storage_faults: StorageFaultSet | None = None
    #: The eventual-consistency faults (the provider sets them; none by default).
    consistency: ConsistencyFaults | None = None

    def __init__(
        self,
        profile: Profile,
        *,
        transitions: Transitions,
        clock: Clock,
        timing: TimingModel,
        store: ObjectStore,
        backend: ModelBackend,
        faults: FaultSet,
        lines: LineWriter,
        sink: ResultSink,
        inputs: InputResolver,
        notifier: Notifier,
        mutations: Mutations,
        seed: int,
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.profile = profile
        self.transitions = transitions
        self.clock = clock
        self.timing = timing
        self.store = store
        self.backend = backend
        self.faults = faults
        self.lines = lines
        self.sink = sink
        self.inputs = inputs
        self.notifier = notifier
        self.mutations = mutations
        self.seed = seed
        self.journal = journal
        self.validator = InputValidator(profile, store=store, mutations=mutations)

    # -- transitions ------------------------------------------------------------------

    def _enter(self, b: BatchRecord, role: str, t: float, *, strict: bool = True) -> None:
        self.transitions.enter(b, role, t, strict=strict)
        if b.terminal:
            self.notifier.batch_ended(b)

    def _deadline(self, b: BatchRecord) -> float:
        rules = self.profile.expiry
        if rules.enabled and b.expires_at is not None and b.role in rules.from_roles:
            return float(b.expires_at)
        return math.inf

    def small_step(self, b: BatchRecord) -> bool:
        """Whether moving `b` a step is small work that waits on nothing: its input is
        known to be small enough for the store to handle at once (`ObjectStore.at_once`),
        and the model backend answers in this process. The caller's event loop may then
        move it itself (see `BatchService.retrieve_now`)."""
        if not getattr(self.backend, "in_process", False):
            return False
        size = b.plan.source.size if b.plan is not None else b.extra.get(INPUT_BYTES)
        return self.store.at_once(size if isinstance(size, int) else None)

    # -- public moves -----------------------------------------------------------------

    @_store_guarded
    def catch_up(self, b: BatchRecord) -> None:
        """Apply every move the clock has made due: timed progress, expiry."""
        now = self.clock.now()
        timing = self.timing
        timed = timing.progression == "timed"
        for _ in range(16):  # at most a handful of transitions can be due at once
            move = MOVES.get(b.role)
            if move is None:
                return
            deadline = self._deadline(b)
            due = b.entered[b.role] + move.delay(timing, b) if timed else math.inf
            if due <= now and due <= deadline:
                move.run(self, b, due)
                continue
            if timed and b.role == "in_progress" and b.plan is not None:
                start = b.entered["in_progress"]
                self._process(b, timing.lines_done_by(min(now, deadline) - start, len(b.plan)), min(now, deadline))
            if now >= deadline:
                self._expire(b, deadline)
                continue
            return

    @_store_guarded
    def step(self, b: BatchRecord, lines: int | None = None) -> None:
        """One move now: the next status, or `lines` more lines while in progress."""
        self.catch_up(b)
        now = self.clock.now()
        if lines is not None:
            if b.role != "in_progress" or b.plan is None:
                raise ValueError(f"can only process lines while in_progress; batch is {b.status!r}")
            self._process(b, min(len(b.plan), b.done + max(lines, 0)), now)
            return
        move = MOVES.get(b.role)
        if move is not None:
            move.run(self, b, now)

    def on_poll(self, b: BatchRecord) -> None:
        """A client retrieved the batch: per-poll progression moves it one status."""
        self.catch_up(b)
        if self.timing.progression == "per_poll" and not b.terminal:
            self.step(b)
        if self.consistency is not None:
            self.consistency.polled(b)

    @_store_guarded
    def cancel(self, b: BatchRecord) -> None:
        """Begin cancelling (the caller has checked the status is cancellable)."""
        self.catch_up(b)
        now = self.clock.now()
        if b.role == "in_progress" and b.plan is not None and self.timing.progression == "timed":
            start = b.entered["in_progress"]
            self._process(b, self.timing.lines_done_by(now - start, len(b.plan)), now)
        if self.transitions.has("cancelling"):
            self._enter(b, "cancelling", now)
            self.catch_up(b)
        else:
            self._finish(b, "cancelled", now)

    def force(self, b: BatchRecord, role: str) -> None:
        """Enter `role` now without the graph check: only mutations do this."""
        self._enter(b, role, self.clock.now(), strict=False)

    # -- validation -------------------------------------------------------------------

    def _validate(self, b: BatchRecord, t: float) -> None:
        if self.profile.expiry.enabled and b.expires_at is not None:
            # Validation that would end after the window ends when the window does, so the
            # batch never starts after expires_at (it then expires on the next look).
            t = min(t, float(b.expires_at))
        if self.consistency is not None and self.consistency.stuck(b):
            return  # held in validation until its window passes (a consistency fault)
        if self._slowed(b, t, ("get",)):
            return
        try:
            source = self.inputs.resolve(b.input, b.owner)
        except InputMissing as missing:
            self._fail(b, t, [self.validator.batch_error(missing.name, **missing.fields)])
            return
        verdict = self.validator.scan(source, b.endpoint)
        if verdict.errors:
            self._fail(b, t, verdict.errors, verdict.custom_ids)
            return
        b.plan = verdict.plan
        b.model = verdict.plan.model
        b.total = len(verdict.plan)
        self._enter(b, "in_progress", t)

    def _fail(
        self, b: BatchRecord, t: float, errors: list[dict[str, Any]], custom_ids: dict[int, str] | None = None
    ) -> None:
        b.errors = errors
        if self.profile.output.failed_error_file:
            self._store_failure(b, errors, custom_ids or {}, t)
        b.close_spools()
        self._enter(b, "failed", t)

    def _store_failure(
        self, b: BatchRecord, errors: list[dict[str, Any]], custom_ids: dict[int, str], t: float
    ) -> None:
        """The batch's errors as failure lines of an error file (profiles whose failed
        batches name one): the custom_id of the line each names, where it has one."""
        prefix = b.extra["hex"]
        for index, entry in enumerate(errors):
            line = entry.get("line")
            message = str(entry.get("message") or "")
            if isinstance(line, int):
                message = f"Line {line}: {message}"
            custom_id = custom_ids.get(line, "") if isinstance(line, int) else ""
            b.err_spool.write(self.lines.failure(f"{prefix}{index:08x}", custom_id, str(entry.get("code")), message))
        self.journal.before_results(b)
        self.sink.store(b, int(t))

    # -- processing -------------------------------------------------------------------

    def _iter_plan(self, b: BatchRecord, start: int, stop: int) -> Iterator[dict[str, Any]]:
        """Parsed request lines `start..stop` of the plan, read with one ranged GET."""
        plan = b.plan
        assert plan is not None
        if stop <= start:
            return
        first = plan.offsets[start]
        last = plan.offsets[stop - 1] + plan.lengths[stop - 1] - 1
        wanted = stop - start
        src = plan.source
        for _, raw in iter_lines(self.store.iter_chunks(src.key, first, last, src.parts, bucket=src.bucket), first):
            if not raw.strip():
                continue
            yield orjson.loads(raw)
            wanted -= 1
            if wanted == 0:
                return

    def _process(self, b: BatchRecord, target: int, t: float) -> None:
        """Run lines up to index `target` (exclusive), appending results to the buffers."""
        if b.plan is None or target <= b.done:
            return
        now = int(t)
        rng = random.Random(f"{self.seed}:{b.id}:{b.done}")
        shuffle = self.timing.shuffle and not self.profile.output.ordered
        out_buf: list[bytes] = []
        err_buf: list[bytes] = []
        index = b.done
        # Per-line work is the hot path of a 50,000-line batch: what does not change within
        # one step is looked up once, outside the loop.
        response, failure = self.lines.response, self.lines.failure
        execute = self.backend.execute
        faults = self.faults if self.faults else None
        attempts = self.timing.backend_attempts
        prefix = b.extra["hex"]
        default_url = b.endpoint
        usage = b.usage
        # A journal checkpoints at buffer flushes: flush at least every checkpoint_lines.
        checkpoint = self.journal.checkpoint_lines
        window = min(_SHUFFLE_WINDOW, checkpoint) if checkpoint else _SHUFFLE_WINDOW
        for line in self._iter_plan(b, b.done, target):
            key = f"{prefix}{index:08x}"
            custom_id = line["custom_id"]
            body = line["body"]
            if faults is None and FAULT_BODY_KEY not in body:
                reply = execute(LineRequest(line.get("url", default_url), body, custom_id, key, now))
            else:
                fault = self._fault_of(custom_id, body, faults)
                request = LineRequest(line.get("url", default_url), body, custom_id, key, now)
                reply = _answer(fault, request, 1, execute)
            if attempts > 1 and _retryable(reply):
                # The provider retries a transient failure of its backend; the line is
                # written once, with its last answer.
                if faults is None and FAULT_BODY_KEY not in body:
                    fault = None
                    request = LineRequest(line.get("url", default_url), body, custom_id, key, now)
                attempt = 1
                while attempt < attempts and _retryable(reply):
                    attempt += 1
                    reply = _answer(fault, request, attempt, execute)
            index += 1
            if reply.error_code is not None:
                err_buf.append(failure(key, custom_id, reply.error_code, reply.error_message or ""))
            elif 200 <= reply.status_code < 300:
                usage.input_tokens += reply.input_tokens
                usage.output_tokens += reply.output_tokens
                out_buf.append(response(key, custom_id, reply.status_code, reply.body))
            else:
                err_buf.append(response(key, custom_id, reply.status_code, reply.body))
            if len(out_buf) + len(err_buf) >= window:
                self._flush(b, out_buf, err_buf, rng if shuffle else None)
                if checkpoint:
                    b.done = index
                    self.journal.checkpoint(b)
        self._flush(b, out_buf, err_buf, rng if shuffle else None)
        b.done = index
        if checkpoint:
            self.journal.checkpoint(b)

    @staticmethod
    def _fault_of(custom_id: str, body: dict[str, Any], faults: FaultSet | None) -> Fault | Reply | None:
        """The fault for this line (the body's trigger first, then the rules), a 400 for a
        trigger that is not a fault, or None."""
        trigger = body.pop(FAULT_BODY_KEY, None) if FAULT_BODY_KEY in body else None
        if trigger is not None:
            try:
                return Fault.from_json(trigger)
            except ValueError as exc:
                return Reply(400, default_error_body(400, f"Invalid {FAULT_BODY_KEY}: {exc}"))
        return faults.match(custom_id) if faults is not None else None

    @staticmethod
    def _flush(b: BatchRecord, out_buf: list[bytes], err_buf: list[bytes], rng: random.Random | None) -> None:
        if rng is not None:
            rng.shuffle(out_buf)
            rng.shuffle(err_buf)
        if out_buf:
            b.out_spool.write(b"".join(out_buf))
            b.completed += len(out_buf)
        if err_buf:
            b.err_spool.write(b"".join(err_buf))
            b.failed += len(err_buf)
        out_buf.clear()
        err_buf.clear()

    def _run_all(self, b: BatchRecord, t: float) -> None:
        assert b.plan is not None
        if self._slowed(b, t, ("get",) if self.transitions.has("finalizing") else ("get", "put")):
            return
        self._process(b, len(b.plan), t)
        natural = "finalizing" if self.transitions.has("finalizing") else "completed"
        role = self.mutations.apply(seams.AFTER_WORK, natural)
        if role == "finalizing":
            # Only a mutation enters finalizing where the profile never does (Bedrock behind
            # a gateway): off the graph, so not checked against it.
            self._enter(b, "finalizing", t, strict=role == natural)
        else:
            self._finish(b, "completed", t, strict=role == natural)

    # -- endings ----------------------------------------------------------------------

    def _expire(self, b: BatchRecord, t: float) -> None:
        self._store_results(b, "expired", t)
        self._enter(b, self.profile.expiry.enters, t)

    def _finish(self, b: BatchRecord, role: str, t: float, *, strict: bool = True) -> None:
        if b.role in ("finalizing", "cancelling") and self._slowed(b, t, ("put",)):
            return
        self._store_results(b, "cancelled" if role == "cancelled" else None, t)
        self._enter(b, role, t, strict=strict)
        if role == "completed" and self.consistency is not None:
            self.consistency.completed(b)

    # -- storage faults ---------------------------------------------------------------

    def _slowed(self, b: BatchRecord, t: float, operations: tuple[str, ...]) -> bool:
        """Whether this move of `b`, due at `t`, still waits for a slow store."""
        faults = self.storage_faults
        return faults is not None and faults.held(b, operations, t)

    def _store_failed(self, b: BatchRecord, failure: StorageFailure) -> None:
        """The store kept failing: the batch fails with an error naming the store failure.
        Nothing partial is published (a result file written before the failure is not
        named by the batch). Where the profile's graph has no edge into failed from the
        batch's status (OpenAI: only validating fails), it is entered off the graph, as a
        provider whose store broke mid-run would."""
        if b.terminal:
            return
        b.results.clear()
        b.errors = [failure.entry()]
        b.close_spools()
        failed = self.profile.lifecycle.status("failed")
        strict = failed is not None and self.profile.lifecycle.allows(b.status, failed)
        self._enter(b, "failed", self.clock.now(), strict=strict)

    def _store_results(self, b: BatchRecord, ending: str | None, t: float) -> None:
        """Write unfinished lines (if any), then hand the buffers to the sink."""
        out_rules = self.profile.output
        if b.plan is not None and ending is not None and b.done < len(b.plan):
            expired = ending == "expired"
            policy = out_rules.unfinished_on_expiry if expired else out_rules.unfinished_on_cancel
            policy = self.mutations.apply(seams.RESULTS_UNFINISHED, policy, ending=ending)
            if policy == "error_file":
                code = out_rules.expired_code if expired else out_rules.cancelled_code
                message = out_rules.expired_message if expired else out_rules.cancelled_message
                buf: list[bytes] = []
                index = b.done
                prefix = b.extra["hex"]
                for line in self._iter_plan(b, b.done, len(b.plan)):
                    buf.append(self.lines.failure(f"{prefix}{index:08x}", line["custom_id"], code, message))
                    index += 1
                    if len(buf) >= _SHUFFLE_WINDOW:
                        self._flush(b, [], buf, None)
                self._flush(b, [], buf, None)
            b.done = len(b.plan)
        if b.plan is None:
            b.close_spools()
            return
        self.journal.before_results(b)
        if self.mutations.active(seams.RESULTS_LINES):
            self._bend_results(b, ending)
        self.sink.store(b, int(t))
        b.close_spools()

    def _bend_results(self, b: BatchRecord, ending: str | None) -> None:
        """Hand the result lines through the mutations' seam (only while one is active)."""
        lines = seams.ResultLines(_read_lines(b.out_spool), _read_lines(b.err_spool), b.completed, b.failed, ending)
        lines = self.mutations.apply(seams.RESULTS_LINES, lines)
        for spool, content in ((b.out_spool, lines.output), (b.err_spool, lines.errors)):
            spool.seek(0)
            spool.truncate()
            spool.write(b"".join(content))
        b.completed, b.failed = lines.completed, lines.failed


#: Backend answers a provider retries: rate limits, server errors, timeouts.
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RETRYABLE_CODES = frozenset({"request_timeout"})


def _retryable(reply: Reply) -> bool:
    if reply.error_code is not None:
        return reply.error_code in _RETRYABLE_CODES
    return reply.status_code in _RETRYABLE_STATUS


def _answer(
    fault: Fault | Reply | None, request: LineRequest, attempt: int, execute: Callable[[LineRequest], Reply]
) -> Reply:
    """Attempt `attempt` of a line: what its fault dictates (a transient fault only for its
    first `times` attempts), else the backend's answer."""
    if isinstance(fault, Reply):
        return fault
    if fault is None or (fault.times is not None and attempt > fault.times):
        return execute(request)
    if fault.error_code is not None:
        return Reply(0, None, error_code=fault.error_code, error_message=fault.error_message or "")
    assert fault.status_code is not None
    return Reply(fault.status_code, fault.body or default_error_body(fault.status_code))


def _read_lines(spool: Any) -> list[bytes]:
    spool.seek(0)
    data: bytes = spool.read()
    return data.splitlines(keepends=True)
