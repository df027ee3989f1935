"""The seams of the model layer: named points where a value passes through `Mutations.apply`.

Each constant names one point and the type of value handed through it. Dialects add their
own wire seams (`WIRE_*`). The engine and services call `apply` only at these points, and
only ask `active(point)` first where building the value costs something.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCESS_ISOLATE",
    "ACCESS_REQUIRE_KEY",
    "AFTER_WORK",
    "CANCEL_REFUSED",
    "CREATE_INLINE_MAX",
    "CREATE_MAX_CONCURRENT",
    "INPUT_POLICY_DENIES",
    "INPUT_PRESIGNED",
    "LIST_AFTER",
    "NOTIFY_COPIES",
    "RESULTS_KEYS",
    "RESULTS_LINES",
    "RESULTS_STORE",
    "RESULTS_UNFINISHED",
    "UPLOAD_JSONL_CHECK",
    "VALIDATION_ERROR",
    "WIRE_BATCH",
    "WIRE_ERROR",
    "WIRE_LIST",
    "ResultLines",
    "StorePlan",
    "WireError",
]

#: bool: whether requests need a valid key.
ACCESS_REQUIRE_KEY = "access.require_key"
#: bool: whether each owner sees only its own objects.
ACCESS_ISOLATE = "access.isolate"
#: bool: whether a batch upload must look like JSONL.
UPLOAD_JSONL_CHECK = "upload.jsonl_check"
#: str | None: the `after` cursor a batch list honours.
LIST_AFTER = "list.after"
#: int: the concurrent-batch limit enforced at create (0 = none).
CREATE_MAX_CONCURRENT = "create.max_concurrent"
#: int: the inline-input size limit enforced at create (0 = none).
CREATE_INLINE_MAX = "create.inline_max"
#: bool: whether an input URL with query parameters (a pre-signed URL) is accepted.
INPUT_PRESIGNED = "input.presigned"
#: list[str]: the actions a bucket policy denies the batch principal on the input (context: bucket).
INPUT_POLICY_DENIES = "input.policy_denies"
#: dict | None: a validation error entry (None: the line is accepted after all).
VALIDATION_ERROR = "validation.error"
#: str: the role a batch enters when its lines are done ("finalizing" or "completed").
AFTER_WORK = "lifecycle.after_work"
#: str: what a cancel of a batch past cancelling does: "refuse", "accept" or "force:<role>".
CANCEL_REFUSED = "cancel.refused"
#: str: what becomes of unfinished lines at an ending ("error_file" or "drop").
RESULTS_UNFINISHED = "results.unfinished"
#: ResultLines: the result lines just before they are stored.
RESULTS_LINES = "results.lines"
#: (str, str): the output and error keys of results beside the input (context: batch).
RESULTS_KEYS = "results.keys"
#: StorePlan: which result objects are stored and published.
RESULTS_STORE = "results.store"
#: int: how many times a batch's end is announced (webhooks).
NOTIFY_COPIES = "notify.copies"
#: dict: a batch's wire body (context: batch, clock).
WIRE_BATCH = "wire.batch"
#: dict: a list page's wire body.
WIRE_LIST = "wire.list"
#: WireError: an error response about to be sent.
WIRE_ERROR = "wire.error"


@dataclass
class ResultLines:
    """A batch's result lines by file, with the counts the batch will report.

    `ending` is None for a batch whose lines all ran, else "expired" or "cancelled".
    """

    output: list[bytes]
    errors: list[bytes]
    completed: int
    failed: int
    ending: str | None


@dataclass
class StorePlan:
    """Which result objects are written, and whether the output's reference is published."""

    write_output: bool
    write_errors: bool
    publish_output: bool = True


@dataclass
class WireError:
    """An error response: HTTP status, body, and the catalogue name it renders."""

    status: int
    body: dict[str, object]
    name: str


# -- Gateways and OpenAI-compatible providers (the HTTP layer and the backend) ----------------
# RESULTS_STORE gets the batch as context (`batch`) from the Files API sink, so a mutation can
# tell a failed batch's error file from a finished batch's.

__all__ += [
    "ACCESS_AUTH_HEADER",
    "BACKEND_CATALOGUE",
    "CREATE_DEFAULT_WINDOW",
    "HTTP_ALIAS_SERVED",
    "HTTP_REQUIRED_HEADERS",
]

#: tuple[str, ...]: the headers every provider request must carry (a gateway's provider selector).
HTTP_REQUIRED_HEADERS = "http.required_headers"
#: bool: whether a base path alias serves requests (context: alias), e.g. Azure's pre-v1 /openai.
HTTP_ALIAS_SERVED = "http.alias_served"
#: (str, str): the header an API key is read from, and its scheme ('' for the raw key).
ACCESS_AUTH_HEADER = "access.auth_header"
#: str: the completion window a create request that names none gets.
CREATE_DEFAULT_WINDOW = "create.default_window"
#: frozenset[str] | None: the models a catalogue backend serves (None: any model).
BACKEND_CATALOGUE = "backend.catalogue"
