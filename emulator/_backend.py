"""Model backends: what answers each request line of a batch.

The default `MockBackend` is deterministic: the answer is derived from the request (the
words of the prompt in reverse order, embeddings from a hash), with realistic response
bodies and `usage`. The bodies a provider's endpoints reject when a line runs are profile
data (`[rejected_requests]`): `MockBackend.for_profile` answers each of them with the
status and error envelope the profile states. `HttpBackend` forwards each line to a real
OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama) instead.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas import Profile, load_profile
from schemas._profile import RejectedRequest

from ._faults import default_error_body

__all__ = ["CatalogueBackend", "HttpBackend", "LineRequest", "MockBackend", "ModelBackend", "Reply", "rejections_of"]


@dataclass(slots=True)
class LineRequest:
    """One request line handed to a backend."""

    endpoint: str
    body: dict[str, Any]
    custom_id: str
    key: str
    now: int


@dataclass(slots=True)
class Reply:
    """A backend's answer: an HTTP status and body (`error_code` set for non-HTTP failures)."""

    status_code: int
    body: dict[str, Any] | None
    input_tokens: int = 0
    output_tokens: int = 0
    error_code: str | None = None
    error_message: str | None = None


class ModelBackend(Protocol):
    """Answers one request line."""

    def execute(self, request: LineRequest) -> Reply:
        """The reply to `request`; must not raise for a bad request (answer 4xx instead)."""
        ...


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return " ".join(parts)
    return ""


def _words(text: str) -> list[str]:
    return text.split()


