"""The dialect adapters on canned bodies: what each one sends, how it reads a batch and its
results, and that the shared invariants hold (and fail) for a ScaiGrid batch as for an
OpenAI one."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conformance.client import ApiClient
from conformance.dialects import (
    BatchParams,
    Input,
    OpenAIDialect,
    ScaiGridDialect,
    UnknownDialect,
    adapter_for,
    chunked_base64,
)
from conformance.invariants import ContractViolation, check_file_ids, check_finished, check_records
from schemas import load_profile
from tests.conformance_suite._fakes import Done, Obs

OPENAI = load_profile("openai")
SCAIGRID = load_profile("scaigrid")
T0 = 1_764_300_000


def _scaigrid() -> ScaiGridDialect:
    dialect = adapter_for(SCAIGRID)
    assert isinstance(dialect, ScaiGridDialect)
    return dialect


# -- The registry and the create fields -------------------------------------------------------


def test_adapter_by_dialect() -> None:
    assert isinstance(adapter_for(OPENAI), OpenAIDialect)
    assert isinstance(adapter_for(load_profile("azure-openai")), OpenAIDialect)
    assert isinstance(adapter_for(SCAIGRID), ScaiGridDialect)
    with pytest.raises(UnknownDialect, match="known dialects: openai, scaigrid"):
        adapter_for(dataclasses.replace(OPENAI, dialect="nope"))


def test_canonical_fields() -> None:
    openai, scaigrid = adapter_for(OPENAI), _scaigrid()
    assert openai.field("window") == "completion_window"
    assert scaigrid.field("window") == "endpoint_completion_window"
    assert (openai.field("endpoint"), scaigrid.field("endpoint")) == ("endpoint", None)
    assert (openai.field("input"), scaigrid.field("input")) == ("input_file_id", "input_file_base64")
    assert (openai.field("input_url"), scaigrid.field("input_url")) == (None, "input_file_url")
    assert (openai.field("webhook_url"), scaigrid.field("webhook_url")) == (None, "webhook_url")
    with pytest.raises(KeyError, match="known: input"):
        openai.field("completion_window")


# -- Create bodies -----------------------------------------------------------------------------


def test_openai_create_body() -> None:
    dialect = adapter_for(OPENAI)
    body = dialect.create_body(Input.of_file("file-1"), BatchParams(metadata={"k": "v"}, extra={"x": 1}))
    assert body == {
        "input_file_id": "file-1",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "x": 1,
        "metadata": {"k": "v"},
    }
    with pytest.raises(ValueError, match="stage the content first"):
        dialect.create_body(Input.of_content(b"{}\n"))


def test_scaigrid_create_bodies() -> None:
    dialect = _scaigrid()
    content = b'{"custom_id": "a"}\n'
    inline = dialect.create_body(Input.of_content(content), BatchParams(window="4h", webhook_url="http://h/x"))
    assert inline == {
        "input_file_base64": base64.b64encode(content).decode(),
        "endpoint_completion_window": "4h",
        "webhook_url": "http://h/x",
    }
    assert dialect.create_body(Input.of_url("s3://b/k")) == {
        "input_file_url": "s3://b/k",
        "endpoint_completion_window": "24h",
    }
    assert dialect.create_body(Input.of_file("f1"))["input_file_url"] == "scaigrid://file/f1"
    # The endpoint is each line's business: a given one is not sent.
    assert "endpoint" not in dialect.create_body(Input.of_content(content), BatchParams(endpoint="/v1/inference/chat"))


def test_scaigrid_streamed_body_is_the_same_json() -> None:
    dialect = _scaigrid()
    content = bytes(range(256)) * 41
    chunks = [content[i : i + 97] for i in range(0, len(content), 97)]
    params = BatchParams(window="1h", webhook_url="http://127.0.0.1:1/h")
    streamed = b"".join(dialect.create_body_stream(iter(chunks), params))
    assert json.loads(streamed) == dialect.create_body(Input.of_content(content), params)


@pytest.mark.parametrize("sizes", [[1], [2, 2, 2], [3, 1, 5, 7], [0, 4, 0, 11], [64] * 5])
def test_chunked_base64_equals_whole_base64(sizes: list[int]) -> None:
    data = bytes(i % 251 for i in range(sum(sizes)))
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    assert b"".join(chunked_base64(chunks)) == base64.b64encode(data)


def test_input_is_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Input(content=b"x", url="s3://b/k")
    with pytest.raises(ValueError, match="exactly one"):
        Input()
    assert Input.of_url("s3://b/k").describe() == "url s3://b/k"


# -- Staging and fetching through the client --------------------------------------------------


class Server:
    """A mock target: answers uploads, results downloads and anything else with 404."""

    def __init__(self, results: bytes = b"") -> None:
        self.requests: list[httpx.Request] = []
        self.results = results

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/files":
            return httpx.Response(200, json={"id": "file-up", "object": "file", "purpose": "batch"})
        if request.url.path.endswith("/results"):
            return httpx.Response(200, content=self.results)
        if request.url.path == "/v1/files/file-out/content":
            return httpx.Response(200, content=self.results)
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "m", "param": None}})


def _api(server: Server, profile: Any) -> ApiClient:
    http = httpx.Client(base_url="http://t", transport=httpx.MockTransport(server))
    return ApiClient(http, profile, api_key="sk-1")


def test_openai_stages_by_upload_and_scaigrid_inline() -> None:
    server = Server()
    staged = adapter_for(OPENAI).stage(_api(server, OPENAI), b"{}\n", filename="in.jsonl")
    assert staged.input == Input.of_file("file-up") and staged.response is not None
    assert [r.url.path for r in server.requests] == ["/v1/files"]
    staged = _scaigrid().stage(_api(server, SCAIGRID), b"{}\n")
    assert staged.input == Input.of_content(b"{}\n") and staged.response is None
    assert len(server.requests) == 1


def test_submit_sends_the_create_body() -> None:
    server = Server()
    _scaigrid().submit(_api(server, SCAIGRID), b'{"a": 1}\n', BatchParams(window="1h"))
    (create,) = server.requests
    assert create.url.path == "/v1/inference/batch"
    assert json.loads(create.content) == {
        "input_file_base64": base64.b64encode(b'{"a": 1}\n').decode(),
        "endpoint_completion_window": "1h",
    }


RESULTS = b"".join(
    json.dumps(line).encode() + b"\n"
    for line in (
        {"custom_id": "a", "status": "ok", "response": {"object": "chat.completion"}},
        {"custom_id": "b", "status": "error", "error": {"code": "http_400", "message": "bad"}},
        {"custom_id": "c", "status": "error", "error": {"code": "batch_expired", "message": "late"}},
    )
)


def test_scaigrid_fetches_results_url_with_the_same_key_and_splits_by_status() -> None:
    server = Server(RESULTS)
    state = _sg_batch("completed", total=3, completed=1, failed=2, results_url="http://t/v1/inference/batch/b1/results")
    results = _scaigrid().fetch_results(_api(server, SCAIGRID), state)
    (get,) = server.requests
    assert get.headers["Authorization"] == "Bearer sk-1"
    assert [r["custom_id"] for r in results.successes] == ["a"]
    assert [r["custom_id"] for r in results.failures] == ["b", "c"]
    assert results.raw == {"results_url": RESULTS} and not results.problems


def test_no_key_to_a_results_url_elsewhere() -> None:
    server = Server(RESULTS)
    state = _sg_batch("completed", results_url="https://bucket.example/results?sig=1")
    _scaigrid().fetch_results(_api(server, SCAIGRID), state)
    assert "Authorization" not in server.requests[0].headers


def test_openai_fetches_both_files() -> None:
    server = Server(b'{"custom_id": "a"}\nnot json\n')
    state = {"id": "batch_1", "output_file_id": "file-out", "error_file_id": None, "request_counts": {}}
    results = adapter_for(OPENAI).fetch_results(_api(server, OPENAI), state)
    assert [r.url.path for r in server.requests] == ["/v1/files/file-out/content"]
    assert results.successes == ({"custom_id": "a"},) and results.failures == ()
    assert results.problems and "output file line 2" in results.problems[0]


# -- Reading batches and records ---------------------------------------------------------------


def _sg_batch(status: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "3f2b0000-0000-4000-8000-000000000001",
        "object": "batch",
        "status": status,
        "endpoint_completion_window": "24h",
        "input_file_url": None,
        "webhook_url": None,
        "total_count": 0,
        "completed_count": 0,
        "failed_count": 0,
        "results_url": None,
        "errors": None,
        "created_at": T0,
        "expires_at": T0 + 86400,
    }
    for key, value in changes.items():
        body[{"total": "total_count", "completed": "completed_count", "failed": "failed_count"}.get(key, key)] = value
    return body


def test_views_of_both_dialects() -> None:
    sg = _scaigrid().view(_sg_batch("processing", total=3, completed=1, failed=1))
    assert (sg.status, sg.role, sg.total, sg.completed, sg.failed) == ("processing", "in_progress", 3, 1, 1)
    assert sg.refs == {"results_url": None} and sg.window == "24h" and sg.endpoint is None
    assert sg.counts_body == {"total_count": 3, "completed_count": 1, "failed_count": 1}
    failed = _scaigrid().view(_sg_batch("failed", errors=[{"code": "E", "message": "m", "line": 2, "param": None}]))
    assert failed.errors == [{"code": "E", "message": "m", "line": 2, "param": None}] and failed.role == "failed"
    oa = adapter_for(OPENAI).view(
        {
            "id": "batch_1",
            "status": "failed",
            "completion_window": "24h",
            "endpoint": "/v1/chat/completions",
            "request_counts": {"total": 2, "completed": 0, "failed": 0},
            "output_file_id": None,
            "error_file_id": None,
            "errors": {"object": "list", "data": [{"code": "x", "line": 1}]},
        }
    )
    assert (oa.total, oa.window, oa.endpoint, oa.errors) == (
        2,
        "24h",
        "/v1/chat/completions",
        [{"code": "x", "line": 1}],
    )
    assert set(oa.refs) == {"output_file_id", "error_file_id"}


@pytest.mark.parametrize(
    ("status", "started", "present"),
    [("completed", False, True), ("cancelled", True, True), ("cancelled", False, False), ("failed", True, False)],
)
def test_scaigrid_results_url_rules(status: str, started: bool, present: bool) -> None:
    dialect = _scaigrid()
    (rule,) = dialect.ref_rules(dialect.view(_sg_batch(status)), started=started)
    assert (rule.field, rule.present) == ("results_url", present)
    assert rule.key in ("output.location", "output.unfinished_on_cancel")


def test_records_in_canonical_terms() -> None:
    dialect = _scaigrid()
    ok, http, expired = (dialect.record(json.loads(line)) for line in RESULTS.splitlines())
    assert (ok.ok, ok.http, ok.code) == (True, False, None)
    assert (http.ok, http.http, http.http_status, http.code) == (False, True, 400, "http_400")
    assert (expired.ok, expired.http, expired.code) == (False, False, "batch_expired")
    assert dialect.http_error_code(500) == "http_500"
    oa = adapter_for(OPENAI).record({"custom_id": "x", "response": {"status_code": 500, "body": {}}, "error": None})
    assert (oa.ok, oa.http, oa.http_status, oa.code) == (False, True, 500, None)


def test_scaigrid_record_rules() -> None:
    ok = {"custom_id": "a", "status": "ok", "response": {"choices": []}}
    err = {"custom_id": "b", "status": "error", "error": {"code": "http_500", "message": "m"}}
    check_records([ok], [err], SCAIGRID)
    cases: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
        "records-status-word": ([], [{**ok, "status": "success"}]),
        "records-placement": ([{"custom_id": "a", "status": "ok"}], []),
    }
    for check, (successes, failures) in cases.items():
        with pytest.raises(ContractViolation) as info:
            check_records(successes, failures, SCAIGRID)
        assert info.value.check == check
        assert "output.line_format" in str(info.value) and "[scaigrid] Getting results" in str(info.value)
    with pytest.raises(ContractViolation) as info:
        check_records([], [{"custom_id": "b", "status": "error"}], SCAIGRID)
    assert info.value.check == "records-placement"


# -- The shared invariants on a ScaiGrid batch ------------------------------------------------


URL = "http://t/v1/inference/batch/3f2b0000-0000-4000-8000-000000000001/results"


def good() -> Done:
    """pending -> processing -> completed: two ok records and one error record."""
    snapshots = [
        _sg_batch("processing", total=3, completed=1),
        _sg_batch("completed", total=3, completed=2, failed=1, results_url=URL),
    ]
    ok = [{"custom_id": c, "status": "ok", "response": {"object": "chat.completion"}} for c in ("b", "a")]
    err = [{"custom_id": "c", "status": "error", "error": {"code": "http_400", "message": "m"}}]
    return Done(snapshots[0]["id"], _sg_batch("pending"), Obs(snapshots), ok, err)


def _final(**changes: Any) -> Callable[[Done], None]:
    def mutate(done: Done) -> None:
        done.observation.snapshots[-1].update(changes)

    return mutate


def _drop_unfinished(done: Done) -> None:
    done.error_lines.clear()
    done.observation.snapshots[-1]["failed_count"] = 0


CASES: dict[str, tuple[Callable[[Done], None], str]] = {
    # The batch schema ties results_url to the status, so it speaks first.
    "results_url_missing": (_final(results_url=None), "schema:batch"),
    "results_url_while_processing": (lambda d: d.observation.snapshots[0].update(results_url=URL), "schema:batch"),
    "failed_count_wrong": (_final(failed_count=0), "counts-add-up"),
    "counts_consistent_but_not_the_records": (_final(completed_count=1, failed_count=2), "line-counts"),
    "window_end_drops_unfinished_lines": (_drop_unfinished, "counts-add-up"),
    "status_word": (lambda d: d.output_lines[0].update(status="success"), "records-status-word"),
    "openai_status": (_final(status="finalizing"), "schema:batch"),
    "wrong_expires_at": (_final(expires_at=T0 + 3600), "expires-at"),
    "rewrite_custom_id": (lambda d: d.output_lines[0].update(custom_id="never-sent"), "exactly-once"),
}


def test_a_good_scaigrid_batch_passes() -> None:
    check_finished(good(), SCAIGRID)


@pytest.mark.parametrize("case", sorted(CASES))
def test_scaigrid_violations_are_caught(case: str) -> None:
    mutate, check = CASES[case]
    done = good()
    mutate(done)
    with pytest.raises(ContractViolation) as info:
        check_finished(done, SCAIGRID)
    assert info.value.check == check, str(info.value)
    assert "received:" in str(info.value) and "contract:" in str(info.value)


@pytest.mark.parametrize(("index", "url", "check"), [(-1, None, "results-url"), (0, URL, "file-ids-at-terminal")])
def test_results_url_rules_without_the_schema(index: int, url: str | None, check: str) -> None:
    """`check_file_ids` names the rule itself (the schema, checked first by check_finished,
    would only say that the body is invalid)."""
    done = good()
    done.observation.snapshots[index]["results_url"] = url
    with pytest.raises(ContractViolation) as info:
        check_file_ids([done.created, *done.observation.snapshots], SCAIGRID)
    assert info.value.check == check
    assert "profile 'scaigrid'" in str(info.value)


def test_cancelled_while_pending_has_no_results_url() -> None:
    done = Done(good().batch_id, _sg_batch("pending"), Obs([_sg_batch("cancelled")]), [], [])
    check_finished(done, SCAIGRID)
    leaked = copy.deepcopy(done)
    leaked.observation.snapshots[-1]["results_url"] = URL
    with pytest.raises(ContractViolation) as info:
        check_finished(leaked, SCAIGRID)
    assert info.value.check == "results-url" and "output.unfinished_on_cancel" in str(info.value)
