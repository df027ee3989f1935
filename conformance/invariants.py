"""Checks of what the target answered against the contract (the profile and the JSON Schemas).

Two kinds of check live here:
- response checks (`expect_ok`, `expect_error`, `check_list_page`): every response the suite
  receives is validated against the dialect's JSON Schema, and every error response must be
  the dialect's envelope with the status, type, code and param of the profile's catalogue;
- batch invariants over a finished batch (`check_finished` runs them all): the observed
  statuses form a path of the profile's graph, terminal states stay terminal, each timestamp
  is set once when its status is entered and they are ordered, `expires_at` is `created_at`
  plus the window, request counts never decrease and add up, records validate, every input
  custom_id appears exactly once across the result records, the numbers of successes and
  failures equal the counts, and result references (file ids, a results URL) are null
  exactly when the profile says. Output order is never assumed.

The batch invariants read a batch through the profile's dialect adapter
(`conformance.dialects.adapter_for`): its canonical view (role, counts, result references,
errors, window) and its result records split into successes and failures, so the same
checks hold for every dialect; the dialect's own placement rules (OpenAI: successes only in
the output file; ScaiGrid: a status word of "ok" or "error") are the adapter's.

Every failure raises `ContractViolation` (an AssertionError) whose message says what was
received, what the contract expected and where the contract says it: the profile, the fact
key and that fact's source.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from schemas import Profile
from schemas._profile import RejectedRequest
from schemas._validation import SchemaValidationError, validate

from ._checks import Checks
from ._contract import (
    NOT_OBSERVED,
    SPEC_COUNTS,
    SPEC_ENVELOPE,
    SPEC_EXACTLY_ONCE,
    SPEC_LIST,
    SPEC_RECORDS,
    ContractViolation,
    check_schema,
    cite,
    schema_name,
    violation,
)
from .client import ApiResponse
from .dialects import BatchView, Dialect, adapter_for

__all__ = [
    "NOT_OBSERVED",
    "SPEC_COUNTS",
    "SPEC_ENVELOPE",
    "SPEC_EXACTLY_ONCE",
    "SPEC_LIST",
    "SPEC_RECORDS",
    "Checks",
    "ContractViolation",
    "ExpectedLineError",
    "FinishedLike",
    "ObservationLike",
    "check_error_file_lines",
    "check_exactly_once",
    "check_expires_at",
    "check_file_ids",
    "check_finished",
    "check_initial_status",
    "check_line_counts",
    "check_list_page",
    "check_records",
    "check_rejected_records",
    "check_request_counts",
    "check_result_refs",
    "check_schema",
    "check_status_path",
    "check_terminal_stays",
    "check_timestamps",
    "check_validation_errors",
    "cite",
    "expect_error",
    "expect_ok",
    "expect_refused",
    "history",
    "observed_statuses",
    "parse_jsonl",
    "results_settled",
    "schema_name",
    "violation",
]


class ObservationLike(Protocol):
    """What the waiter observed while polling one batch."""

    @property
    def snapshots(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def final(self) -> Mapping[str, Any]: ...


class FinishedLike(Protocol):
    """A batch polled to a terminal status, with its result files downloaded and parsed."""

    @property
    def batch_id(self) -> str: ...

    @property
    def created(self) -> Mapping[str, Any]: ...

    @property
    def observation(self) -> ObservationLike: ...

    @property
    def final(self) -> Mapping[str, Any]: ...

    @property
    def output_lines(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def error_lines(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def input_custom_ids(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class ExpectedLineError:
    """One entry a failed batch's `errors.data` must contain (from `profile.validation[name]`).

    `line` is the 1-based input line, or None for a file-level error; `param` None means
    "not checked" (the catalogue's template could not be filled).
    """

    name: str
    code: str
    line: int | None
    param: str | None = None

    @classmethod
    def of(cls, profile: Profile, name: str, line: int | None, **fields: object) -> ExpectedLineError:
        """The expectation for catalogue entry `name` at `line` (None if the entry has no line)."""
        spec = profile.validation[name]
        code, _message, param = spec.render(line=line, **fields)
        if param is not None and "{" in param:
            param = None
        return cls(name, code, line if spec.line else None, param)


# -- Responses -------------------------------------------------------------------------------


def expect_ok(response: ApiResponse, profile: Profile, kind: str | None, *, statuses: Iterable[int] = (200,)) -> Any:
    """The response has one of `statuses` and its body validates against schema `kind`
    (None: not JSON, e.g. a file download). Returns the parsed body."""
    allowed = tuple(statuses)
    if response.status not in allowed:
        route = profile.http.route(response.operation) if response.operation else None
        raise violation(
            f"status:{response.operation}",
            f"{response.operation} was refused",
            received=_exchange(response),
            expected=f"HTTP {' or '.join(map(str, allowed))}" + (f" from {route[0]} {route[1]}" if route else ""),
            profile=profile,
            key=f"http.operations.{response.operation}",
        )
    if kind is None:
        return response.json
    if response.json is None:
        raise violation(
            f"json:{response.operation}",
            f"{response.operation} answered a body that is not JSON",
            received=_exchange(response),
            expected=f"a JSON {schema_name(profile, kind)}",
            profile=profile,
            key=f"http.operations.{response.operation}",
        )
    check_schema(profile, kind, response.json, f"the body of {response.operation}")
    return response.json


def expect_error(response: ApiResponse, profile: Profile, name: str, **fields: object) -> Mapping[str, Any]:
    """The response is catalogue error `name`: its status, the dialect's envelope, and the
    catalogue's type, code and param (param only when `fields` fill its template).

    A difference names the one fact that differs (`errors.<name>.<field>`) and what the
    target answered for it. Returns the envelope's inner error object.
    """
    spec = profile.errors[name]
    rendered = spec.render(**fields)
    key = f"errors.{name}"
    if response.status != spec.status:
        raise violation(
            f"error-status:{name}",
            f"{response.operation} should have been refused with error {name!r}: "
            f"answered HTTP {response.status}, expected HTTP {spec.status}",
            received=_exchange(response),
            expected=f"HTTP {spec.status} with error type {spec.type!r}, code {rendered.code!r}",
            profile=profile,
            key=f"{key}.status",
            observed=response.status if 400 <= response.status <= 599 else NOT_OBSERVED,
        )
    error = _envelope(response, profile, name)
    for field in ("type", "code", "param"):
        want = getattr(rendered, field)
        if field == "param" and want is not None and "{" in want:
            continue
        got = error.get(field)
        if got != want:
            raise violation(
                f"error-{field}:{name}",
                f"{response.operation} HTTP {response.status}: error.{field} is {got!r}, "
                f"the catalogue's error {name!r} has {want!r}",
                received={f"error.{field}": got, "error": dict(error), "from": _exchange(response, body=False)},
                expected=f"error.{field} = {want!r}",
                profile=profile,
                key=f"{key}.{field}",
                observed=got if got is None or isinstance(got, str) else NOT_OBSERVED,
            )
    if not isinstance(error.get("message"), str) or not error["message"].strip():
        raise violation(
            f"error-message:{name}",
            f"{response.operation}: error.message must be a non-empty string",
            received=error.get("message"),
            expected="a human-readable message, e.g. " + repr(rendered.message),
            profile=profile,
            key=f"{key}.message",
        )
    return error


def _exchange(response: ApiResponse, *, body: bool = True) -> str:
    """`operation (METHOD url) -> HTTP status <body>`, the body whole (a message cuts it in
    the middle when it is long)."""
    text = f"{response.operation} ({response.method} {response.url}) -> HTTP {response.status}"
    if not body:
        return text
    if response.json is not None:
        return f"{text} {json.dumps(response.json, ensure_ascii=False)}"
    return f"{text} {response.content.decode('utf-8', errors='replace')}"


def _envelope(response: ApiResponse, profile: Profile, label: str) -> Mapping[str, Any]:
    """The inner error object of a response that must be the dialect's error envelope."""
    try:
        validate(schema_name(profile, "error"), response.json)
    except SchemaValidationError as exc:
        raise violation(
            f"error-envelope:{label}",
            f"{response.operation} HTTP {response.status} body is not the dialect's error envelope: {exc}",
            received=_exchange(response),
            expected=f"an instance of {schema_name(profile, 'error')}",
            source=adapter_for(profile).envelope_source,
        ) from None
    assert isinstance(response.json, Mapping)
    inner: Mapping[str, Any] = response.json["error"]
    return inner


def expect_refused(response: ApiResponse, profile: Profile, key: str) -> Mapping[str, Any]:
    """The response is a 4xx in the dialect's error envelope (any catalogue entry: used where
    the profile says a request is refused but names no specific error). `key` is the fact
    saying it is refused. Returns the inner error object."""
    if not 400 <= response.status < 500:
        raise violation(
            f"refused:{response.operation}",
            f"{response.operation} should have been refused",
            received=_exchange(response),
            expected="an HTTP 4xx in the dialect's error envelope",
            profile=profile,
            key=key,
        )
    return _envelope(response, profile, response.operation)


def check_list_page(page: Mapping[str, Any], profile: Profile, what: str) -> None:
    """A list page's `first_id`/`last_id` name its first and last items (null when empty)."""
    data = page.get("data") or []
    first = data[0].get("id") if data else None
    last = data[-1].get("id") if data else None
    for field, want in (("first_id", first), ("last_id", last)):
        if field in page and page[field] != want:
            raise violation(
                f"list-{field}",
                f"{what}: {field} does not name the page's {'first' if field == 'first_id' else 'last'} item",
                received=page[field],
                expected=want,
                source=SPEC_LIST,
            )
    if not isinstance(page.get("has_more"), bool):
        raise violation(
            "list-has_more",
            f"{what}: has_more must always be sent as a boolean",
            received=page.get("has_more"),
            expected="true or false",
            source=SPEC_LIST,
        )


# -- Status path and timestamps --------------------------------------------------------------


def history(created: Mapping[str, Any], observation: ObservationLike) -> list[Mapping[str, Any]]:
    """Every state of the batch the suite saw: the create response, then each poll."""
    return [created, *observation.snapshots]


def observed_statuses(states: Iterable[Mapping[str, Any]]) -> list[str]:
    """The statuses of `states`, consecutive repeats collapsed."""
    out: list[str] = []
    for state in states:
        status = str(state.get("status"))
        if not out or out[-1] != status:
            out.append(status)
    return out


def check_initial_status(created: Mapping[str, Any], profile: Profile) -> None:
    """The create response shows the profile's initial status."""
    life = profile.lifecycle
    if created.get("status") != life.initial:
        raise violation(
            "initial-status",
            "a newly created batch must be in the initial status",
            received=created.get("status"),
            expected=life.initial,
            profile=profile,
            key="lifecycle.initial",
            observed=created.get("status") if isinstance(created.get("status"), str) else NOT_OBSERVED,
        )


def check_status_path(statuses: Sequence[str], profile: Profile, *, every_transition: bool = True) -> None:
    """The observed statuses lie on a path of the profile's transition graph.

    `every_transition` True (the observer saw each transition, e.g. the emulator moving one
    status per poll): consecutive statuses must be edges. False (a real target polled now
    and then): each status must be reachable from the one observed before it.
    """
    life = profile.lifecycle
    unknown = next((s for s in statuses if s not in life.statuses), None)
    if unknown is not None:
        raise violation(
            "status-enum",
            f"status {unknown!r} is not one of the dialect's statuses",
            received=list(statuses),
            expected=list(life.statuses),
            profile=profile,
            key="lifecycle.statuses",
        )
    step = life.first_illegal_step(statuses)
    if step is not None and not every_transition:
        reach = _reachable(profile)
        step = next(((a, b) for a, b in itertools.pairwise(statuses) if a != b and b not in reach.get(a, set())), None)
    if step is None:
        return
    src, dst = step
    how = "is not an edge of" if every_transition else "is not a path in"
    raise violation(
        "status-path",
        f"observed {src!r} then {dst!r}, which {how} the status graph",
        received=" -> ".join(statuses),
        expected=f"from {src!r} only {list(life.transitions.get(src, ()))}",
        profile=profile,
        key=f"lifecycle.transitions.{src}",
    )


def check_terminal_stays(states: Sequence[Mapping[str, Any]], profile: Profile) -> None:
    """Once a terminal status is observed, every later observation shows it unchanged."""
    terminal: str | None = None
    for index, state in enumerate(states):
        status = state.get("status")
        if terminal is not None and status != terminal:
            raise violation(
                "terminal-stays",
                f"observation #{index} left terminal status {terminal!r}",
                received=status,
                expected=terminal,
                profile=profile,
                key="lifecycle.terminal",
            )
        if status in profile.lifecycle.terminal:
            terminal = str(status)


def _reachable(profile: Profile) -> dict[str, set[str]]:
    """For each status, the statuses reachable from it in one or more steps."""
    graph = profile.lifecycle.transitions
    out: dict[str, set[str]] = {}
    for start in profile.lifecycle.statuses:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            status = todo.pop()
            if status not in seen:
                seen.add(status)
                todo.extend(graph.get(status, ()))
        out[start] = seen
    return out


def _dominators(profile: Profile, target: str) -> set[str]:
    """The statuses every path from the initial status to `target` goes through."""
    life = profile.lifecycle
    if target not in life.statuses or target == life.initial:
        return set()
    out = {life.initial}
    for candidate in life.statuses:
        if candidate in (target, life.initial):
            continue
        seen = {life.initial}
        todo = [life.initial]
        while todo:
            for nxt in life.transitions.get(todo.pop(), ()):
                if nxt != candidate and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if target not in seen:
            out.add(candidate)
    return out


def check_timestamps(states: Sequence[Mapping[str, Any]], profile: Profile) -> None:
    """Each status timestamp is set when its status is entered, never before a status that
    could precede it, never changed once set, and the set ones are ordered along the graph."""
    stamps = profile.lifecycle.timestamps
    reach = _reachable(profile)
    first_seen: dict[str, tuple[int, Any]] = {}
    for index, state in enumerate(states):
        status = str(state.get("status"))
        # Set once: a value, once seen, never changes or disappears.
        for field in stamps.values():
            value = state.get(field)
            if field in first_seen:
                seen_at, seen = first_seen[field]
                if value != seen:
                    raise violation(
                        "timestamp-set-once",
                        f"{field} changed between observation #{seen_at} and #{index} (status {status!r})",
                        received=value,
                        expected=seen,
                        profile=profile,
                        key="lifecycle.timestamps",
                    )
            elif value is not None:
                first_seen[field] = (index, value)
        # Set when entered: the current status's stamp is set ...
        own = stamps.get(status)
        if own is not None and state.get(own) is None:
            raise violation(
                "timestamp-entered",
                f"observation #{index} is in status {status!r} but its timestamp {own} is null",
                received={own: None},
                expected=f"{own} set when {status!r} is entered",
                profile=profile,
                key=f"lifecycle.timestamps.{status}",
            )
        # ... so is the stamp of every status each path to the current one goes through ...
        for other in _dominators(profile, status):
            passed = stamps.get(other)
            if passed is not None and state.get(passed) is None:
                raise violation(
                    "timestamp-entered",
                    f"observation #{index} is in status {status!r}, which can only be reached "
                    f"through {other!r}, but {passed} is null",
                    received={passed: None, "status": status},
                    expected=f"{passed} set when {other!r} was entered",
                    profile=profile,
                    key=f"lifecycle.transitions.{other}",
                )
        # ... and no stamp of a status that cannot come before the current one.
        for other, field in stamps.items():
            if other == status or state.get(field) is None:
                continue
            if status not in reach.get(other, set()):
                raise violation(
                    "timestamp-entered",
                    f"observation #{index} is in status {status!r} yet {field} is set, "
                    f"and {other!r} cannot come before {status!r}",
                    received={field: state.get(field), "status": status},
                    expected=f"{field} null until {other!r} is entered",
                    profile=profile,
                    key=f"lifecycle.timestamps.{other}",
                )
        # Ordered: a status that precedes another has the earlier (or equal) stamp.
        for early, early_field in stamps.items():
            t_early = state.get(early_field)
            if not isinstance(t_early, int | float):
                continue
            for late in reach.get(early, set()):
                late_field = stamps.get(late)
                t_late = state.get(late_field) if late_field else None
                if late_field and late_field != early_field and isinstance(t_late, int | float) and t_late < t_early:
                    raise violation(
                        "timestamp-order",
                        f"observation #{index}: {late_field} is earlier than {early_field}, "
                        f"but {late!r} comes after {early!r}",
                        received={early_field: t_early, late_field: t_late},
                        expected=f"{early_field} <= {late_field}",
                        profile=profile,
                        key=f"lifecycle.transitions.{early}",
                    )


def check_expires_at(states: Sequence[Mapping[str, Any]], profile: Profile) -> None:
    """`expires_at` equals `created_at` plus the completion window, in every observation."""
    dialect = adapter_for(profile)
    window_field = dialect.field("window") or "the completion window"
    for index, state in enumerate(states):
        view = dialect.view(state)
        window = str(view.window)
        if window not in profile.windows:
            raise violation(
                "completion-window",
                f"observation #{index}: {window_field} is not a window of the profile",
                received=window,
                expected=sorted(profile.windows),
                profile=profile,
                key="windows",
            )
        created_at, expires_at = view.created_at, view.expires_at
        want = created_at + profile.windows[window] if isinstance(created_at, int) else None
        if expires_at != want:
            raise violation(
                "expires-at",
                f"observation #{index} (status {view.status!r}): expires_at must be created_at + {window}",
                received={"created_at": created_at, "expires_at": expires_at},
                expected={"expires_at": want},
                profile=profile,
                key=f"windows.{window}",
            )


def _accounts_every_line(profile: Profile, view: BatchView) -> bool:
    """Whether, at this terminal state, every line read has a result record."""
    role = view.role
    if role == "completed":
        return True
    if role == "expired":
        return profile.output.unfinished_on_expiry == "error_file"
    if role == "cancelled":
        return profile.output.unfinished_on_cancel == "error_file"
    return False


def check_request_counts(states: Sequence[Mapping[str, Any]], profile: Profile) -> None:
    """Counts never decrease, completed + failed never exceed total, and at a terminal
    status that accounts for every line they add up to the total."""
    dialect = adapter_for(profile)
    previous: tuple[int, int, int] | None = None
    for index, state in enumerate(states):
        view = dialect.view(state)
        counts = (view.total, view.completed, view.failed)
        total, completed, failed = counts
        if completed + failed > total:
            raise violation(
                "counts-add-up",
                f"observation #{index}: completed + failed exceeds total",
                received=view.counts_body,
                expected="completed + failed <= total",
                **dialect.counts_contract(),
            )
        if previous is not None:
            for name, before, now in zip(("total", "completed", "failed"), previous, counts, strict=True):
                if now < before:
                    raise violation(
                        "counts-monotonic",
                        f"observation #{index}: the {name} count decreased",
                        received=now,
                        expected=f">= {before}",
                        **dialect.counts_contract(),
                    )
        previous = counts
        terminal = view.status in profile.lifecycle.terminal
        if terminal and _accounts_every_line(profile, view) and total and completed + failed != total:
            raise violation(
                "counts-add-up",
                f"terminal status {view.status!r}: completed + failed must equal total",
                received=view.counts_body,
                expected=f"completed + failed == {total}",
                profile=profile,
                key=_policy_key(view),
            )


def _policy_key(view: BatchView) -> str:
    if view.role == "expired":
        return "output.unfinished_on_expiry"
    if view.role == "cancelled":
        return "output.unfinished_on_cancel"
    return "lifecycle.terminal"


# -- Result references and records -----------------------------------------------------------


def _started(views: Sequence[BatchView]) -> bool:
    """Whether the batch had begun processing by the last of `views`."""
    return any(v.total > 0 or v.role in ("in_progress", "finalizing") for v in views)


def check_result_refs(
    view: BatchView, profile: Profile, *, started: bool, where: str = "", later: Sequence[BatchView] = ()
) -> None:
    """The result references of a terminal state are set or null as the dialect's rules say
    (`Dialect.ref_rules`). `later` are the states polled after it: a reference missing here
    but set later is reported as set late (the status came before its results)."""
    dialect = adapter_for(profile)
    for rule in dialect.ref_rules(view, started=started):
        value = view.refs.get(rule.field)
        if rule.present is True and value is None:
            late = next((n for n, v in enumerate(later, start=1) if v.refs.get(rule.field) is not None), None)
            lag = (
                ""
                if late is None
                else f" (it was set {late} poll(s) later: the status was reported before its results)"
            )
            raise violation(
                rule.check,
                f"{where}{rule.why}, but {rule.field} is null{lag}",
                received=None,
                expected=rule.expected,
                profile=profile if rule.key else None,
                key=rule.key,
                source=rule.source,
            )
        if rule.present is False and value is not None:
            raise violation(
                rule.check,
                f"{where}{rule.why}, but {rule.field} is set",
                received=value,
                expected=None,
                profile=profile if rule.key else None,
                key=rule.key,
                source=rule.source,
            )


def check_file_ids(states: Sequence[Mapping[str, Any]], profile: Profile) -> None:
    """Result references (file ids, a results URL) appear only at a terminal status (when
    the profile says so), and at the end each is set exactly when the dialect's rules say:
    OpenAI, an output file exactly when something succeeded (error file: failed) unless the
    profile says empty files are created; ScaiGrid, results_url exactly when there are
    results."""
    out = profile.output
    dialect = adapter_for(profile)
    all_views = [dialect.view(state) for state in states]
    views: list[BatchView] = []
    for index, view in enumerate(all_views):
        views.append(view)
        terminal = view.status in profile.lifecycle.terminal
        if out.ids_at_terminal and not terminal:
            for ref_field, value in view.refs.items():
                if value is not None:
                    raise violation(
                        "file-ids-at-terminal",
                        f"observation #{index} (status {view.status!r}) exposes {ref_field} before a terminal status",
                        received=value,
                        expected=None,
                        profile=profile,
                        key="output.ids_at_terminal",
                    )
        if terminal:
            check_result_refs(
                view, profile, started=_started(views), where=f"observation #{index}: ", later=all_views[index + 1 :]
            )


def results_settled(profile: Profile) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate on a terminal batch body for the waiter (`Waiter(settled=...)`): whether
    every result reference the dialect's rules require at that status is set. While it is
    false the waiter polls again (bounded), so a reference that lags its status is fetched
    all the same and the lag is reported once, by `check_file_ids`."""
    dialect = adapter_for(profile)

    def settled(state: Mapping[str, Any]) -> bool:
        view = dialect.view(state)
        started = view.total > 0 or view.completed + view.failed > 0
        return all(
            view.refs.get(rule.field) is not None
            for rule in dialect.ref_rules(view, started=started)
            if rule.present is True
        )

    return settled


def parse_jsonl(raw: bytes | None, what: str) -> list[Any]:
    """The JSON values of a JSONL file (blank lines ignored); ContractViolation naming the
    first line that is not JSON."""
    if raw is None:
        return []
    out: list[Any] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            raise violation(
                "jsonl",
                f"{what}: line {number} is not JSON",
                received=line[:200],
                expected="one JSON object per line",
                source=SPEC_RECORDS,
            ) from None
    return out


def check_records(
    output_lines: Sequence[Mapping[str, Any]], error_lines: Sequence[Mapping[str, Any]], profile: Profile
) -> None:
    """The successes (`output_lines`) and failures (`error_lines`) obey the dialect's
    placement and shape rules, each valid against its schema (OpenAI: output-file lines are
    2xx responses, error-file lines failures; ScaiGrid: status "ok" with a response, status
    "error" with an error), and carry what the profile requires of every record
    (`output.request_id_required`: a `response.request_id` wherever there is a response)."""
    dialect = adapter_for(profile)
    dialect.check_records(output_lines, error_lines)
    if profile.output.request_id_required:
        for place, lines in zip(dialect.places, (output_lines, error_lines), strict=True):
            _check_request_ids(lines, place, profile)


def _check_request_ids(lines: Sequence[Mapping[str, Any]], place: str, profile: Profile) -> None:
    """Every record of `lines` that has a `response` object (the OpenAI line format, the only
    one `output.request_id_required` may be set for) names its request in `request_id`."""
    for number, line in enumerate(lines, start=1):
        response = line.get("response")
        if not isinstance(response, Mapping):
            continue
        request_id = response.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise violation(
                "records-request-id",
                f"{place} record #{number} (custom_id {line.get('custom_id')!r}) has a response without "
                "response.request_id (# is file order)",
                received=line,
                expected=f"response.request_id: a non-empty string, e.g. {profile.ids.request + 'abc123'!r}",
                profile=profile,
                key="output.request_id_required",
            )


def check_rejected_records(
    output_lines: Sequence[Mapping[str, Any]],
    error_lines: Sequence[Mapping[str, Any]],
    rejected: Iterable[str],
    rule: RejectedRequest,
    profile: Profile,
) -> None:
    """The lines whose body the endpoint rejects (custom_ids `rejected`, the profile's
    `rule`) are failure records of an HTTP exchange with the rule's status (OpenAI: in the
    error file with `response.status_code` that status, `error` null and the rule's param in
    `response.body.error.param`; ScaiGrid: an "error" record with code `http_<status>`);
    every other line is a success. A record missing altogether is for `check_exactly_once`.

    Placement rests on the shared contract; the status and param on the rule's facts, so a
    target answering an unverified rule otherwise deviates rather than fails."""
    dialect = adapter_for(profile)
    success_place, failure_place = dialect.places
    failing = set(rejected)
    successes = {line.get("custom_id"): line for line in output_lines}
    failures = {line.get("custom_id"): line for line in error_lines}
    accepted = sorted(str(cid) for cid in failing if cid in successes and dialect.record(successes[cid]).ok)
    if accepted:
        raise violation(
            "records-rejected-accepted",
            f"the endpoint ({rule.endpoint}) answered bodies the profile says it rejects ({rule.field}: [])",
            received={cid: successes[cid] for cid in accepted[:3]},
            expected=f"HTTP {rule.status}, a record in {failure_place}",
            profile=profile,
            key=rule.key("status"),
        )
    wrong_output = sorted(str(cid) for cid in failing if cid in successes)
    wrong_errors = sorted(str(cid) for cid in failures if cid not in failing)
    if wrong_output or wrong_errors:
        raise violation(
            "records-placement",
            "lines are in the wrong place of the results",
            received={
                f"failing lines in {success_place}": wrong_output,
                f"good lines in {failure_place}": wrong_errors,
            },
            expected={failure_place: sorted(failing), success_place: "every other line"},
            source=dialect.records_source,
        )
    want_code = dialect.http_error_code(rule.status)
    for cid in sorted(c for c in failing if c in failures):
        line = failures[cid]
        record = dialect.record(line)
        if not record.http or record.http_status != rule.status:
            raise violation(
                "records-http-failure",
                f"the failure record of {cid!r} does not carry the HTTP {rule.status} its endpoint answers "
                f"({rule.field}: [])",
                received=line,
                expected=dialect.http_failure_example(rule.status),
                profile=profile,
                key=rule.key("status"),
            )
        if record.code != want_code:
            raise violation(
                "records-http-failure",
                f"the failure record of {cid!r} does not carry the HTTP failure as the dialect writes it",
                received=line,
                expected=dialect.http_failure_example(rule.status),
                source=dialect.records_source,
            )
        if profile.output.line_format == "openai":
            _check_rejected_param(line, cid, rule, profile)


def _check_rejected_param(line: Mapping[str, Any], cid: str, rule: RejectedRequest, profile: Profile) -> None:
    """An OpenAI-format failure record nests the endpoint's error envelope in
    `response.body.error`: its `param` is the rule's."""
    response = line.get("response")
    body = response.get("body") if isinstance(response, Mapping) else None
    error = body.get("error") if isinstance(body, Mapping) else None
    got = error.get("param") if isinstance(error, Mapping) else None
    if got != rule.param:
        raise violation(
            "records-rejected-param",
            f"the failure record of {cid!r}: the endpoint's error names another param",
            received=f"response.body.error = {error!r}",
            expected=f"response.body.error.param = {rule.param!r}",
            profile=profile,
            key=rule.key("param"),
        )


