"""Multipart abuse on upload: every malformed upload gets a 400 in the dialect's envelope,
never a 500; file names are metadata, never paths; an over-limit body is refused from its
declared size, before it is read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulator import Emulator
from schemas import validate

LINE = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}\n'


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with emu.http_client() as client:
        yield client


@pytest.mark.parametrize(
    ("name", "kwargs", "param"),
    [
        ("no file part", {"data": {"purpose": "batch"}}, "file"),
        ("no purpose part", {"files": {"file": ("a.jsonl", LINE)}}, "purpose"),
        (
            "two files",
            {"files": [("file", ("a.jsonl", LINE)), ("file", ("b.jsonl", LINE))], "data": {"purpose": "batch"}},
            "file",
        ),
        ("not multipart", {"content": b"{}", "headers": {"content-type": "application/json"}}, "file"),
        (
            "broken boundary",
            {"content": b"--xx\r\nfoo", "headers": {"content-type": "multipart/form-data; boundary=xx"}},
            "file",
        ),
        ("a bad purpose", {"files": {"file": ("a.jsonl", LINE)}, "data": {"purpose": "../../batch"}}, "purpose"),
    ],
)
def test_malformed_uploads_get_a_400(http: httpx.Client, name: str, kwargs: dict[str, object], param: str) -> None:
    """A malformed upload MUST get 400 with the envelope naming the part at fault."""
    response = http.post("/v1/files", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400, f"{name}: {response.status_code} {response.text}"
    validate("openai/error", response.json())
    assert response.json()["error"]["param"] == param, name


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd.jsonl", "a\x01\x1b[31m.jsonl", "x" * 4096 + ".jsonl", "dir/sub/in.jsonl", "ünïcødé.jsonl"],
)
def test_file_names_are_metadata(emu: Emulator, http: httpx.Client, filename: str) -> None:
    """A file name with `../`, control characters, 4 KB of text or a folder is echoed back as
    metadata and never used as a path: the bytes live under the file's own id."""
    response = http.post("/v1/files", files={"file": (filename, LINE)}, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"].endswith(".jsonl") and len(body["filename"]) >= len(filename) - 8
    assert emu.store.keys(f"files/{body['id']}") == [f"files/{body['id']}"]
    content = http.get(f"/v1/files/{body['id']}/content")
    assert content.content == LINE


def test_over_limit_body_refused_from_its_declared_size(http: httpx.Client) -> None:
    """A body declaring more than the upload limit is refused before it is read."""
    response = http.post(
        "/v1/files",
        content=b'--xx\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--xx--\r\n',
        headers={"content-type": "multipart/form-data; boundary=xx", "content-length": str(10**12)},
    )
    assert response.status_code == 400 and "too large" in response.json()["error"]["message"]
