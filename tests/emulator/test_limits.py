"""Size limits: 200 MB batch input (400 "File is too large." at create) and 512 MB uploads.

Uploading ~201 MiB in-process was measured at ~12.5 s and ~1.8 GB peak RSS, so the
mechanism is tested on a copy of the openai profile with small limits; one test checks
that the bundled profile carries the documented values.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from emulator import Emulator
from schemas import ProfileError, load_profile
from tests.emulator._support import CHAT, ProfileCopy, chat_line, poll, to_jsonl

ONE_LINE = to_jsonl([chat_line("a")])
INPUT_LIMIT = 1000
UPLOAD_LIMIT = 4000


@pytest.fixture
def small(profile_copy: ProfileCopy) -> Iterator[Emulator]:
    """An emulator whose profile allows 1000-byte batch inputs and 4000-byte uploads."""
    path = profile_copy.make("openai-small", {"209715200": str(INPUT_LIMIT), "536870912": str(UPLOAD_LIMIT)})
    with Emulator(profile=path) as emu:
        yield emu


def _padded(size: int) -> bytes:
    """A valid one-line JSONL file of exactly `size` bytes."""
    head = ONE_LINE[:-2]  # strip the closing brace and newline
    pad = size - len(ONE_LINE) - len(', "pad": ""')
    assert pad >= 0
    data = head + b', "pad": "' + b"x" * pad + b'"}\n'
    assert len(data) == size
    return data


def test_bundled_profile_limits() -> None:
    """The openai profile says 200 MiB inputs (checked at create), 512 MiB uploads, 50,000 requests."""
    limits = load_profile("openai").limits
    assert (limits.max_input_bytes, limits.max_upload_bytes, limits.max_requests) == (209_715_200, 536_870_912, 50_000)
    assert limits.enforced_at["max_input_bytes"] == "create"


def test_input_too_large_at_create(small: Emulator) -> None:
    """A batch input over max_input_bytes uploads fine but create is a 400 "File is too large."."""
    with small.openai_client() as client:
        at_limit = client.files.create(file=("ok.jsonl", _padded(INPUT_LIMIT)), purpose="batch")
        over = client.files.create(file=("big.jsonl", _padded(INPUT_LIMIT + 1)), purpose="batch")
        assert over.bytes == INPUT_LIMIT + 1
        b = client.batches.create(input_file_id=at_limit.id, endpoint=CHAT, completion_window="24h")
        assert poll(client, b.id)[-1].status == "completed"
        with pytest.raises(openai.BadRequestError) as exc:
            client.batches.create(input_file_id=over.id, endpoint=CHAT, completion_window="24h")
        assert exc.value.body == {
            "message": "File is too large.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        assert [x.id for x in client.batches.list()] == [b.id]


def test_upload_too_large(small: Emulator) -> None:
    """An upload over max_upload_bytes is a 400 on param file, for any purpose, and stores nothing."""
    with small.openai_client() as client:
        ok = client.files.create(file=("ok.txt", b"x" * UPLOAD_LIMIT), purpose="assistants")
        assert ok.bytes == UPLOAD_LIMIT
        for purpose, name in (("assistants", "big.txt"), ("batch", "big.jsonl")):
            with pytest.raises(openai.BadRequestError) as exc:
                client.files.create(file=(name, _padded(UPLOAD_LIMIT + 1)), purpose=purpose)  # type: ignore[arg-type]
            assert exc.value.param == "file"
            assert "File is too large" in str(exc.value.body["message"])  # type: ignore[index]
        assert [f.id for f in client.files.list()] == [ok.id]


def test_upload_declared_far_too_large(small: Emulator) -> None:
    """An upload whose Content-Length is far over the limit is refused before the body is parsed."""
    with small.http_client() as http:
        body = b"x" * (UPLOAD_LIMIT + (1 << 20) + 1)
        resp = http.post("/v1/files", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
        assert resp.status_code == 400
        assert resp.json()["error"]["param"] == "file"


def test_profile_copy_must_be_named_after_its_file(profile_copy: ProfileCopy) -> None:
    """A profile file whose [profile] name differs from its stem is refused with the key named."""
    path = profile_copy.make("openai-renamed", {})
    wrong = path.with_name("elsewhere.toml")
    path.rename(wrong)
    with pytest.raises(ProfileError, match="name"):
        Emulator(profile=wrong)


def test_limits_reported_through_http(small: Emulator) -> None:
    """The small-limit emulator names its profile on /_emulator/info."""
    with httpx.Client(transport=small.sync_transport, base_url=small.root_url) as http:
        assert http.get("/_emulator/info").json()["profile"] == "openai-small"
