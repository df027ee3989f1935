"""End to end through the official SDK: Files and Batches, the happy path and listing.

Each test runs four times (`sdk`): in-process and against `batchconf serve`, with the sync
and the async SDK. Progression is per-poll: every retrieve moves a batch one status.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.emulator._support import (
    CHAT,
    MODEL,
    Harness,
    bounded,
    chat_line,
    check,
    poll,
    read_lines,
    results,
    submit,
    to_jsonl,
    upload,
)

DAY = 86_400
THIRTY_DAYS = 2_592_000


def test_full_flow(sdk: Harness) -> None:
    """Upload, create, poll validating->in_progress->finalizing->completed, download, list, delete."""
    client = sdk.client()
    lines = [chat_line(f"req-{i}", f"one two three {i}") for i in range(5)]
    data = to_jsonl(lines)

    f = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert (f.object, f.purpose, f.status, f.filename, f.bytes) == (
        "file",
        "batch",
        "processed",
        "input.jsonl",
        len(data),
    )
    assert f.expires_at == f.created_at + THIRTY_DAYS

    b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h", metadata={"project": "flow"})
    assert b.status == "validating"
    assert (b.input_file_id, b.endpoint, b.completion_window, b.metadata) == (f.id, CHAT, "24h", {"project": "flow"})
    assert b.expires_at == b.created_at + DAY
    assert b.request_counts is not None
    assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (0, 0, 0)
    assert b.output_file_id is None and b.error_file_id is None and b.errors is None

    seen = poll(client, b.id)
    assert [s.status for s in seen] == ["in_progress", "finalizing", "completed"]
    in_progress, finalizing, done = seen
    assert in_progress.request_counts is not None and in_progress.request_counts.total == 5
    assert in_progress.model == MODEL
    assert finalizing.request_counts is not None and finalizing.request_counts.completed == 5
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 5, 0)
    assert done.output_file_id is not None and done.error_file_id is None

    out_file = client.files.retrieve(done.output_file_id)
    assert out_file.purpose == "batch_output"
    content = client.files.content(done.output_file_id).content
    assert out_file.bytes == len(content)
    out, err = results(client, done)
    assert err == []
    assert sorted(line["custom_id"] for line in out) == sorted(line["custom_id"] for line in lines)
    by_id = {line["custom_id"]: line for line in out}
    assert by_id["req-3"]["response"]["body"]["choices"][0]["message"]["content"] == "3 three two one"

    # usage is the sum over the successful lines
    assert done.usage is not None
    usages = [line["response"]["body"]["usage"] for line in out]
    assert done.usage.input_tokens == sum(u["prompt_tokens"] for u in usages)
    assert done.usage.output_tokens == sum(u["completion_tokens"] for u in usages)
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0

    # the input file downloads byte for byte
    assert client.files.content(f.id).content == data

    listed = {x.id for x in bounded(client.files.list())}
    assert {f.id, done.output_file_id} <= listed
    assert [x.id for x in bounded(client.files.list(purpose="batch_output"))] == [done.output_file_id]

    deleted = client.files.delete(f.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (f.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    assert f.id not in {x.id for x in bounded(client.files.list())}

    # later polls of a finished batch change nothing
    assert client.batches.retrieve(b.id).model_dump() == done.model_dump()


def test_raw_responses_validate(sdk: Harness) -> None:
    """with_raw_response bodies validate as openai/file, openai/batch, openai/batch_list and carry x-request-id."""
    client = sdk.client()
    raw_file = client.files.with_raw_response.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose="batch")
    check("openai/file", raw_file.http_response.json())
    file_id = raw_file.http_response.json()["id"]
    raw_batch = client.batches.with_raw_response.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    body = raw_batch.http_response.json()
    check("openai/batch", body)
    assert raw_batch.headers["x-request-id"].startswith("req_")
    parsed = raw_batch.parse()
    assert parsed.id == body["id"]
    assert parsed._request_id == raw_batch.headers["x-request-id"]
    raw_list = client.batches.with_raw_response.list()
    check("openai/batch_list", raw_list.http_response.json())
    raw_files = client.files.with_raw_response.list()
    check("openai/file_list", raw_files.http_response.json())


def test_timestamps_set_once_and_ordered(sdk: Harness) -> None:
    """Each *_at is null until its status is entered, then set once and never changed."""
    client = sdk.client()
    b = submit(client, [chat_line("a"), chat_line("b")])
    snapshots = [b, *poll(client, b.id), client.batches.retrieve(b.id)]
    stamp_of = {
        "validating": "created_at",
        "in_progress": "in_progress_at",
        "finalizing": "finalizing_at",
        "completed": "completed_at",
    }
    first_seen: dict[str, int] = {}
    entered: set[str] = set()
    for snap in snapshots:
        entered.add(snap.status)
        for status, name in stamp_of.items():
            value = getattr(snap, name)
            if status in entered:
                assert isinstance(value, int), f"{name} not set in status {snap.status}"
                assert first_seen.setdefault(name, value) == value, f"{name} changed"
            else:
                assert value is None, f"{name} set before {status} was entered ({snap.status})"
        for name in ("failed_at", "expired_at", "cancelling_at", "cancelled_at"):
            assert getattr(snap, name) is None
        assert snap.expires_at == snap.created_at + DAY
    order = [first_seen[n] for n in ("created_at", "in_progress_at", "finalizing_at", "completed_at")]
    assert order == sorted(order)


def test_list_batches_paginates(sdk: Harness) -> None:
    """batches.list pages newest first with limit/after, has_more, and auto-pagination stops."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    ids = [client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id for _ in range(5)]
    newest_first = ids[::-1]

    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more is True

    assert [b.id for b in bounded(client.batches.list(limit=2))] == newest_first
    assert [b.id for b in bounded(client.batches.list())] == newest_first

    rest = client.batches.list(limit=10, after=newest_first[1])
    assert [b.id for b in rest.data] == newest_first[2:]
    assert rest.has_more is False

    raw = sdk.raw().get("/v1/batches", params={"limit": 2, "after": newest_first[3]}).json()
    assert [b["id"] for b in raw["data"]] == newest_first[4:]
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (newest_first[4], newest_first[4], False)


