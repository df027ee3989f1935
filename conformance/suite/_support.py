"""Small helpers the suite's tests share: submit, create, run a batch to its end, walk lists.

Submitting and reading results go through the profile's dialect adapter
(`conformance.dialects`), so the same helper serves an upload-then-create dialect (OpenAI)
and an inline one (ScaiGrid). Every helper validates what it receives (schemas and, for
errors, the catalogue) through `conformance.invariants`, so a test cannot forget to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hypothesis import settings

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient, ApiResponse
from ..control import Control
from ..dialects import BatchParams, Dialect, Input, ResultsUnavailable, adapter_for
from ..scenarios import Finished
from ._scenarios import seen_by_builder

__all__ = [
    "Deferred",
    "Run",
    "Seen",
    "batch_request",
    "check_run",
    "create_ok",
    "dialect",
    "drive_to",
    "every_transition",
    "hypothesis_settings",
    "manual_progression",
    "run_to_end",
    "stage_ok",
    "states",
    "status_of",
    "submit_ok",
    "upload_ok",
    "view",
    "walk_list",
]

T = TypeVar("T")

#: The most pages a list walk reads: lists are bounded, whatever `has_more` says.
MAX_PAGES = 50


@dataclass(frozen=True)
class Deferred(Generic[T]):
    """What a shared fixture built, or the contract violation that stopped it.

    A fixture that talks to the target returns one, and each test calls `get()`: a
    violation then fails the test (a finding about the target) instead of erroring its
    setup (which would read as a harness problem)."""

    value: T | None = None
    violation: inv.ContractViolation | None = None

    @classmethod
    def of(cls, build: Callable[[], T]) -> Deferred[T]:
        """Run `build`, keeping its value or its ContractViolation."""
        try:
            return cls(value=build())
        except inv.ContractViolation as exc:
            return cls(violation=exc)

    def get(self) -> T:
        """The value; raises the violation again (in the calling test)."""
        if self.violation is not None:
            raise self.violation
        assert self.value is not None
        return self.value


def every_transition(target: Target) -> bool:
    """Whether polling this target sees every transition: the in-process emulator moves a
    batch one status per poll; a real target may change several times between two polls."""
    return target.kind == "emulator"


def status_of(profile: Profile, role: str) -> str:
    """The native status playing `role` (a harness error if the dialect lacks it)."""
    status = profile.lifecycle.status(role)
    if status is None:
        raise LookupError(f"profile {profile.name!r} has no status for role {role!r}")
    return status


def expect_final_role(run: Run, profile: Profile, role: str, check: str, problem: str, key: str) -> None:
    """The run ended in the native status playing `role`; else a violation naming `key`."""
    expected = status_of(profile, role)
    if run.final.get("status") != expected:
        raise inv.violation(
            check,
            problem,
            received={"status": run.final.get("status"), "errors": run.final.get("errors")},
            expected=expected,
            profile=profile,
            key=key,
        )


def dialect(profile: Profile) -> Dialect:
    """The profile's dialect adapter."""
    return adapter_for(profile)


def upload_ok(api: ApiClient, profile: Profile, content: bytes, filename: str | None = None) -> dict[str, Any]:
    """Upload a batch input file; it MUST be accepted as a schema-valid file object with the
    profile's batch purpose. Returns the file object."""
    name = filename or f"batchconf-input{profile.files.batch_file_extension}"
    return _uploaded(api.upload_file(content, name), profile)


def _uploaded(response: ApiResponse, profile: Profile) -> dict[str, Any]:
    body: dict[str, Any] = inv.expect_ok(response, profile, "file")
    if body.get("purpose") != profile.files.batch_purpose:
        raise inv.violation(
            "file-purpose",
            "the uploaded batch input file does not carry the batch purpose",
            received=body.get("purpose"),
            expected=profile.files.batch_purpose,
            profile=profile,
            key="files.batch_purpose",
        )
    return body


def stage_ok(api: ApiClient, profile: Profile, content: bytes, filename: str | None = None) -> Input:
    """Make `content` referable by a create request the dialect's way; an upload (OpenAI)
    MUST be accepted as a schema-valid file object with the batch purpose. Returns the input."""
    name = filename or f"batchconf-input{profile.files.batch_file_extension}"
    staged = dialect(profile).stage(api, content, filename=name)  # SubmitError: a harness limit
    if staged.response is not None:
        _uploaded(staged.response, profile)
    assert staged.input is not None
    return staged.input


