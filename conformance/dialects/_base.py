"""What every dialect adapter gives the suite: submit a batch, view one of its states in
canonical terms, fetch and read its results.

The suite's tests and invariants never read a wire field name of a batch or a result record
themselves: they ask the profile's `Dialect` (see `adapter_for`). A dialect is one subclass;
where its input comes from (a Files API upload, inline base64, an object URL) and where its
results go (two files, one results file behind a URL, objects in a bucket) are its business.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from schemas import Profile

from ..client import ApiClient, ApiResponse

__all__ = [
    "CANONICAL_PARAMS",
    "BatchParams",
    "BatchView",
    "Dialect",
    "Input",
    "RefRule",
    "ResultRecord",
    "Results",
    "ResultsUnavailable",
    "Staged",
    "SubmitError",
    "default_endpoint",
    "parse_records",
]

#: The canonical create parameters; `Dialect.field(name)` gives each one's create-body field.
CANONICAL_PARAMS = ("input", "input_url", "window", "endpoint", "metadata", "webhook_url")


@dataclass(frozen=True)
class Input:
    """A batch's input as the suite hands it to a dialect: exactly one of the JSONL `content`
    itself, the id of a file in the target's Files API (`file_id`), or a `url` the target
    reads the input from."""

    content: bytes | None = None
    file_id: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.content, self.file_id, self.url) if v is not None]
        if len(given) != 1:
            raise ValueError("an Input is exactly one of content, file_id or url")

    @classmethod
    def of_content(cls, content: bytes) -> Input:
        """The JSONL bytes themselves (inline dialects send them; upload dialects upload them)."""
        return cls(content=content)

    @classmethod
    def of_file(cls, file_id: str) -> Input:
        """A file already stored in the target (a Files API id)."""
        return cls(file_id=file_id)

    @classmethod
    def of_url(cls, url: str) -> Input:
        """A URL the target reads the input from (object storage, pre-signed, scheme URLs)."""
        return cls(url=url)

    def describe(self) -> str:
        """`content (123 bytes)`, `file file-abc` or `url s3://b/k`, for messages."""
        if self.content is not None:
            return f"content ({len(self.content)} bytes)"
        return f"file {self.file_id}" if self.file_id is not None else f"url {self.url}"


@dataclass(frozen=True)
class BatchParams:
    """The canonical create parameters besides the input. None means "the dialect's default":
    the profile's first window; the profile's default endpoint where the dialect names one at
    create. A parameter the dialect has no field for (`Dialect.field(name)` is None) is not
    sent. `extra` fields are sent as given (to send a field the dialect does not know)."""

    window: str | None = None
    endpoint: str | None = None
    metadata: Mapping[str, Any] | None = None
    webhook_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Staged:
    """The input made referable by a create request: `input` (None when staging was refused)
    and, for dialects that upload first, the upload's `response`."""

    input: Input | None
    response: ApiResponse | None = None


class SubmitError(Exception):
    """Staging the input was refused (the upload); `response` is the refusal."""

    def __init__(self, message: str, response: ApiResponse | None = None) -> None:
        super().__init__(message)
        self.response = response