def test_list_does_not_move_batches(sdk: Harness) -> None:
    """Under per-poll progression only retrieve moves a batch; list shows it as it is."""
    client = sdk.client()
    b = submit(client, [chat_line("a")])
    for _ in range(3):
        assert [x.status for x in client.batches.list().data] == ["validating"]
    assert client.batches.retrieve(b.id).status == "in_progress"


def test_list_files_orders_filters_and_pages(sdk: Harness) -> None:
    """files.list honours order, purpose, limit and after; the empty page has null first/last ids."""
    client = sdk.client()
    raw = sdk.raw()
    empty = raw.get("/v1/files").json()
    assert (empty["data"], empty["first_id"], empty["last_id"], empty["has_more"]) == ([], None, None, False)

    ids = [upload(client, [chat_line(str(i))], filename=f"f{i}.jsonl").id for i in range(4)]
    other = client.files.create(file=("notes.txt", b"not a batch file"), purpose="assistants")

    assert [x.id for x in bounded(client.files.list(purpose="batch"))] == ids[::-1]
    assert [x.id for x in bounded(client.files.list(purpose="batch", order="asc"))] == ids
    assert [x.id for x in bounded(client.files.list(purpose="batch", limit=1))] == ids[::-1]
    assert [x.id for x in bounded(client.files.list())] == [other.id, *ids[::-1]]
    page = client.files.list(purpose="batch", order="asc", limit=2, after=ids[0])
    assert [x.id for x in page.data] == ids[1:3]
    assert page.has_more is True


