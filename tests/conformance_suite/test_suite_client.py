"""ApiClient builds every request from the profile, and Control restores what it changes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conformance.client import ApiClient, UnsupportedOperation
from conformance.control import Control, ControlError
from schemas import load_profile

PROFILE = load_profile("openai")


class Recorder:
    """A mock transport remembering requests; answers from `reply(request)`."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = {"ok": True} if body is None else body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


def _client(base_url: str, recorder: Recorder) -> httpx.Client:
    return httpx.Client(base_url=base_url, transport=httpx.MockTransport(recorder))


@pytest.mark.parametrize("base_url", ["http://t", "http://t/", "http://t/v1", "http://t/v1/"])
def test_paths_come_from_the_profile_with_or_without_base_path(base_url: str) -> None:
    rec = Recorder()
    api = ApiClient(_client(base_url, rec), PROFILE, api_key="sk-1")
    api.retrieve_batch("batch_1")
    api.cancel_batch("batch/../x")
    api.list_batches(limit=2, after=None)
    assert [str(r.url) for r in rec.requests] == [
        "http://t/v1/batches/batch_1",
        "http://t/v1/batches/batch%2F..%2Fx/cancel",
        "http://t/v1/batches?limit=2",
    ]
    assert [r.method for r in rec.requests] == ["GET", "POST", "GET"]
    assert api.calls == 3


def test_auth_and_project_headers() -> None:
    rec = Recorder()
    api = ApiClient(_client("http://t", rec), PROFILE, api_key="sk-1", project="proj")
    api.list_files()
    api.with_key(None).list_files()
    api.with_key("sk-2").with_project(None).list_files()
    first, anon, other = rec.requests
    assert first.headers["Authorization"] == "Bearer sk-1" and first.headers["OpenAI-Project"] == "proj"
    assert "Authorization" not in anon.headers
    assert other.headers["Authorization"] == "Bearer sk-2" and "OpenAI-Project" not in other.headers
    assert api.calls == 3  # copies share the counter


def test_upload_is_multipart_with_the_batch_purpose() -> None:
    rec = Recorder()
    api = ApiClient(_client("http://t/v1", rec), PROFILE, api_key="k")
    api.upload_file(b'{"a": 1}\n', "in.jsonl")
    (request,) = rec.requests
    body = request.read()
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="purpose"\r\n\r\nbatch' in body and b'filename="in.jsonl"' in body


def test_errors_are_returned_not_raised_and_downloads_not_parsed() -> None:
    rec = Recorder(404, {"error": {"message": "m", "type": "t", "param": None, "code": None}})
    api = ApiClient(_client("http://t", rec), PROFILE, api_key="k")
    response = api.file_content("file-1")
    assert response.status == 404 and response.json["error"]["message"] == "m"
    assert "file_content" in response.describe() and "404" in response.describe()
    rec.status = 200
    assert api.file_content("file-1").json is None
    assert api.retrieve_file("file-1").json == rec.body
    raw = api.create_batch(content=b"{not json")
    assert rec.requests[-1].content == b"{not json" and raw.status == 200


def test_unsupported_operation_names_the_profile() -> None:
    profile = load_profile("openai")
    api = ApiClient(_client("http://t", Recorder()), profile, api_key="k")
    with pytest.raises(UnsupportedOperation, match="openai"):
        api.request("no_such_operation")


class FakeAdmin:
    """A tiny stand-in for the emulator's admin routes."""

    def __init__(self) -> None:
        self.timing: dict[str, Any] = {"progression": "per_poll", "shuffle": True}
        self.faults: list[dict[str, Any]] = []
        self.delivered = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: dict[str, Any] = json.loads(request.content) if request.content else {}
        if path == "/_emulator/timing":
            if request.method == "PUT":
                self.timing.update(body)
            return httpx.Response(200, json=self.timing)
        if path == "/_emulator/webhooks":
            self.delivered = self.delivered or request.method == "POST"
            return httpx.Response(200, json={"events": [], "deliveries": [], "pending": 0 if self.delivered else 1})
        if path == "/_emulator/faults":
            if request.method == "POST":
                self.faults.append({"id": len(self.faults) + 1, **body})
                return httpx.Response(200, json=self.faults[-1])
            if request.method == "DELETE":
                self.faults = []
            return httpx.Response(200, json={"data": self.faults})
        return httpx.Response(400, json={"error": {"message": "bad"}})


def test_control_restores_timing_and_faults() -> None:
    admin = FakeAdmin()
    control = Control(httpx.Client(base_url="http://t/v1", transport=httpx.MockTransport(admin)))
    with control.timing_override(progression="manual") as now:
        assert now["progression"] == "manual"
    assert admin.timing["progression"] == "per_poll"
    control.add_fault("keep-*", status_code=500)
    with control.fault("tmp-*", status_code=429):
        assert [f["custom_id"] for f in control.faults()] == ["keep-*", "tmp-*"]
    assert [f["custom_id"] for f in control.faults()] == ["keep-*"]
    control.add_fault("gone-*", status_code=400)
    assert control.remove_faults("gone-*") == 1
    assert [f["custom_id"] for f in control.faults()] == ["keep-*"]
    with pytest.raises(ControlError, match="400"):
        control.reset()


def test_control_reads_and_delivers_webhooks() -> None:
    admin = FakeAdmin()
    control = Control(httpx.Client(base_url="http://t/v1", transport=httpx.MockTransport(admin)))
    assert control.webhooks()["pending"] == 1
    assert control.deliver_webhooks()["pending"] == 0
    assert control.webhooks() == {"events": [], "deliveries": [], "pending": 0}


def test_get_url_sends_the_key_to_the_target_only() -> None:
    rec = Recorder(200, {"ignored": True})
    api = ApiClient(_client("http://t:8000", rec), load_profile("scaigrid"), api_key="sk-1")
    same = api.get_url("http://t:8000/v1/inference/batch/b/results")
    api.get_url("http://t:9000/v1/inference/batch/b/results")
    api.get_url("https://t:8000/x")
    assert [("Authorization" in r.headers) for r in rec.requests] == [True, False, False]
    assert same.operation == "download_results" and same.json is None and api.calls == 3


def _flaky_transport(calls: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"id": "batch_1", "object": "batch"})

    return httpx.MockTransport(handler)


def test_a_read_on_a_dropped_connection_is_sent_once_more() -> None:
    """A GET that meets a connection the target dropped is retried once, on a new one."""
    calls: list[str] = []
    http = httpx.Client(base_url="http://127.0.0.1:9/v1", transport=_flaky_transport(calls))
    api = ApiClient(http, load_profile("openai"), api_key="k")
    assert api.retrieve_batch("batch_1").status == 200
    assert calls == ["GET", "GET"]


def test_a_write_on_a_dropped_connection_is_not_repeated() -> None:
    """A create is never sent twice: it may have taken effect."""
    calls: list[str] = []
    http = httpx.Client(base_url="http://127.0.0.1:9/v1", transport=_flaky_transport(calls))
    api = ApiClient(http, load_profile("openai"), api_key="k")
    with pytest.raises(httpx.RemoteProtocolError):
        api.create_batch({"input_file_id": "file-1"})
    assert calls == ["POST"]
