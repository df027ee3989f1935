"""The batch engine: validates input, runs lines, finalizes, expires and cancels batches.

The engine speaks canonical roles (validating, in_progress, ...) and enters the native status
the profile maps each role to, checking every move against the profile's graph. It never
sleeps and has no thread of its own: whoever looks at a batch first catches it up to the
clock (`catch_up`), and per-poll or manual progression moves it explicitly (`step`).
Input is streamed from object storage line by line; results are buffered in spooled files
and stored as whole objects at the end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ._backend import LineRequest, Reply
from ._faults import FAULT_BODY_KEY, Fault, FaultSet, default_error_body
from ._jsonl import iter_lines
from ._records import BatchRecord, LinePlan

if TYPE_CHECKING:
    from ._core import Core

__all__ = ["Engine"]


@dataclass
class _ScanState:
    """What validation remembers across the lines of one input file."""

    seen: set[str] = field(default_factory=set)
    first_model: str | None = None
    first_url: str | None = None


_SHUFFLE_WINDOW = 2048
_OUTPUT_TAMPERING = ("drop_output_line", "duplicate_output_line", "rewrite_custom_id")
_MAX_REPORTED_ERRORS = 1000


class Engine:
    """Moves batches through their lifecycle for one emulator core."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- transitions ------------------------------------------------------------------

    def _enter(self, b: BatchRecord, role: str, t: float) -> None:
        life = self.core.profile.lifecycle
        native = life.status(role)
        if native is None:
            raise RuntimeError(f"profile {self.core.profile.name!r} has no status for role {role!r}")
        if not life.allows(b.status, native):
            raise RuntimeError(f"engine bug: {b.status!r} -> {native!r} is not in the profile's graph")
        t = max(t, max(b.entered.values(), default=t))
        b.status = native
        b.role = role
        b.entered[role] = t
        field = life.timestamps.get(native)
        if field and field not in b.stamps:
            b.stamps[field] = int(t)
        b.history.append(native)

    def _expiry_applies(self, b: BatchRecord) -> bool:
        rules = self.core.profile.expiry
        return rules.enabled and b.expires_at is not None and b.role in rules.from_roles

    # -- public moves -----------------------------------------------------------------

    def catch_up(self, b: BatchRecord) -> None:
        """Apply every move the clock has made due: timed progress, expiry."""
        now = self.core.clock.now()
        timing = self.core.timing
        timed = timing.progression == "timed"
        for _ in range(16):  # at most a handful of transitions can be due at once
            role = b.role
            if role in ("completed", "failed", "expired", "cancelled"):
                return
            deadline = float(b.expires_at) if self._expiry_applies(b) and b.expires_at is not None else math.inf
            if role == "validating":
                if not timed:
                    return
                t = b.entered[role] + timing.validation_seconds
                if t > now:
                    return
                self._validate(b, t)
            elif role == "in_progress":
                assert b.plan is not None
                limit = min(now, deadline)
                if timed:
                    start = b.entered[role]
                    t_all = start + timing.processing_seconds(len(b.plan))
                    if t_all <= limit:
                        self._process(b, len(b.plan), t_all)
                        self._work_done(b, t_all)
                        continue
                    self._process(b, timing.lines_done_by(limit - start, len(b.plan)), limit)
                if now >= deadline:
                    self._expire(b, deadline)
                    continue
                return
            elif role == "finalizing":
                t = b.entered[role] + timing.finalization_seconds
                if timed and t <= now and t <= deadline:
                    self._finish(b, "completed", t)
                    continue
                if now >= deadline:
                    self._expire(b, deadline)
                    continue
                return
            elif role == "cancelling":
                t = b.entered[role] + timing.cancellation_seconds
                if timed and t <= now:
                    self._finish(b, "cancelled", t)
                    continue
                return
            else:
                return

    def step(self, b: BatchRecord, lines: int | None = None) -> None:
        """One move now: the next status, or `lines` more lines while in progress."""
        self.catch_up(b)
        now = self.core.clock.now()
        role = b.role
        if lines is not None:
            if role != "in_progress" or b.plan is None:
                raise ValueError(f"can only process lines while in_progress; batch is {b.status!r}")
            self._process(b, min(len(b.plan), b.done + max(lines, 0)), now)
            return
        if role == "validating":
            self._validate(b, now)
        elif role == "in_progress":
            assert b.plan is not None
            self._process(b, len(b.plan), now)
            self._work_done(b, now)
        elif role == "finalizing":
            self._finish(b, "completed", now)
        elif role == "cancelling":
            self._finish(b, "cancelled", now)

    def on_poll(self, b: BatchRecord) -> None:
        """A client retrieved the batch: per-poll progression moves it one status."""
        self.catch_up(b)
        if self.core.timing.progression == "per_poll" and b.role not in ("completed", "failed", "expired", "cancelled"):
            self.step(b)

    def cancel(self, b: BatchRecord) -> None:
        """Begin cancelling (the caller has checked the status is cancellable)."""
        self.catch_up(b)
        now = self.core.clock.now()
        if b.role == "in_progress" and b.plan is not None and self.core.timing.progression == "timed":
            start = b.entered["in_progress"]
            self._process(b, self.core.timing.lines_done_by(now - start, len(b.plan)), now)
        if self.core.profile.lifecycle.status("cancelling") is not None:
            self._enter(b, "cancelling", now)
            self.catch_up(b)
        else:
            self._finish(b, "cancelled", now)

    # -- validation -------------------------------------------------------------------

    def _validate(self, b: BatchRecord, t: float) -> None:
        core = self.core
        profile = core.profile
        if profile.expiry.enabled and b.expires_at is not None:
            # Validation that would end after the window ends when the window does, so the
            # batch never starts after expires_at (it then expires on the next look).
            t = min(t, float(b.expires_at))
        record = core.files.get_record(b.input_file_id, b.owner)
        if record is None:
            self._fail(b, t, [self._batch_error("input_file_not_found", id=b.input_file_id)])
            return
        if profile.files.api and record.purpose != profile.files.batch_purpose:
            self._fail(b, t, [self._batch_error("input_file_purpose", id=record.id, value=record.purpose)])
            return
        plan = LinePlan(key=record.key, parts=record.parts)
        errors: list[dict[str, Any]] = []
        state = _ScanState()
        bad_lines = 0
        embedding_inputs = 0
        line_no = 0
        mut = core.mutations
        for offset, raw in iter_lines(core.store.iter_chunks(record.key, parts=record.parts)):
            line_no += 1
            if not raw.strip():
                continue
            problem = self._check_line(raw, line_no, b.endpoint, state, mut)
            if isinstance(problem, dict):
                bad_lines += 1
                if len(errors) < _MAX_REPORTED_ERRORS:
                    errors.append(problem)
                continue
            model, inputs = problem
            if state.first_model is None:
                state.first_model = model
            embedding_inputs += inputs
            plan.offsets.append(offset)
            plan.lengths.append(len(raw))
        count = len(plan) + bad_lines
        limits = profile.limits
        if (
            limits.max_requests
            and count > limits.max_requests
            and limits.enforced_at.get("max_requests", "validation") == "validation"
            and not mut.on("accept_too_many_requests")
        ):
            errors.append(self._batch_error("too_many_requests", count=count, max=limits.max_requests))
        if count < limits.min_requests:
            errors.append(self._batch_error("too_few_requests", count=count, min=limits.min_requests))
        if (
            limits.max_embedding_inputs
            and b.endpoint.endswith("/embeddings")
            and embedding_inputs > limits.max_embedding_inputs
        ):
            errors.append(
                self._batch_error("too_many_embedding_inputs", count=embedding_inputs, max=limits.max_embedding_inputs)
            )
        if errors:
            self._fail(b, t, errors)
            return
        plan.model = state.first_model
        b.plan = plan
        b.model = state.first_model
        b.total = len(plan)
        self._enter(b, "in_progress", t)

    def _check_line(
        self,
        raw: bytes,
        line_no: int,
        endpoint: str,
        state: _ScanState,
        mut: Any,
    ) -> dict[str, Any] | tuple[str | None, int]:
        """An error entry for a bad line, or (model, embedding input count) for a good one."""
        rules = self.core.profile.line_rules
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._line_error("invalid_json_line", line_no)
        if not isinstance(obj, dict):
            return self._line_error("invalid_json_line", line_no)
        for name in rules.required_fields:
            if name not in obj or obj[name] is None:
                return self._line_error("missing_field", line_no, param=name)
        custom_id = obj.get("custom_id")
        if (
            not isinstance(custom_id, str)
            or not custom_id
            or (rules.custom_id_max_chars and len(custom_id) > rules.custom_id_max_chars)
        ):
            return self._line_error("custom_id_invalid", line_no, value=custom_id)
        method = obj.get("method", "POST")
        if method not in rules.methods:
            return self._line_error("invalid_method", line_no, value=method)
        url = obj.get("url", endpoint)
        if rules.url_must_match_endpoint and url != endpoint and not mut.on("accept_wrong_url"):
            return self._line_error("invalid_url", line_no, value=url)
        if rules.mixed_endpoints and url not in self.core.profile.endpoints:
            return self._line_error("invalid_url", line_no, value=url)
        if not rules.mixed_endpoints:
            # Lines must all share one url (the first line's) even where it need not equal
            # the create-time endpoint (Azure's `/chat/completions` form).
            if state.first_url is None:
                state.first_url = url
            if url != state.first_url and not mut.on("accept_wrong_url"):
                return self._line_error("invalid_url", line_no, value=url)
        body = obj.get("body")
        if not isinstance(body, dict):
            return self._line_error("invalid_body", line_no)
        model = body.get("model")
        if rules.model_required and not (isinstance(model, str) and model):
            return self._line_error("missing_model", line_no)
        if not rules.stream_allowed and body.get("stream") is True:
            return self._line_error("streaming_unsupported", line_no)
        if rules.custom_id_unique:
            if custom_id in state.seen and not mut.on("accept_duplicate_custom_id"):
                return self._line_error("duplicate_custom_id", line_no, value=custom_id)
            state.seen.add(custom_id)
        if rules.one_model_per_file and state.first_model is not None and model != state.first_model:
            return self._line_error("mixed_models", line_no, value=model)
        inputs = 0
        if url.endswith("/embeddings"):
            value = body.get("input")
            inputs = len(value) if isinstance(value, list) else 1
        return (model if isinstance(model, str) else None), inputs

    def _line_error(self, name: str, line_no: int, **fields: object) -> dict[str, Any]:
        spec = self.core.profile.validation[name]
        code, message, param = spec.render(line=line_no, **fields)
        line: int | None = line_no if spec.line else None
        if self.core.mutations.on("validation_error_without_line"):
            line = None
        return {"code": code, "message": message, "param": param, "line": line}

    def _batch_error(self, name: str, **fields: object) -> dict[str, Any]:
        code, message, param = self.core.profile.validation[name].render(**fields)
        return {"code": code, "message": message, "param": param, "line": None}

    def _fail(self, b: BatchRecord, t: float, errors: list[dict[str, Any]]) -> None:
        b.errors = errors
        self._enter(b, "failed", t)
        b.close_spools()

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
        for _, raw in iter_lines(self.core.store.iter_chunks(plan.key, first, last, plan.parts), first):
            if not raw.strip():
                continue
            yield orjson.loads(raw)
            wanted -= 1
            if wanted == 0:
                return

    def _process(self, b: BatchRecord, target: int, t: float) -> None:
        """Run lines up to index `target` (exclusive), appending results to the spools."""
        if b.plan is None or target <= b.done:
            return
        core = self.core
        now = int(t)
        rng = random.Random(f"{core.seed}:{b.id}:{b.done}")
        shuffle = core.timing.shuffle and not core.profile.output.ordered
        out_buf: list[bytes] = []
        err_buf: list[bytes] = []
        index = b.done
        # Per-line work is the hot path of a 50,000-line batch: what does not change within
        # one step is looked up once, outside the loop.
        response, failure = core.lines.response, core.lines.failure
        execute = core.backend.execute
        faults = core.faults if core.faults else None
        success_in_error = core.mutations.on("success_in_error_file")
        http_error_in_output = core.mutations.on("http_error_in_output_file")
        prefix = b.extra["hex"]
        default_url = b.endpoint
        usage = b.usage
        window = _SHUFFLE_WINDOW
        for line in self._iter_plan(b, b.done, target):
            key = f"{prefix}{index:08x}"
            custom_id = line["custom_id"]
            body = line["body"]
            reply = self._faulted(custom_id, body, faults) if faults is not None or FAULT_BODY_KEY in body else None
            if reply is None:
                reply = execute(LineRequest(line.get("url", default_url), body, custom_id, key, now))
            index += 1
            if reply.error_code is not None:
                err_buf.append(failure(key, custom_id, reply.error_code, reply.error_message or ""))
                continue
            data = response(key, custom_id, reply.status_code, reply.body)
            if 200 <= reply.status_code < 300:
                usage.input_tokens += reply.input_tokens
                usage.output_tokens += reply.output_tokens
                if success_in_error and not err_buf and b.failed == 0 and index == 1:
                    err_buf.append(data)
                    continue
                out_buf.append(data)
            elif http_error_in_output:
                out_buf.append(data)
            else:
                err_buf.append(data)
            if len(out_buf) + len(err_buf) >= window:
                self._flush(b, out_buf, err_buf, rng if shuffle else None)
        self._flush(b, out_buf, err_buf, rng if shuffle else None)
        b.done = index

    def _faulted(self, custom_id: str, body: dict[str, Any], faults: FaultSet | None) -> Reply | None:
        """The reply a fault dictates for this line (body trigger first, then the fault
        rules), or None to ask the backend."""
        fault: Fault | None = None
        trigger = body.pop(FAULT_BODY_KEY, None) if FAULT_BODY_KEY in body else None
        if trigger is not None:
            try:
                fault = Fault.from_json(trigger)
            except ValueError as exc:
                return Reply(400, default_error_body(400, f"Invalid {FAULT_BODY_KEY}: {exc}"))
        elif faults is not None:
            fault = faults.match(custom_id)
        if fault is None:
            return None
        if fault.error_code is not None:
            return Reply(0, None, error_code=fault.error_code, error_message=fault.error_message or "")
        assert fault.status_code is not None
        return Reply(fault.status_code, fault.body or default_error_body(fault.status_code))

    def _flush(self, b: BatchRecord, out_buf: list[bytes], err_buf: list[bytes], rng: random.Random | None) -> None:
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

    def _work_done(self, b: BatchRecord, t: float) -> None:
        if self.core.profile.lifecycle.status("finalizing") is not None and not self.core.mutations.on(
            "skip_finalizing"
        ):
            self._enter(b, "finalizing", t)
        else:
            if self.core.mutations.on("skip_finalizing"):
                self._force(b, "completed", t)
                self._store_results(b, None, t)
                return
            self._finish(b, "completed", t)

    def _force(self, b: BatchRecord, role: str, t: float) -> None:
        """Enter a role without the graph check: only mutations do this."""
        native = self.core.profile.lifecycle.status(role) or role
        b.status = native
        b.role = role
        b.entered[role] = t
        field = self.core.profile.lifecycle.timestamps.get(native)
        if field and field not in b.stamps:
            b.stamps[field] = int(t)
        b.history.append(native)

    # -- endings ----------------------------------------------------------------------

    def _tamper_output(self, b: BatchRecord) -> None:
        """Record mutations: drop, duplicate or rename the first output line (counts kept)."""
        mut = self.core.mutations
        b.out_spool.seek(0)
        lines = b.out_spool.read().splitlines(keepends=True)
        if mut.on("drop_output_line"):
            lines = lines[1:]
        elif mut.on("duplicate_output_line"):
            lines = [lines[0], *lines]
        elif mut.on("rewrite_custom_id"):
            first = orjson.loads(lines[0])
            first["custom_id"] = "batchconf-rewritten-" + str(first.get("custom_id"))
            lines[0] = orjson.dumps(first, option=orjson.OPT_APPEND_NEWLINE)
        b.out_spool.seek(0)
        b.out_spool.truncate()
        b.out_spool.write(b"".join(lines))

    def _expire(self, b: BatchRecord, t: float) -> None:
        rules = self.core.profile.expiry
        self._store_results(b, "expired", t)
        self._enter(b, rules.enters, t)

    def _finish(self, b: BatchRecord, role: str, t: float) -> None:
        self._store_results(b, "cancelled" if role == "cancelled" else None, t)
        self._enter(b, role, t)

    def _store_results(self, b: BatchRecord, unfinished: str | None, t: float) -> None:
        """Write unfinished lines (if any), then store the result files and set their ids."""
        core = self.core
        out_rules = core.profile.output
        mut = core.mutations
        if b.plan is not None and unfinished is not None and b.done < len(b.plan):
            policy = out_rules.unfinished_on_expiry if unfinished == "expired" else out_rules.unfinished_on_cancel
            code = out_rules.expired_code if unfinished == "expired" else out_rules.cancelled_code
            message = out_rules.expired_message if unfinished == "expired" else out_rules.cancelled_message
            lost = unfinished == "expired" and mut.on("expiry_loses_unfinished")
            if policy == "error_file" and not lost:
                buf: list[bytes] = []
                index = b.done
                for line in self._iter_plan(b, b.done, len(b.plan)):
                    key = f"{b.extra['hex']}{index:08x}"
                    buf.append(core.lines.failure(key, line["custom_id"], code, message))
                    index += 1
                    if len(buf) >= _SHUFFLE_WINDOW:
                        self._flush(b, [], buf, None)
                self._flush(b, [], buf, None)
            b.done = len(b.plan)
        if b.plan is None:
            b.close_spools()
            return
        if unfinished == "cancelled" and mut.on("cancel_loses_results"):
            b.out_spool.seek(0)
            b.out_spool.truncate()
            b.completed = 0
        if unfinished == "expired" and mut.on("expiry_drops_finished_lines"):
            b.out_spool.seek(0)
            b.out_spool.truncate()
        if b.completed and any(mut.on(n) for n in _OUTPUT_TAMPERING):
            self._tamper_output(b)
        stamp = int(t)
        write_out = b.completed > 0 or out_rules.empty_output_file or mut.on("empty_output_file_when_none_succeeded")
        write_err = (b.failed > 0 or out_rules.empty_error_file) and not mut.on("missing_error_file")
        if write_out and not mut.on("completed_without_output_id"):
            b.output_file_id = core.files.store_result(b, b.out_spool, out_rules.output_filename, stamp)
        if write_err:
            b.error_file_id = core.files.store_result(b, b.err_spool, out_rules.error_filename, stamp)
        b.close_spools()
