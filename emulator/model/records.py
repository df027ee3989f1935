"""The model layer's records: files, batches and what a batch was given, dialect-neutral.

Nothing here knows a wire field name: the dialects' serializers map these records onto
their own shapes (`BatchRecord.results["output"]` is OpenAI's `output_file_id`, ScaiGrid's
`results_url` comes from `results["results"]`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Any, Literal

__all__ = ["BatchRecord", "FileRecord", "InputObject", "InputRef", "LinePlan", "Owner", "Usage"]

#: Who owns an object: (API key, project header value or "").
Owner = tuple[str, str]


@dataclass(slots=True)
class FileRecord:
    """A stored file; its bytes live in object storage under `key`."""

    id: str
    owner: Owner
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    key: str
    status: str = "processed"
    parts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class InputRef:
    """Where a batch's input comes from, as the client named it.

    `kind` is "file" (a Files API id), "url" (an object URL: s3://, http(s)://, a dialect's
    own scheme) or "inline" (the bytes came with the create request and were stored under
    the internal key `value`). `display` is what the dialect echoes back (None for inline).
    """

    kind: Literal["file", "url", "inline"]
    value: str

    @property
    def display(self) -> str | None:
        """The reference as the client gave it, or None for inline input."""
        return None if self.kind == "inline" else self.value


@dataclass(frozen=True, slots=True)
class InputObject:
    """A readable input: an object of the store's endpoint (`bucket` None: the emulator's own).

    `url_form` writes the URL of another object of the user's bucket the way the input's URL
    was written (results beside the input are named back to the client in that form).
    """

    key: str
    parts: tuple[int, ...] = ()
    bucket: str | None = None
    size: int = 0
    url_form: str = ""


@dataclass
class LinePlan:
    """Where each valid request line sits in the input object, in input order."""

    source: InputObject
    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    model: str | None = None

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(slots=True)
class Usage:
    """Token totals over the successful lines."""

    input_tokens: int = 0
    output_tokens: int = 0


def _spool() -> SpooledTemporaryFile[bytes]:
    # Small: a SpooledTemporaryFile that rolls over copies its whole buffer once more.
    return SpooledTemporaryFile(max_size=1 << 20)


@dataclass(slots=True)
class BatchRecord:
    """A batch and its progress. `status` is the dialect's native name; `role` the canonical one.

    `results` names the stored result objects by kind ("output", "error" for two files;
    "results" for one file holding both outcomes); a dialect serializes them as it must.
    """

    id: str
    owner: Owner
    endpoint: str
    input: InputRef
    window: str
    metadata: dict[str, str] | None
    created_at: int
    expires_at: int | None
    status: str
    role: str
    output_expires_after: int | None = None
    webhook_url: str | None = None
    seq: int = 0
    stamps: dict[str, int] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] | None = None
    results: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    plan: LinePlan | None = None
    done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The result buffers, made when a batch first writes a result: most batches a load
    # test creates are never run, and two buffers were half of a record's memory.
    _out_spool: SpooledTemporaryFile[bytes] | None = field(default=None, repr=False, compare=False)
    _err_spool: SpooledTemporaryFile[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """Whether the batch has reached a terminal role."""
        return self.role in TERMINAL_ROLES

    @property
    def out_spool(self) -> SpooledTemporaryFile[bytes]:
        """The buffer of the batch's successful result lines."""
        if self._out_spool is None:
            self._out_spool = _spool()
        return self._out_spool

    @out_spool.setter
    def out_spool(self, spool: SpooledTemporaryFile[bytes]) -> None:
        self._out_spool = spool

    @property
    def err_spool(self) -> SpooledTemporaryFile[bytes]:
        """The buffer of the batch's failed result lines."""
        if self._err_spool is None:
            self._err_spool = _spool()
        return self._err_spool

    @err_spool.setter
    def err_spool(self, spool: SpooledTemporaryFile[bytes]) -> None:
        self._err_spool = spool

    def close_spools(self) -> None:
        """Release the temporary result buffers (those it has)."""
        for spool in (self._out_spool, self._err_spool):
            if spool is not None:
                spool.close()


#: `BatchRecord.extra` key: the input's size in bytes where create knows it (an uploaded
#: file's, an inline body's), before validation has read the input.
INPUT_BYTES = "input_bytes"

#: The canonical roles a batch never leaves.
TERMINAL_ROLES = frozenset({"completed", "failed", "expired", "cancelled"})