def batch_request(
    profile: Profile,
    source: Input | str,
    endpoint: str | None = None,
    *,
    window: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    webhook_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A create-batch body in the profile's dialect (a str `source` is a file id): the
    dialect's default endpoint and window unless given."""
    source = Input.of_file(source) if isinstance(source, str) else source
    params = BatchParams(window=window, endpoint=endpoint, metadata=metadata, webhook_url=webhook_url, extra=extra)
    return dialect(profile).create_body(source, params)


def create_ok(api: ApiClient, profile: Profile, body: Mapping[str, Any]) -> dict[str, Any]:
    """Create a batch; it MUST be accepted (200, a schema-valid batch in the initial status)."""
    created: dict[str, Any] = inv.expect_ok(api.create_batch(dict(body)), profile, "batch")
    inv.check_initial_status(created, profile)
    return created


def submit_ok(
    api: ApiClient,
    profile: Profile,
    content: bytes,
    endpoint: str | None = None,
    *,
    window: str | None = None,
    webhook_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Stage `content` and create a batch of it, the dialect's way; both MUST be accepted.
    Returns the created batch."""
    source = stage_ok(api, profile, content)
    body = batch_request(profile, source, endpoint, window=window, webhook_url=webhook_url, **extra)
    return create_ok(api, profile, body)


@dataclass
class Seen:
    """Observed states of a batch (an `ObservationLike`)."""

    snapshots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The last state."""
        return self.snapshots[-1] if self.snapshots else {}


@dataclass
class Run:
    """A batch a test submitted itself, polled to its end, results fetched (a `FinishedLike`):
    `output_lines` the success records, `error_lines` the failure records, `raw` the
    downloaded bytes by result reference."""

    batch_id: str
    created: dict[str, Any]
    observation: Seen
    input_custom_ids: Sequence[str]
    output_lines: list[Any] = field(default_factory=list)
    error_lines: list[Any] = field(default_factory=list)
    raw: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        """The last observed state."""
        return self.observation.final


def run_to_end(
    api: ApiClient,
    waiter: Waiter,
    profile: Profile,
    created: dict[str, Any],
    input_custom_ids: Sequence[str],
    *,
    seen_before: Sequence[dict[str, Any]] = (),
    timeout: str = "terminal",
) -> Run:
    """Poll a batch to a terminal status through the waiter and fetch its results.

    `seen_before` are states the test saw itself (a cancel response, ...), kept in order
    before the polled ones. Every polled body MUST validate; downloads MUST succeed and
    be JSONL."""
    observation = waiter.wait(api, created["id"], timeout=timeout)
    seen = [*seen_before, *observation.snapshots]
    for index, state in enumerate(seen):
        inv.check_schema(profile, "batch", state, f"observation #{index + 1} of batch {created['id']}")
    run = Run(created["id"], created, Seen(seen), list(input_custom_ids))
    try:
        results = dialect(profile).fetch_results(api, run.final)
    except ResultsUnavailable as exc:
        if exc.response is not None:
            inv.expect_ok(exc.response, profile, None)
        raise inv.violation(
            "results", str(exc), received=run.final, expected="fetchable result references", source=inv.SPEC_RECORDS
        ) from None
    if results.problems:
        raise inv.violation(
            "jsonl",
            f"the results of batch {created['id']} are not JSONL",
            received=list(results.problems[:5]),
            expected="one JSON object per line",
            source=inv.SPEC_RECORDS,
        )
    run.output_lines = list(results.successes)
    run.error_lines = list(results.failures)
    run.raw = dict(results.raw)
    return run


def view(finished: Finished) -> Run:
    """A scenario's batch as the suite saw it: the create response, what its builder saw
    (a cancel response), then every poll; with its parsed result files. Result files that
    are not JSONL MUST NOT happen: that raises here."""
    problems = list(finished.parse_errors)
    if problems:
        raise inv.violation(
            "jsonl",
            f"the result files of batch {finished.batch_id} are not JSONL",
            received=problems[:5],
            expected="one JSON object per line",
            source=inv.SPEC_RECORDS,
        )
    seen = [*seen_by_builder(finished.batch_id), *finished.observation.snapshots]
    return Run(
        finished.batch_id,
        dict(finished.created),
        Seen([dict(state) for state in seen]),
        list(finished.input_custom_ids),
        [dict(line) for line in finished.output_lines],
        [dict(line) for line in finished.error_lines],
        dict(finished.raw_results),
    )


def states(run: Run) -> list[dict[str, Any]]:
    """Every state of the batch in order: the create response first."""
    return [run.created, *run.observation.snapshots]


def check_run(run: Run, profile: Profile, target: Target) -> None:
    """Every batch invariant MUST hold for this batch."""
    inv.check_finished(run, profile, every_transition=every_transition(target))


@contextmanager
def manual_progression(control: Control) -> Iterator[None]:
    """Only explicit steps move batches inside the block (the timing model is restored after,
    so later tests see the emulator as before)."""
    with control.timing_override(progression="manual"):
        yield


def drive_to(
    control: Control,
    profile: Profile,
    batch_id: str,
    status: str,
    states: list[dict[str, Any]],
    *,
    max_steps: int = 6,
) -> dict[str, Any]:
    """Step a batch (admin route) until it shows `status`, appending every state a step
    answers to `states` (the test's history of the batch). No step is taken when the last
    state already shows `status`. Steps that never get there (a status off the graph, a
    terminal status) are a violation of the profile's status graph."""
    for _ in range(max_steps):
        if states and states[-1].get("status") == status:
            return states[-1]
        states.append(control.step(batch_id))
    if states and states[-1].get("status") == status:
        return states[-1]
    inv.check_status_path(inv.observed_statuses(states), profile)
    raise inv.violation(
        "status-path",
        f"stepping batch {batch_id} {max_steps} times did not reach {status!r}",
        received=inv.observed_statuses(states),
        expected=f"a path of the status graph through {status!r}",
        profile=profile,
        key="lifecycle.transitions",
    )


def own_page(page: Any, profile: Profile, kind: str, owned: Collection[str] | None) -> Any:
    """Validate a list page against schema `kind`, its items only where `owned` names them
    (None: every item). Returns the page as received."""
    if not isinstance(page, dict) or owned is None or not isinstance(page.get("data"), list):
        inv.check_schema(profile, kind, page, f"a page of the {kind}")
        return page
    mine = [item for item in page["data"] if isinstance(item, dict) and item.get("id") in owned]
    inv.check_schema(profile, kind, {**page, "data": mine}, f"a page of the {kind} (the run's own items)")
    return page


def walk_list(
    fetch: Callable[[str | None], ApiResponse],
    profile: Profile,
    kind: str,
    *,
    limit: int,
    stop: Callable[[list[dict[str, Any]]], bool] | None = None,
    max_pages: int = MAX_PAGES,
    owned: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Walk a cursor-paginated list (`fetch(after)`), at most `max_pages` pages, stopping early
    when `stop(items so far)` holds. Each page MUST validate against schema `kind`, hold at
    most `limit` items, name its first and last ids, and repeat no item of an earlier page
    (which is how a list that ignores `after` shows). Returns the items in list order.

    With `owned` (the run's own ids), the items' schema is checked on those only: whatever
    else the principal holds (another run's batches, or ones a refusal check expected the
    target to refuse) is not this check's business."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    after: str | None = None
    for page_number in range(1, max_pages + 1):
        page = own_page(inv.expect_ok(fetch(after), profile, None), profile, kind, owned)
        where = f"page {page_number} of the {kind} walk (limit={limit}, after={after!r})"
        inv.check_list_page(page, profile, where)
        data = page["data"]
        if len(data) > limit:
            raise inv.violation(
                "list-limit",
                f"{where} holds more items than the limit asked for",
                received=len(data),
                expected=f"at most {limit}",
                source=inv.SPEC_LIST,
            )
        repeated = [item["id"] for item in data if item["id"] in seen]
        if repeated:
            raise inv.violation(
                "list-after",
                f"{where} repeats items of earlier pages: the cursor `after` was not honoured",
                received=repeated[:5],
                expected=f"only items after {after!r}",
                source=inv.SPEC_LIST,
            )
        seen.update(item["id"] for item in data)
        items.extend(data)
        if not page["has_more"] or (stop is not None and stop(items)):
            return items
        if not data:
            raise inv.violation(
                "list-has_more",
                f"{where} is empty but says has_more: true",
                received=page,
                expected="has_more false on an empty page",
                source=inv.SPEC_LIST,
            )
        after = str(data[-1]["id"])
    return items


def hypothesis_settings(target: Target) -> settings:
    """The property tests' settings: `BATCHCONF_HYPOTHESIS_PROFILE` (dev, ci, nightly; default
    dev), capped for targets other than the emulator."""
    name = os.environ.get("BATCHCONF_HYPOTHESIS_PROFILE", "dev")
    return strategies.settings_for(name, target.kind)
