"""Model backends: the deterministic mock's bodies, and forwarding to a real server."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulator import Emulator, HttpBackend, LineRequest, MockBackend, SyncASGITransport
from emulator._backend import rejections_of
from schemas import load_profile
from schemas._profile import RejectedRequest


def _req(endpoint: str, body: dict[str, Any]) -> LineRequest:
    return LineRequest(endpoint, body, "c1", "k1", 1_700_000_000)


def test_mock_is_deterministic_and_counts_tokens() -> None:
    """The same chat request gets the same answer: the prompt's words reversed, word counts as tokens."""
    body = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
    a, b = (
        MockBackend().execute(_req("/v1/chat/completions", body)),
        MockBackend().execute(_req("/v1/chat/completions", body)),
    )
    assert a == b and a.status_code == 200 and a.body is not None
    assert a.body["choices"][0]["message"]["content"] == "three two one"
    assert a.body["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def test_mock_honours_max_tokens_and_multi_message_prompts() -> None:
    """max_tokens cuts the answer (finish_reason length); every message counts as prompt."""
    body = {
        "model": "m",
        "max_tokens": 2,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a b c"}]},
        ],
    }
    reply = MockBackend().execute(_req("/v1/chat/completions", body))
    assert reply.body is not None
    choice = reply.body["choices"][0]
    assert choice["message"]["content"] == "c b" and choice["finish_reason"] == "length"
    assert (reply.input_tokens, reply.output_tokens) == (5, 2)


@pytest.mark.parametrize(
    ("endpoint", "body", "check"),
    [
        (
            "/v1/embeddings",
            {"model": "e", "input": ["x", "y z"], "dimensions": 5},
            lambda b: [len(d["embedding"]) for d in b["data"]] == [5, 5],
        ),
        ("/v1/completions", {"model": "c", "prompt": "p q"}, lambda b: b["choices"][0]["text"] == "q p"),
        (
            "/v1/responses",
            {"model": "r", "input": "hello there"},
            lambda b: b["output"][0]["content"][0]["text"] == "there hello",
        ),
        ("/v1/moderations", {"input": ["a", "b"]}, lambda b: [r["flagged"] for r in b["results"]] == [False, False]),
        (
            "/v1/audio/transcriptions",
            {"model": "whisper-1", "file": "https://example.invalid/a.mp3", "prompt": "good morning"},
            lambda b: b == {"text": "morning good"},
        ),
    ],
)
def test_mock_endpoints(endpoint: str, body: dict[str, Any], check: Any) -> None:
    """Every mocked endpoint answers 200 with its own response shape."""
    reply = MockBackend().execute(_req(endpoint, body))
    assert reply.status_code == 200 and reply.body is not None and check(reply.body)


def test_mock_refuses_bad_bodies_as_line_errors() -> None:
    """A body the endpoint cannot serve is a 400 line error (never an exception)."""
    for endpoint, body in [
        ("/v1/chat/completions", {"model": "m"}),
        ("/v1/embeddings", {"model": "m"}),
        ("/v1/inference/chat", {"model": "m", "messages": []}),
        ("/v1/inference/embed", {"model": "m", "input": [1, 2]}),
        ("/v1/audio/transcriptions", {"model": "whisper-1", "prompt": "no audio"}),
        ("/v1/audio/transcriptions", {"model": "whisper-1", "file": ""}),
        ("/v1/images/edits", {}),
    ]:
        reply = MockBackend().execute(_req(endpoint, body))
        assert reply.status_code == 400 and reply.body is not None and "message" in reply.body["error"]


@pytest.mark.parametrize(
    ("native", "openai", "body"),
    [
        (
            "/v1/inference/chat",
            "/v1/chat/completions",
            {
                "model": "scailabs/poolnoodle-omni",
                "messages": [{"role": "user", "content": "Summarize: a b"}],
                "max_tokens": 2,
            },
        ),
        (
            "/v1/inference/embed",
            "/v1/embeddings",
            {"model": "openai/text-embedding-3-small", "input": ["First text", "Second text"]},
        ),
    ],
)
def test_scaigrid_inference_paths_answer_like_their_openai_twins(
    native: str, openai: str, body: dict[str, Any]
) -> None:
    """ScaiGrid's native chat and embed lines get the very reply of the OpenAI endpoint."""
    backend = MockBackend()
    reply = backend.execute(_req(native, body))
    assert reply == backend.execute(_req(openai, body))
    assert reply.status_code == 200 and reply.body is not None