def test_file_expires_after(sdk: Harness) -> None:
    """Upload expires_after (bracketed multipart fields) sets expires_at; out of range is a 400."""
    client = sdk.client()
    f = client.files.create(
        file=("in.jsonl", to_jsonl([chat_line("a")])),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at == f.created_at + 3600
    with pytest.raises(openai.BadRequestError) as exc:
        client.files.create(
            file=("in.jsonl", to_jsonl([chat_line("a")])),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 60},
        )
    assert exc.value.param == "expires_after[seconds]"


def test_output_expires_after(sdk: Harness) -> None:
    """output_expires_after sets the result files' expires_at from their own created_at."""
    client = sdk.client()
    b = submit(client, [chat_line("a")], output_expires_after={"anchor": "created_at", "seconds": 7200})
    done = poll(client, b.id)[-1]
    assert done.output_file_id is not None
    out = client.files.retrieve(done.output_file_id)
    assert out.expires_at == out.created_at + 7200
    assert out.created_at >= b.created_at


def test_output_file_default_expiry(sdk: Harness) -> None:
    """Result files expire 30 days after they are created when no output_expires_after is given."""
    client = sdk.client()
    done = poll(client, submit(client, [chat_line("a")]).id)[-1]
    assert done.output_file_id is not None
    out = client.files.retrieve(done.output_file_id)
    assert out.expires_at == out.created_at + THIRTY_DAYS


@pytest.mark.parametrize(
    ("endpoint", "body", "object_name"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a b"}]}, "chat.completion"),
        ("/v1/completions", {"prompt": "a b"}, "text_completion"),
        ("/v1/responses", {"input": "a b"}, "response"),
        ("/v1/embeddings", {"input": ["a b", "c"]}, "list"),
        ("/v1/moderations", {"input": "a b"}, None),
    ],
)
def test_each_mock_endpoint(
    local_sdk: Harness, endpoint: str, body: dict[str, object], object_name: str | None
) -> None:
    """Every endpoint the mock backend serves completes with schema-valid output lines."""
    client = local_sdk.client()
    model = "omni-moderation-latest" if "moderations" in endpoint else MODEL
    lines = [
        {"custom_id": f"c{i}", "method": "POST", "url": endpoint, "body": {"model": model, **body}} for i in range(3)
    ]
    done = poll(client, submit(client, lines, endpoint=endpoint).id)[-1]
    assert done.status == "completed"
    out, err = results(client, done)
    assert err == [] and len(out) == 3
    if object_name is not None:
        assert {line["response"]["body"]["object"] for line in out} == {object_name}


def test_validate_response_bodies_of_content(sdk: Harness) -> None:
    """files.content of a result file is JSONL whose lines are each valid JSON objects."""
    client = sdk.client()
    done = poll(client, submit(client, [chat_line("x"), chat_line("y")]).id)[-1]
    assert done.output_file_id is not None
    text = client.files.content(done.output_file_id).text
    assert text.endswith("\n")
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
    assert len(read_lines(client, done.output_file_id)) == 2


def test_flavour_is_what_it_says(sdk: Harness) -> None:
    """The async flavour really drives openai.AsyncOpenAI (over httpx.AsyncClient); the sync one openai.OpenAI."""
    client = sdk.client()
    inner = getattr(client, "_inner", client)
    if sdk.mode == "async":
        assert isinstance(inner, openai.AsyncOpenAI) and isinstance(inner._client, httpx.AsyncClient)
    else:
        assert isinstance(inner, openai.OpenAI) and isinstance(inner._client, httpx.Client)
    assert client.batches.list().data == []


def test_response_checker_has_teeth(sdk: Harness) -> None:
    """The schema hook records a violation when a mutation breaks the batch object, and nothing otherwise."""
    client = sdk.client()
    b = submit(client, [chat_line("a")])
    assert sdk.checker.violations == []
    sdk.target.set_mutations("batch_field_wrong_type")
    client.batches.retrieve(b.id)
    sdk.target.set_mutations()
    assert any("openai/batch" in v and "created_at" in v for v in sdk.checker.violations), sdk.checker.violations
    sdk.checker.violations.clear()