def check_exactly_once(
    input_ids: Sequence[str],
    output_lines: Sequence[Mapping[str, Any]],
    error_lines: Sequence[Mapping[str, Any]],
    *,
    complete: bool = True,
) -> None:
    """Every input custom_id appears exactly once across the successes and failures, and
    nothing else does (`complete` False: at most once, for batches whose unfinished lines
    are dropped).

    Compared as multisets: the order of lines is never assumed."""
    wanted = Counter(input_ids)
    got = Counter(str(line.get("custom_id")) for line in [*output_lines, *error_lines])
    twice = sorted(k for k, n in got.items() if n > 1 and wanted.get(k, 0) < n)
    unknown = sorted(k for k in got if k not in wanted)
    missing = sorted(k for k in wanted if got.get(k, 0) < wanted[k]) if complete else []
    if twice or unknown or missing:
        raise violation(
            "exactly-once",
            "the custom_ids of the result records (successes and failures) are not the input custom_ids, "
            "each exactly once",
            received={
                "duplicated": twice[:10],
                "not in input": unknown[:10],
                "missing": missing[:10],
                "success records": len(output_lines),
                "failure records": len(error_lines),
            },
            expected=f"{len(input_ids)} custom_ids, each once across successes + failures",
            source=SPEC_EXACTLY_ONCE,
        )