def test_scaigrid_inference_chat_is_a_chat_completion_and_embed_a_list() -> None:
    """The reply shapes the ScaiGrid contract names: a chat.completion, an embeddings list."""
    backend = MockBackend(embedding_dimensions=4)
    chat = backend.execute(_req("/v1/inference/chat", {"model": "m", "messages": [{"role": "user", "content": "x y"}]}))
    assert chat.body is not None and chat.body["object"] == "chat.completion"
    assert chat.body["choices"][0]["message"]["content"] == "y x"
    embed = backend.execute(_req("/v1/inference/embed", {"model": "e", "input": "one text"}))
    assert embed.body is not None and embed.body["object"] == "list"
    assert [len(item["embedding"]) for item in embed.body["data"]] == [4]


def test_transcription_is_deterministic_from_the_file_without_a_prompt() -> None:
    """Equal bodies give equal text; another file gives another text; the error names `file`."""
    backend = MockBackend()
    body = {"model": "whisper-1", "file": "s3://bucket/a.wav"}
    first, again = (
        backend.execute(_req("/v1/audio/transcriptions", body)),
        backend.execute(_req("/v1/audio/transcriptions", dict(body))),
    )
    other = backend.execute(_req("/v1/audio/transcriptions", {**body, "file": "s3://bucket/b.wav"}))
    assert first == again and first.status_code == 200 and first.body is not None
    assert set(first.body) == {"text"} and first.body["text"].startswith("transcript ")
    assert other.body is not None and other.body["text"] != first.body["text"]
    missing = backend.execute(_req("/v1/audio/transcriptions", {"model": "whisper-1"}))
    assert missing.status_code == 400 and missing.body is not None
    assert missing.body["error"]["param"] == "file"


def _upstream() -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("model") == "missing":
            return JSONResponse(
                {
                    "error": {
                        "message": "no such model",
                        "type": "invalid_request_error",
                        "param": "model",
                        "code": "model_not_found",
                    }
                },
                404,
            )
        return JSONResponse(
            {
                "id": "up-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_http_backend_forwards_lines_and_keeps_their_http_errors() -> None:
    """With HttpBackend each line's body comes from the upstream server; its HTTP errors land in
    the error file with their status and body; usage is summed from the upstream's."""
    transport = SyncASGITransport(_upstream())
    backend = HttpBackend("http://upstream.local/v1", api_key="upstream-key", transport=transport)
    lines = [
        {
            "custom_id": "ok",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "up", "messages": [{"role": "user", "content": "hi"}]},
        },
        {
            "custom_id": "ok2",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "up", "messages": [{"role": "user", "content": "hi"}]},
        },
    ]
    try:
        with Emulator(backend=backend) as emu:
            client = emu.openai_client()
            data = "".join(json.dumps(line) + "\n" for line in lines).encode()
            f = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
            batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
            while batch.status not in ("completed", "failed"):
                batch = client.batches.retrieve(batch.id)
            assert batch.status == "completed" and batch.output_file_id
            out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
            assert {o["response"]["body"]["id"] for o in out} == {"up-1"}
            assert batch.usage is not None and batch.usage.input_tokens == 14 and batch.usage.output_tokens == 6
    finally:
        backend.close()
        transport.close()


def test_http_backend_error_and_unreachable() -> None:
    """An upstream 404 stays a 404 line; an unreachable upstream is a non-HTTP failure."""
    transport = SyncASGITransport(_upstream())
    backend = HttpBackend("http://upstream.local/v1", transport=transport)
    try:
        reply = backend.execute(_req("/v1/chat/completions", {"model": "missing", "messages": []}))
        assert reply.status_code == 404 and reply.body is not None and reply.body["error"]["code"] == "model_not_found"
    finally:
        backend.close()
        transport.close()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    dead = HttpBackend("http://127.0.0.1:9/v1", transport=httpx.MockTransport(refuse))
    try:
        reply = dead.execute(_req("/v1/chat/completions", {"model": "m"}))
        assert reply.error_code == "request_timeout" and reply.body is None
    finally:
        dead.close()