def _limit(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _bad_request(message: str, param: str | None = None) -> Reply:
    body = default_error_body(400, message)
    body["error"]["param"] = param
    return Reply(400, body)


def _rejection(rule: RejectedRequest) -> Reply:
    """The profile's answer to a body its endpoint rejects, in the error envelope of an
    OpenAI-compatible endpoint (`type` from the status where the profile's dialect has none)."""
    body = default_error_body(rule.status, rule.message)
    error = body["error"]
    if rule.type is not None:
        error["type"] = rule.type
    error["param"] = rule.param
    error["code"] = rule.code
    return Reply(rule.status, body)


def rejections_of(profile: Profile) -> dict[str, RejectedRequest]:
    """The bodies `profile`'s endpoints reject, by endpoint, with those of the
    OpenAI-compatible surface it declares beside its own (`[compat]`) where it states none."""
    rules: dict[str, RejectedRequest] = {}
    if profile.compat is not None:
        rules.update(load_profile(profile.compat.openai_profile).rejected_requests)
    rules.update(profile.rejected_requests)
    return rules


class MockBackend:
    """Deterministic answers for chat, completions, responses, embeddings, moderations and
    audio transcriptions. It answers in this process (`in_process`): no line waits on a
    network.

    Token counts are word counts. `embedding_dimensions` is used when the request does not
    ask for `dimensions`. ScaiGrid's `/v1/inference/chat` and `/v1/inference/embed` take
    OpenAI-shaped bodies and answer like chat completions and embeddings.

    `rejections` are the bodies the provider's endpoints reject (`rejections_of(profile)`,
    or `for_profile`): a line whose body has the rule's field as an empty array gets the
    rule's status and error, as the provider answers it. Any other body the mock cannot
    serve (no messages at all, an unknown endpoint) gets a generic 400 line error.
    """

    #: Every line is answered in this process: a batch's steps wait on no network.
    in_process = True

    def __init__(self, embedding_dimensions: int = 16, rejections: Mapping[str, RejectedRequest] | None = None) -> None:
        self.embedding_dimensions = embedding_dimensions
        self.rejections: dict[str, RejectedRequest] = dict(rejections or {})
        # One table: an endpoint is served by exactly one handler; aliases of the same
        # endpoint in other dialects (Azure's unversioned path, ScaiGrid's native paths)
        # share it, so they answer identically.
        self._handlers = {
            "/v1/chat/completions": self._chat,
            "/chat/completions": self._chat,
            "/v1/inference/chat": self._chat,
            "/v1/completions": self._completion,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/inference/embed": self._embeddings,
            "/v1/moderations": self._moderations,
            "/v1/audio/transcriptions": self._transcription,
        }

    @classmethod
    def for_profile(cls, profile: Profile, embedding_dimensions: int = 16) -> MockBackend:
        """A mock that rejects the bodies `profile` says its endpoints reject."""
        return cls(embedding_dimensions, rejections=rejections_of(profile))

    def execute(self, request: LineRequest) -> Reply:
        """Answer one line; a body the profile says is rejected gets its answer, unsupported
        endpoints a 400 line error, never an exception."""
        rule = self.rejections.get(request.endpoint)
        if rule is not None and request.body.get(rule.field) == []:
            return _rejection(rule)
        handler = self._handlers.get(request.endpoint)
        if handler is None:
            return _bad_request(f"The mock backend does not implement {request.endpoint}.", "url")
        return handler(request)

    def _answer(self, prompt: str, limit: int | None) -> tuple[str, str, int, int]:
        words = _words(prompt)
        count = len(words)
        text, finish, pout = self._reply(words, limit)
        return text, finish, count, pout

    @staticmethod
    def _reply(words: list[str], limit: int | None) -> tuple[str, str, int]:
        """The prompt's words reversed, cut at `limit` (consumes `words`)."""
        words.reverse()
        finish = "stop"
        if limit is not None and len(words) > limit:
            del words[limit:]
            finish = "length"
        if not words:
            words.append("ok")
        return " ".join(words), finish, len(words)

    def _chat(self, r: LineRequest) -> Reply:
        # The hot path of a chat batch: split each prompt once (per-line cost matters at 50k).
        messages = r.body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("Messages parameter is required.", "messages")
        last = messages[-1]
        words = _words(_text_of(last.get("content")) if isinstance(last, dict) else "")
        if len(messages) == 1:
            pin = len(words)
        else:
            pin = sum(len(_words(_text_of(m.get("content")))) for m in messages if isinstance(m, dict))
        text, finish, pout = self._reply(words, _limit(r.body, "max_completion_tokens", "max_tokens"))
        body: dict[str, Any] = {
            "id": "chatcmpl-" + r.key,
            "object": "chat.completion",
            "created": r.now,
            "model": r.body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": pin,
                "completion_tokens": pout,
                "total_tokens": pin + pout,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_batchconf",
        }
        return Reply(200, body, pin, pout)

    def _completion(self, r: LineRequest) -> Reply:
        prompt = r.body.get("prompt")
        if not isinstance(prompt, (str, list)):
            return _bad_request("Prompt parameter is required.", "prompt")
        text, finish, pin, pout = self._answer(_text_of(prompt), _limit(r.body, "max_tokens"))
        body = {
            "id": "cmpl-" + r.key,
            "object": "text_completion",
            "created": r.now,
            "model": r.body.get("model"),
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout},
        }
        return Reply(200, body, pin, pout)

    def _responses(self, r: LineRequest) -> Reply:
        raw = r.body.get("input")
        if raw is None:
            return _bad_request("Input parameter is required.", "input")
        if isinstance(raw, list):
            prompt = " ".join(_text_of(item.get("content")) if isinstance(item, dict) else str(item) for item in raw)
        else:
            prompt = _text_of(raw)
        text, finish, pin, pout = self._answer(prompt, _limit(r.body, "max_output_tokens"))
        body = {
            "id": "resp_" + r.key,
            "object": "response",
            "created_at": r.now,
            "status": "completed" if finish == "stop" else "incomplete",
            "model": r.body.get("model"),
            "output": [
                {
                    "id": "msg_" + r.key,
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": pin,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": pout,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": pin + pout,
            },
        }
        return Reply(200, body, pin, pout)

    def _embeddings(self, r: LineRequest) -> Reply:
        raw = r.body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        if raw is None or not inputs or not all(isinstance(i, (str, list)) for i in inputs):
            return _bad_request("Input parameter is required.", "input")
        dims = _limit(r.body, "dimensions") or self.embedding_dimensions
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += max(1, len(_words(text)))
            data.append({"object": "embedding", "index": index, "embedding": _vector(text, dims)})
        body = {
            "object": "list",
            "data": data,
            "model": r.body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(200, body, tokens, 0)

    def _moderations(self, r: LineRequest) -> Reply:
        raw = r.body.get("input")
        if raw is None:
            return _bad_request("Input parameter is required.", "input")
        inputs = raw if isinstance(raw, list) else [raw]
        categories = ("harassment", "hate", "self-harm", "sexual", "violence")
        results = [
            {
                "flagged": False,
                "categories": dict.fromkeys(categories, False),
                "category_scores": dict.fromkeys(categories, 0.0),
            }
            for _ in inputs
        ]
        body = {"id": "modr-" + r.key, "model": r.body.get("model") or "omni-moderation-latest", "results": results}
        return Reply(200, body, 0, 0)

    def _transcription(self, r: LineRequest) -> Reply:
        # A batch line carries the audio as a JSON string (a URL, a file id or base64); there
        # is no audio to hear, so the transcript is the prompt's words reversed, as for chat,
        # or else a token derived from the file, so that equal requests get equal text.
        audio = r.body.get("file")
        if not isinstance(audio, str) or not audio:
            return _bad_request("File parameter is required.", "file")
        prompt = r.body.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            text, _, _, pout = self._answer(prompt, None)
        else:
            text = "transcript " + hashlib.blake2b(audio.encode(), digest_size=6).hexdigest()
            pout = 2
        return Reply(200, {"text": text}, 0, pout)


def _vector(text: str, dims: int) -> list[float]:
    """A unit-free deterministic vector in [-1, 1) from a hash of the text."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.blake2b(f"{counter}:{text}".encode(), digest_size=64).digest()
        out.extend(v / 2147483648.0 for v in struct.unpack("<16i", digest))
        counter += 1
    return [round(v, 6) for v in out[:dims]]


class HttpBackend:
    """Forwards each line to an OpenAI-compatible server (`base_url` ends with `/v1`)."""

    #: Every line is a request to another server.
    in_process = False

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: Any = None,
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def execute(self, request: LineRequest) -> Reply:
        """POST the body to the endpoint (its `/v1` prefix replaced by the base URL's)."""
        import httpx

        path = request.endpoint.removeprefix("/v1")
        try:
            resp = self._client.post(path, json=request.body)
        except httpx.HTTPError as exc:
            return Reply(0, None, error_code="request_timeout", error_message=f"backend unreachable: {exc}")
        try:
            body = resp.json()
        except ValueError:
            body = default_error_body(resp.status_code if resp.status_code >= 400 else 502, resp.text[:500])
        if not isinstance(body, dict):
            body = {"value": body}
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        pin = int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0)
        pout = int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0)
        return Reply(resp.status_code, body, pin, pout)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class CatalogueBackend:
    """Serves only the models of a catalogue: a line naming another model gets the 404 the
    provider answers (`model_not_found`), and so ends in the error file; the rest goes to
    `inner`. For providers whose documents say the model must be in their catalogue."""

    def __init__(
        self,
        inner: ModelBackend,
        models: tuple[str, ...] | list[str],
        served: Callable[[frozenset[str]], frozenset[str] | None] | None = None,
    ) -> None:
        self.inner = inner
        self.models = frozenset(models)
        # What is served of the catalogue (the provider's mutation seam; None: any model).
        self.served = served

    def execute(self, request: LineRequest) -> Reply:
        """`inner`'s reply for a catalogue model; a 404 for any other."""
        model = request.body.get("model")
        served = self.served(self.models) if self.served is not None else self.models
        if served is None or model in served:
            return self.inner.execute(request)
        body = default_error_body(404, f"The model '{model}' does not exist or you do not have access to it.")
        body["error"].update({"param": "model", "code": "model_not_found"})
        return Reply(404, body)