def check_line_counts(
    final: Mapping[str, Any],
    output_lines: Sequence[Mapping[str, Any]],
    error_lines: Sequence[Mapping[str, Any]],
    profile: Profile,
) -> None:
    """There are `completed` success records and `failed` failure records (OpenAI: lines of
    the output and the error file; ScaiGrid: "ok" and "error" records of the results file)."""
    dialect = adapter_for(profile)
    view = dialect.view(final)
    places = dialect.places
    if (len(output_lines), len(error_lines)) != (view.completed, view.failed):
        raise violation(
            "line-counts",
            "the numbers of result records differ from the counts",
            received={f"records in {places[0]}": len(output_lines), f"records in {places[1]}": len(error_lines)},
            expected={"completed": view.completed, "failed": view.failed, "as": view.counts_body},
            **dialect.counts_contract(),
        )


def check_error_file_lines(
    error_lines: Sequence[Mapping[str, Any]], codes: Iterable[str], profile: Profile, key: str
) -> list[Mapping[str, Any]]:
    """Failure records are HTTP failures or non-HTTP failures with one of `codes` (`key` is
    the profile fact naming them); returns the non-HTTP ones."""
    dialect = adapter_for(profile)
    allowed = set(codes)
    non_http = []
    for line in error_lines:
        record = dialect.record(line)
        if record.http:
            continue
        if record.code not in allowed:
            raise violation(
                "error-line-code",
                f"the failure record of custom_id {line.get('custom_id')!r} has an unexpected code",
                received=line.get("error"),
                expected=f"code in {sorted(allowed)}",
                profile=profile,
                key=key,
                observed=record.code if len(allowed) == 1 and isinstance(record.code, str) else NOT_OBSERVED,
            )
        non_http.append(line)
    return non_http


