"""Authentication and isolation: 401s, and each key (and OpenAI-Project) sees only its own objects."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.emulator._support import CHAT, Harness, bounded, chat_line, check, poll, submit, upload


def test_no_key_is_401(sdk: Harness) -> None:
    """A request without Authorization is a 401 with the envelope."""
    resp = sdk.raw(api_key="").get("/v1/batches")
    assert resp.status_code == 401
    check("openai/error", resp.json())
    assert "API key" in resp.json()["error"]["message"]


def test_no_key_through_sdk_is_401(sdk: Harness) -> None:
    """The SDK with its Authorization header omitted raises AuthenticationError."""
    client = sdk.client()
    with pytest.raises(openai.AuthenticationError) as exc:
        client.batches.list(extra_headers={"Authorization": openai.Omit()})
    assert exc.value.status_code == 401
    assert exc.value.code is None


def test_wrong_key_is_401(sdk: Harness) -> None:
    """An unknown key raises AuthenticationError with code invalid_api_key, on every operation."""
    client = sdk.client(api_key="sk-wrong")
    calls: list[Callable[[], object]] = [
        lambda: client.batches.list(),
        lambda: client.batches.retrieve("batch_x"),
        lambda: client.batches.cancel("batch_x"),
        lambda: client.batches.create(input_file_id="file-x", endpoint=CHAT, completion_window="24h"),
        lambda: client.files.list(),
        lambda: client.files.retrieve("file-x"),
        lambda: client.files.content("file-x"),
        lambda: client.files.delete("file-x"),
        lambda: client.files.create(file=("a.jsonl", b'{"a": 1}\n'), purpose="batch"),
    ]
    for call in calls:
        with pytest.raises(openai.AuthenticationError) as exc:
            call()
        assert exc.value.code == "invalid_api_key"


@pytest.mark.parametrize("header", ["Basic c2stdGVzdA==", "Bearer", "sk-test-alpha-0001", "Token sk-test-alpha-0001"])
def test_malformed_authorization_is_401(sync_sdk: Harness, header: str) -> None:
    """An Authorization header that is not `Bearer <known key>` is a 401."""
    resp = sync_sdk.raw(api_key="").get("/v1/batches", headers={"Authorization": header})
    assert resp.status_code == 401
    check("openai/error", resp.json())


def test_bearer_scheme_is_case_insensitive(sync_sdk: Harness) -> None:
    """`bearer <key>` authenticates like `Bearer <key>`."""
    resp = sync_sdk.raw(api_key="").get("/v1/batches", headers={"Authorization": f"bearer {sync_sdk.key}"})
    assert resp.status_code == 200


def test_keys_are_isolated(sdk: Harness) -> None:
    """Key B gets 404 on key A's batch and files and does not see them in lists."""
    a = sdk.client()
    b = sdk.client(api_key=sdk.other_key)
    batch = submit(a, [chat_line("x")])
    done = poll(a, batch.id)[-1]
    assert done.output_file_id is not None
    b_file = upload(b, [chat_line("y")])

    for call in (b.batches.retrieve, b.batches.cancel):
        with pytest.raises(openai.NotFoundError):
            call(batch.id)
    for file_id in (batch.input_file_id, done.output_file_id):
        for fcall in (b.files.retrieve, b.files.content, b.files.delete):
            with pytest.raises(openai.NotFoundError):
                fcall(file_id)
    assert bounded(b.batches.list()) == []
    assert [f.id for f in bounded(b.files.list())] == [b_file.id]
    assert b_file.id not in {f.id for f in bounded(a.files.list())}
    # A's objects are intact after B's attempts
    assert a.files.retrieve(batch.input_file_id).id == batch.input_file_id
    assert a.batches.retrieve(batch.id).status == "completed"


def test_batch_over_another_keys_file_fails(sdk: Harness) -> None:
    """A batch created by key B over key A's file fails validation as if the file did not exist."""
    a = sdk.client()
    b = sdk.client(api_key=sdk.other_key)
    f = upload(a, [chat_line("x")])
    done = poll(b, b.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id)[-1]
    assert done.status == "failed"
    assert done.errors is not None and done.errors.data is not None
    assert [(e.code, e.param) for e in done.errors.data] == [("invalid_request", "file_id")]


def test_project_header_isolates(sdk: Harness) -> None:
    """The same key under different OpenAI-Project headers sees different objects."""
    p1 = sdk.client(project="proj_one")
    p2 = sdk.client(project="proj_two")
    plain = sdk.client()
    batch = submit(p1, [chat_line("x")])
    with pytest.raises(openai.NotFoundError):
        p2.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        plain.files.retrieve(batch.input_file_id)
    assert bounded(p2.batches.list()) == []
    assert bounded(plain.files.list()) == []
    assert [x.id for x in bounded(p1.batches.list())] == [batch.id]


def test_admin_routes_need_no_key(sync_sdk: Harness) -> None:
    """The admin surface answers without a key (it is off the provider's paths)."""
    resp = sync_sdk.raw(api_key="").get("/_emulator/info")
    assert resp.status_code == 200
