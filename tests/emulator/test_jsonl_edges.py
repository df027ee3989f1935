"""JSONL edge cases: each has a documented outcome (README "Input files: edge cases").

A batch input is read line by line as UTF-8 JSON objects. What a line that breaks that
becomes depends on where it is: the first line is sniffed at upload (a file whose first line
is not a JSON object is refused there, 400 "Invalid file format"), any other is reported by
validation with its line number (`invalid_json_line`), and the batch fails.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import openai
import pytest

from emulator import Emulator


def line(custom_id: str, content: str = "hi there") -> bytes:
    """One valid chat line."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}).encode()


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with Emulator() as emu:
        yield emu.openai_client()


def run(client: openai.OpenAI, data: bytes) -> tuple[str, list[tuple[str, int | None]], list[dict[str, object]]]:
    """Upload, run to the end: (status, [(error code, line)], output records)."""
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(10):
        batch = client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed"):
            break
    errors = [(e.code or "", e.line) for e in (batch.errors.data if batch.errors and batch.errors.data else [])]
    records = []
    if batch.output_file_id:
        records = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    return batch.status, errors, records


def _nested(depth: int) -> bytes:
    payload = json.loads(line("a"))
    payload["body"]["metadata_blob"] = None
    raw = json.dumps(payload).encode()
    return raw.replace(b'"metadata_blob": null', b'"metadata_blob": ' + b"[" * depth + b"]" * depth)


@pytest.mark.parametrize(
    ("name", "data", "ran"),
    [
        ("crlf", line("a") + b"\r\n" + line("b") + b"\r\n", ["a", "b"]),
        ("blank lines between", line("a") + b"\n\n   \n" + line("b") + b"\n", ["a", "b"]),
        ("no final newline", line("a") + b"\n" + line("b"), ["a", "b"]),
        ("a 10 MB line", line("a", "x" * (10 << 20)) + b"\n", ["a"]),
        ("escaped NUL", line("a", "h\u0000i") + b"\n", ["a"]),
        ("500 levels of nesting in the body", _nested(500) + b"\n", ["a"]),
    ],
)
def test_lines_that_run(client: openai.OpenAI, name: str, data: bytes, ran: list[str]) -> None:
    """CRLF ends, blank lines, a missing final newline, very long lines and escaped NULs are
    ordinary input: every line runs once."""
    status, errors, records = run(client, data)
    assert (status, errors) == ("completed", []), name
    assert sorted(str(r["custom_id"]) for r in records) == ran


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "invalid UTF-8",
            line("a") + b"\n" + line("b").replace(b"hi", b"h\xff\xfe") + b"\n",
            [("invalid_json_line", 2)],
        ),
        ("BOM", line("a") + b"\n\xef\xbb\xbf" + line("b") + b"\n", [("invalid_json_line", 2)]),
        ("non-object JSON", line("a") + b"\n[1, 2]\n", [("invalid_json_line", 2)]),
        ("raw NUL byte", line("a") + b"\n" + line("b").replace(b"hi", b"h\x00i") + b"\n", [("invalid_json_line", 2)]),
        ("nesting past 1,024 levels", line("a") + b"\n" + _nested(2000) + b"\n", [("invalid_json_line", 2)]),
        (
            "a number past the float range",
            line("a")
            + b"\n"
            + line("b").replace(b'"messages"', b'"max_tokens": 1' + b"0" * 400 + b', "messages"')
            + b"\n",
            [("invalid_json_line", 2)],
        ),
        ("empty file", b"", [("empty_file", None)]),
        ("only blank lines", b"\n\n  \n", [("empty_file", None)]),
    ],
)
def test_lines_that_fail_validation(
    client: openai.OpenAI, name: str, data: bytes, expected: list[tuple[str, int | None]]
) -> None:
    """Bytes that are not one UTF-8 JSON object per line fail the batch with the line number
    (a BOM counts as such bytes; numbers past the float range and nesting past 1,024
    levels are beyond the parser's range); an empty file or one of blank lines fails as empty_file."""
    status, errors, _ = run(client, data)
    assert (status, errors) == ("failed", expected), name


def test_duplicate_keys_take_the_last_value(client: openai.OpenAI) -> None:
    """A line with a key twice is read as JSON parsers read it: the last value wins."""
    raw = line("first").replace(b'{"custom_id": "first"', b'{"custom_id": "first", "custom_id": "last"')
    status, errors, records = run(client, raw + b"\n")
    assert (status, errors) == ("completed", []) and [r["custom_id"] for r in records] == ["last"]


@pytest.mark.parametrize(
    "first",
    [b"[1, 2]", b"\xef\xbb\xbf" + line("a").replace(b"hi", b"h\x00i"), b"not json at all", b'{"custom_id": 1e999999}'],
)
def test_a_first_line_that_is_not_an_object_is_refused_at_upload(client: openai.OpenAI, first: bytes) -> None:
    """The upload sniffs the first line: not a JSON object there, 400 'Invalid file format'."""
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        client.files.create(file=("in.jsonl", io.BytesIO(first + b"\n" + line("b") + b"\n")), purpose="batch")