def check_validation_errors(
    final: Mapping[str, Any],
    expected: Sequence[ExpectedLineError],
    profile: Profile,
    *,
    broken_lines: Iterable[int | None] | None = None,
) -> list[Mapping[str, Any]]:
    """The batch failed validation with its error entries (OpenAI `errors.data`, ScaiGrid
    `errors`) holding every expected entry (code, line, param) and no entry naming a line
    that is not broken (`broken_lines`, default the expected entries' lines). Returns the
    entries."""
    dialect = adapter_for(profile)
    view = dialect.view(final)
    where = dialect.errors_field
    failed = profile.lifecycle.status("failed")
    if view.status != failed:
        raise violation(
            "validation-status",
            "a batch whose input breaks the line rules must end in the failed status",
            received={"status": view.status, "errors": final.get("errors")},
            expected={"status": failed, "errors": [e.__dict__ for e in expected]},
            profile=profile,
            key=f"validation.{expected[0].name}" if expected else "lifecycle.roles.failed",
        )
    data = view.errors
    if not data:
        raise violation(
            "validation-errors",
            f"a batch that failed validation must say why in {where}",
            received=final.get("errors"),
            expected=[e.__dict__ for e in expected],
            profile=profile,
            key=f"validation.{expected[0].name}" if expected else "validation",
        )
    for want in expected:
        if not any(_matches(entry, want) for entry in data):
            raise _missing_entry(want, data, where, profile)
    broken = set(broken_lines) if broken_lines is not None else {e.line for e in expected}
    for entry in data:
        if entry.get("line") is not None and entry.get("line") not in broken:
            raise violation(
                "validation-spurious",
                f"{where} names line {entry.get('line')}, which is valid",
                received=entry,
                expected=f"entries only for lines {sorted(x for x in broken if x is not None)}",
                profile=profile,
                key="validation",
            )
    return list(data)