def test_trailing_slash_is_a_404_envelope_not_a_redirect() -> None:
    """`/v1/batches/` is not a route: the dialect's 404 envelope, never a 307 redirect."""
    with Emulator() as emu, emu.http_client() as http:
        resp = http.get("/v1/batches/")
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "unknown_url"


# -- Bodies the provider's endpoints reject (profile data: [rejected_requests]) ---------------


def test_profile_mock_rejects_an_empty_messages_array_as_openai_does() -> None:
    """For the openai profile, a chat whose `messages` is empty gets the answer the profile
    records from the live API: 400 with the whole envelope (message, type, param, code)."""
    profile = load_profile("openai")
    rule = profile.rejected_requests["/v1/chat/completions"]
    reply = MockBackend.for_profile(profile).execute(_req("/v1/chat/completions", {"model": "m", "messages": []}))
    assert reply.status_code == 400 == rule.status
    assert reply.body == {
        "error": {
            "message": "[] is too short - 'messages'",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
    }


def test_rejections_follow_the_profile_data_not_the_endpoint() -> None:
    """The answer comes from the rule: another status, param, code and message in the data
    give that answer; a body whose field is not an empty array is served as usual."""
    rule = RejectedRequest("/v1/chat/completions", "messages", 422, None, "empty_messages", "body.messages", "empty")
    backend = MockBackend(rejections={rule.endpoint: rule})
    reply = backend.execute(_req("/v1/chat/completions", rule.body("m")))
    assert reply.status_code == 422 and reply.body is not None
    assert reply.body["error"] == {
        "message": "empty",
        "type": "invalid_request_error",
        "param": "body.messages",
        "code": "empty_messages",
    }
    served = backend.execute(
        _req("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "a"}]})
    )
    assert served.status_code == 200
    # No rule for embeddings here: an empty input is only a body the mock cannot serve.
    fallback = backend.execute(_req("/v1/embeddings", {"model": "e", "input": []}))
    assert fallback.status_code == 400 and fallback.body is not None
    assert fallback.body["error"]["message"] == "Input parameter is required."


@pytest.mark.parametrize("name", ["openai", "azure-openai", "ovhcloud", "scaleway", "scaigrid", "truefoundry"])
def test_every_profile_mock_answers_each_rejected_body_as_stated(name: str) -> None:
    """Each profile's mock answers every body of its `[rejected_requests]` (and of the
    OpenAI-compatible surface it declares) with the stated status, param and message."""
    profile = load_profile(name)
    rules = rejections_of(profile)
    assert set(profile.rejected_requests) <= set(rules) and rules
    backend = MockBackend.for_profile(profile)
    for endpoint, rule in rules.items():
        reply = backend.execute(_req(endpoint, rule.body("m")))
        assert reply.status_code == rule.status and reply.body is not None, endpoint
        error = reply.body["error"]
        assert (error["param"], error["code"], error["message"]) == (rule.param, rule.code, rule.message), endpoint
        if rule.type is not None:
            assert error["type"] == rule.type


def test_scaigrid_mock_serves_the_rules_of_both_surfaces() -> None:
    """ScaiGrid's mock rejects the native inference bodies and, for its OpenAI-compatible
    surface, the openai profile's."""
    rules = rejections_of(load_profile("scaigrid"))
    assert {"/v1/inference/chat", "/v1/inference/embed", "/v1/chat/completions"} <= set(rules)


def test_a_rejected_line_is_an_error_file_record_with_the_endpoint_answer() -> None:
    """End to end: a line whose body the endpoint rejects ends in the error file with
    `response.status_code` 400, a request_id, `error` null and the endpoint's envelope in
    `response.body`; the batch completes with it counted as failed."""
    lines = [
        {"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions", "body": _chat_body("hi")},
        {"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
    ]
    with Emulator() as emu:
        client = emu.openai_client()
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        f = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        while batch.status not in ("completed", "failed"):
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
        assert batch.error_file_id is not None
        [record] = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert record["custom_id"] == "bad" and record["error"] is None
    response = record["response"]
    assert response["status_code"] == 400 and response["request_id"].startswith("req_")
    assert response["body"]["error"]["param"] == "messages"
    assert response["body"]["error"]["message"] == "[] is too short - 'messages'"


def _chat_body(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}
