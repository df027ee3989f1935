"""Streaming JSONL: split a byte stream into lines without holding the whole file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["iter_lines"]


def iter_lines(chunks: Iterable[bytes], start_offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield `(offset, line)` for each newline-terminated line of the stream.

    `offset` is the byte offset of the line's first byte (so a later ranged read can fetch
    it again); the line excludes its `\\n` (and a `\\r` before it). The last line need not
    end with a newline. Only `\\n` splits lines: a JSON string never holds a raw newline.
    """
    pending = b""
    pending_offset = start_offset
    for chunk in chunks:
        if not chunk:
            continue
        buf = pending + chunk if pending else chunk
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            yield pending_offset + pos, buf[pos:end]
            pos = nl + 1
        pending_offset += pos
        pending = buf[pos:]
    if pending:
        end = len(pending) - 1 if pending.endswith(b"\r") else len(pending)
        yield pending_offset, pending[:end]