def _matches(entry: Mapping[str, Any], want: ExpectedLineError) -> bool:
    return (
        entry.get("code") == want.code
        and entry.get("line") == want.line
        and (want.param is None or entry.get("param") == want.param)
    )


def _missing_entry(
    want: ExpectedLineError, data: Sequence[Mapping[str, Any]], where: str, profile: Profile
) -> ContractViolation:
    """Why no entry matches `want`, as exactly as the entries allow: the entry for its line
    has another param, or another code; the entry with its code names another line; or
    nothing comes close. The violation rests on the fact that differs and quotes only the
    entries about that line or code."""
    key = f"validation.{want.name}"
    line = f"line {want.line}" if want.line is not None else "the file (no line)"
    entries = [e for e in data if isinstance(e, Mapping)]
    at_line = [e for e in entries if e.get("line") == want.line]
    expected = {"code": want.code, "line": want.line, "param": want.param or "(any)"}
    same_code = [e for e in at_line if e.get("code") == want.code]
    if same_code:  # only the param can differ
        params = sorted({repr(e.get("param")) for e in same_code})
        got = same_code[0].get("param")
        return violation(
            f"validation-{want.name}",
            f"{where} has the entry for {line} with param {', '.join(params)}, expected {want.param!r}",
            received=same_code,
            expected=expected,
            profile=profile,
            key=f"{key}.param",
            observed=got if len(params) == 1 and (got is None or isinstance(got, str)) else NOT_OBSERVED,
        )
    if len(at_line) == 1:  # the one entry for that line has another code
        entry = at_line[0]
        got = entry.get("code")
        param_too = want.param is not None and entry.get("param") != want.param
        return violation(
            f"validation-{want.name}",
            f"{where} has the entry for {line} with code {got!r}, expected {want.code!r}"
            + (f" (and param {entry.get('param')!r}, expected {want.param!r})" if param_too else ""),
            received=at_line,
            expected=expected,
            profile=profile,
            key=f"{key}.code",
            observed=got if isinstance(got, str) else NOT_OBSERVED,
        )
    if at_line:  # several entries: which one answers this breakage is not known
        codes = sorted({repr(e.get("code")) for e in at_line})
        return violation(
            f"validation-{want.name}",
            f"{where} has {len(at_line)} entries for {line}, with codes {', '.join(codes)}; none has {want.code!r}",
            received=at_line,
            expected=expected,
            profile=profile,
            key=f"{key}.code",
        )
    elsewhere = [
        e for e in entries if e.get("code") == want.code and (want.param is None or e.get("param") == want.param)
    ]
    if elsewhere:
        got_line = elsewhere[0].get("line")
        named = f"line {got_line}" if got_line is not None else "no line"
        # A line where none is expected (or none where one is) differs in the entry's
        # `line` fact; another line number is the target's mistake, not another fact.
        observed: object
        if (got_line is None) != (want.line is None):
            fact, observed = f"{key}.line", got_line is not None
        else:
            fact, observed = f"{key}.code", NOT_OBSERVED
        return violation(
            f"validation-{want.name}",
            f"{where} has the entry with code {want.code!r} for {named}, expected for {line}",
            received=elsewhere,
            expected=expected,
            profile=profile,
            key=fact,
            observed=observed,
        )
    return violation(
        f"validation-{want.name}",
        f"{where} lacks the entry for {want.name!r}: nothing for {line}, and no entry has code {want.code!r}",
        received=data,
        expected=expected,
        profile=profile,
        key=f"{key}.code",
    )