class ResultsUnavailable(Exception):
    """A result reference could not be fetched; `response` is the refusal (None when the
    reference itself is malformed or the harness cannot fetch that kind of reference)."""

    def __init__(self, message: str, response: ApiResponse | None = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class BatchView:
    """One state of a batch in canonical terms.

    `status` is the native status and `role` the canonical role it plays
    (`profile.lifecycle.roles`); `total`/`completed`/`failed` the counts, with `counts_body`
    their native form (for messages); `refs` the result references by native field (OpenAI:
    output_file_id and error_file_id; ScaiGrid: results_url), each None when null;
    `errors` the batch-level error entries (why a batch failed; None when there are none);
    `window` the completion window; `endpoint` the create-time endpoint (None where the
    dialect has none); `raw` the body as received.
    """

    id: str | None
    status: str | None
    role: str | None
    total: int
    completed: int
    failed: int
    counts_body: Mapping[str, Any]
    refs: Mapping[str, Any]
    errors: Sequence[Mapping[str, Any]] | None
    created_at: Any
    expires_at: Any
    window: str | None
    endpoint: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ResultRecord:
    """One result record in canonical terms: its `custom_id`, whether it is a success (`ok`),
    whether it is the outcome of an HTTP exchange with the endpoint (`http`) and that
    exchange's status (`http_status`, None if not given), and the error code (`code`, None
    when the record carries none)."""

    custom_id: str | None
    ok: bool
    http: bool
    http_status: int | None
    code: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Results:
    """A finished batch's results: the parsed records, split into `successes` and
    `failures` (each in file order; the order says nothing about input order), every record
    in file order (`records`), the downloaded bytes by reference field (`raw`, None where the
    reference was null) and a note per line that is not a JSON object (`problems`)."""

    successes: tuple[dict[str, Any], ...] = ()
    failures: tuple[dict[str, Any], ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    raw: Mapping[str, bytes | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RefRule:
    """What a result reference must be at a terminal status: `present` True (set), False
    (null) or None (either); `check` names the rule, `why` explains it, `expected` describes
    a set value (for messages), and `key` (a profile fact) or `source` (the shared contract)
    says where it is written."""

    field: str
    present: bool | None
    check: str
    why: str
    expected: str = "a reference"
    key: str | None = None
    source: str | None = None


def default_endpoint(profile: Profile) -> str:
    """The endpoint the suite's batches target: chat completions when allowed, else the first."""
    for preferred in ("/v1/chat/completions", "/chat/completions"):
        if preferred in profile.endpoints:
            return preferred
    return profile.endpoints[0]


def parse_records(raw: bytes | None, label: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON objects of a JSONL file (blank lines skipped), and a note per line that is
    not one (`label line N: ...`)."""
    if raw is None:
        return [], []
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            problems.append(f"{label} line {number}: not JSON ({exc}): {line[:120]!r}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{label} line {number}: a JSON {type(value).__name__}, not an object")
            continue
        records.append(value)
    return records, problems


class Dialect(ABC):
    """The adapter of one wire dialect, bound to a profile.

    Subclasses set `name` (the `profile.dialect` they serve) and the class attributes below,
    and implement the abstract methods. Nothing else in the suite reads a dialect's field
    names.
    """

    #: The `profile.dialect` this adapter serves.
    name: ClassVar[str]
    #: How the result records' places are named in messages: (successes, failures).
    places: ClassVar[tuple[str, str]]
    #: The result references that hold successes (a failed batch names none of them).
    success_refs: ClassVar[tuple[str, ...]]
    #: Where the batch's error entries sit, for messages (`errors.data`, `errors`).
    errors_field: ClassVar[str]
    #: Where the dialect's result records are specified (cited by placement checks).
    records_source: ClassVar[str]
    #: Where the dialect's error envelope is specified.
    envelope_source: ClassVar[str]
    #: Where the counts' meaning is specified: a profile fact (`counts_key`) or, when None,
    #: the shared contract (`counts_source`).
    counts_key: ClassVar[str | None] = None
    counts_source: ClassVar[str | None] = None

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def __repr__(self) -> str:
        return f"<{type(self).__name__} profile={self.profile.name!r}>"

    # -- create ------------------------------------------------------------------------------

    @abstractmethod
    def create_fields(self) -> Mapping[str, str]:
        """The create-body field of each canonical parameter the dialect has: `input` names
        the field an uploaded or inline input goes in, `input_url` the field of an input given
        by URL (where it differs)."""

    def field(self, param: str) -> str | None:
        """The create-body field of canonical parameter `param` (`CANONICAL_PARAMS`), or None
        when the dialect has none (ScaiGrid names no endpoint at create)."""
        if param not in CANONICAL_PARAMS:
            raise KeyError(f"unknown canonical parameter {param!r}; known: {', '.join(CANONICAL_PARAMS)}")
        return self.create_fields().get(param)

    def default_window(self) -> str:
        """The window the suite asks for when a test names none: the profile's first (sent
        explicitly, so the provider's own default, `batches.default_window`, is not assumed)."""
        return next(iter(self.profile.windows))

    @abstractmethod
    def stage(self, api: ApiClient, content: bytes, *, filename: str | None = None) -> Staged:
        """Make `content` referable by a create request (upload it, or keep it inline)."""

    @abstractmethod
    def create_body(self, source: Input, params: BatchParams | None = None) -> dict[str, Any]:
        """The create body for an input already staged (or given by reference)."""

    def submit(self, api: ApiClient, source: bytes | Input, params: BatchParams | None = None) -> ApiResponse:
        """Stage `source` when it is content, then send the create request; returns the
        create response (whatever its status). Raises `SubmitError` if staging was refused."""
        staged = self.stage(api, source) if isinstance(source, bytes) else Staged(source)
        if staged.input is None:
            detail = staged.response.describe() if staged.response is not None else "no reference"
            raise SubmitError(f"the input could not be staged: {detail}", staged.response)
        return api.create_batch(self.create_body(staged.input, params))

    @abstractmethod
    def input_of(self, state: Mapping[str, Any]) -> Input | None:
        """The input a batch body references, to create another batch of it (None when the
        body does not name it, e.g. an inline input)."""

    @abstractmethod
    def missing_input(self, seed: int, api: ApiClient | None = None) -> Input:
        """An input reference that names nothing (a file or object nobody stored); `api` is
        the principal whose storage it points into, where that matters (object storage)."""

    # -- batch states ------------------------------------------------------------------------

    @abstractmethod
    def view(self, state: Mapping[str, Any]) -> BatchView:
        """One batch body in canonical terms (counts raise TypeError/ValueError on non-numbers)."""

    @abstractmethod
    def ref_rules(self, view: BatchView, *, started: bool) -> list[RefRule]:
        """What each result reference must be at this terminal state; `started` says whether
        the batch had begun processing (a line read or an in-progress status seen)."""

    @abstractmethod
    def stable_fields(self) -> tuple[str, ...]:
        """The fields of a batch body that never change once it is terminal (besides status)."""

    # -- results -----------------------------------------------------------------------------

    @abstractmethod
    def download(self, api: ApiClient, ref_field: str, ref: str) -> ApiResponse:
        """Fetch one result reference (a file id, a URL) with `api`'s credentials."""

    @abstractmethod
    def parse_results(self, raw: Mapping[str, bytes | None]) -> Results:
        """Parse the downloaded references (`raw`, by reference field) and split the records."""

    def fetch_results(self, api: ApiClient, state: Mapping[str, Any]) -> Results:
        """Download every result reference `state` names and parse them. Raises
        `ResultsUnavailable` when a reference is not a string or its download is refused."""
        view = self.view(state)
        raw: dict[str, bytes | None] = {}
        for ref_field, ref in view.refs.items():
            if ref is None:
                raw[ref_field] = None
                continue
            if not isinstance(ref, str):
                raise ResultsUnavailable(f"batch {view.id}: {ref_field} is not a string: {ref!r}")
            response = self.download(api, ref_field, ref)
            if response.status != 200:
                raise ResultsUnavailable(
                    f"batch {view.id}: could not download {ref_field} {ref}: {response.describe()}", response
                )
            raw[ref_field] = response.content
        return self.parse_results(raw)

    @abstractmethod
    def record(self, line: Mapping[str, Any]) -> ResultRecord:
        """One result record in canonical terms."""

    @abstractmethod
    def check_records(self, successes: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]) -> None:
        """The dialect's placement and shape rules for result records (raises ContractViolation)."""

    @abstractmethod
    def http_error_code(self, status: int) -> str | None:
        """The error code a line answered with HTTP `status` carries in its record (None: none)."""

    @abstractmethod
    def http_failure_example(self, status: int) -> Mapping[str, Any]:
        """What the record of a line answered with HTTP `status` looks like, for messages."""

    # -- shared helpers ----------------------------------------------------------------------

    def counts_contract(self) -> dict[str, Any]:
        """Where the counts' meaning is said, as `violation(...)` keywords (profile and key,
        or source)."""
        if self.counts_key is not None:
            return {"profile": self.profile, "key": self.counts_key}
        return {"source": self.counts_source}

    def role(self, state: Mapping[str, Any]) -> str | None:
        """The canonical role of a body's status."""
        return self.profile.lifecycle.role(str(state.get("status")))


#: A predicate choosing an adapter class for a profile of its dialect.
Chooser = Callable[[Profile], bool]
