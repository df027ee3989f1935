"""The model layer's records: files and batches, dialect-neutral, no HTTP in sight."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Any

__all__ = ["BatchRecord", "FileRecord", "LinePlan", "Owner", "Usage"]

#: Who owns an object: (API key, project header value or "").
Owner = tuple[str, str]


@dataclass
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


@dataclass
class LinePlan:
    """Where each valid request line sits in the input object, in input order."""

    key: str
    parts: tuple[int, ...] = ()
    offsets: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))
    model: str | None = None

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass
class Usage:
    """Token totals over the successful lines."""

    input_tokens: int = 0
    output_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        """The OpenAI BatchUsage shape."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def _spool() -> SpooledTemporaryFile[bytes]:
    # Small: a SpooledTemporaryFile that rolls over copies its whole buffer once more.
    return SpooledTemporaryFile(max_size=1 << 20)


@dataclass
class BatchRecord:
    """A batch and its progress. `status` is the dialect's native name; `role` the canonical one."""

    id: str
    owner: Owner
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    expires_at: int | None
    status: str
    role: str
    output_expires_after: int | None = None
    stamps: dict[str, int] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    plan: LinePlan | None = None
    done: int = 0
    out_spool: SpooledTemporaryFile[bytes] = field(default_factory=_spool, repr=False)
    err_spool: SpooledTemporaryFile[bytes] = field(default_factory=_spool, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def close_spools(self) -> None:
        """Release the temporary result buffers."""
        self.out_spool.close()
        self.err_spool.close()