# -- Everything at once ----------------------------------------------------------------------


def check_finished(finished: FinishedLike, profile: Profile, *, every_transition: bool = True) -> None:
    """Every batch invariant of a finished batch (see the module docstring).

    `every_transition`: whether the observer saw each transition (see `check_status_path`).
    """
    dialect: Dialect = adapter_for(profile)
    states = history(finished.created, finished.observation)
    # Every invariant is checked, and every broken one reported: one schema nit must not
    # hide a lost line.
    checks = Checks()
    for index, state in enumerate(states):
        with checks:
            check_schema(profile, "batch", state, f"observation #{index} of batch {finished.batch_id}")
    with checks:
        check_initial_status(finished.created, profile)
    with checks:
        check_status_path(observed_statuses(states), profile, every_transition=every_transition)
    with checks:
        check_terminal_stays(states, profile)
    with checks:
        check_timestamps(states, profile)
    with checks:
        check_expires_at(states, profile)
    with checks:
        check_request_counts(states, profile)
    with checks:
        check_file_ids(states, profile)
    with checks:
        check_records(finished.output_lines, finished.error_lines, profile)
    with checks:
        check_line_counts(finished.final, finished.output_lines, finished.error_lines, profile)
    with checks:
        _check_accounted(finished, profile, dialect)
    checks.raise_any()


def _check_accounted(finished: FinishedLike, profile: Profile, dialect: Dialect) -> None:
    final = dialect.view(finished.final)
    accounted = final.status in profile.lifecycle.terminal and _accounts_every_line(profile, final)
    if accounted and final.total and final.total != len(finished.input_custom_ids):
        raise violation(
            "counts-total",
            "the total count differs from the number of input lines",
            received=final.counts_body,
            expected={"total": len(finished.input_custom_ids)},
            **dialect.counts_contract(),
        )
    if accounted and final.total:
        check_exactly_once(finished.input_custom_ids, finished.output_lines, finished.error_lines)
    else:
        check_exactly_once(finished.input_custom_ids, finished.output_lines, finished.error_lines, complete=False)
