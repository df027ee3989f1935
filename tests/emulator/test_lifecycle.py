"""Every ending a batch can have, through the official SDK: failed, expired, cancelled, and
completed with failed lines (HTTP errors injected by fault rules or in-line triggers).

Time never passes by sleeping: per-poll progression, explicit steps (`Emulator.step` or the
admin route) and clock advances do it.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.emulator._support import CHAT, Harness, bounded, chat_line, poll, results, submit, to_jsonl, upload

DAY = 86_400


def _ids(lines: list[dict[str, Any]]) -> list[str]:
    return sorted(line["custom_id"] for line in lines)


def _assert_failed(b: openai.types.Batch) -> None:
    assert b.status == "failed"
    assert isinstance(b.failed_at, int) and b.failed_at >= b.created_at
    assert b.in_progress_at is None and b.finalizing_at is None and b.completed_at is None
    assert b.output_file_id is None and b.error_file_id is None
    assert b.errors is not None and b.errors.object == "list"
    assert b.errors.data


BROKEN_LINES: dict[str, tuple[list[dict[str, Any] | str], list[tuple[str, str | None, int | None]]]] = {
    # name: (lines, expected [(code, param, line)])
    "invalid_json_line": (
        [chat_line("ok-1"), '{"custom_id": "x", "method": "POST",', chat_line("ok-3")],
        [("invalid_json_line", None, 2)],
    ),
    "json_but_not_an_object": ([chat_line("ok-1"), "[1, 2]"], [("invalid_json_line", None, 2)]),
    "missing_custom_id": (
        [chat_line("ok-1"), {"method": "POST", "url": CHAT, "body": chat_line("x")["body"]}],
        [("missing_required_parameter", "custom_id", 2)],
    ),
    "missing_method": (
        [{"custom_id": "a", "url": CHAT, "body": chat_line("x")["body"]}],
        [("missing_required_parameter", "method", 1)],
    ),
    "missing_url": (
        [{"custom_id": "a", "method": "POST", "body": chat_line("x")["body"]}],
        [("missing_required_parameter", "url", 1)],
    ),
    "missing_body": ([{"custom_id": "a", "method": "POST", "url": CHAT}], [("missing_required_parameter", "body", 1)]),
    "invalid_url": (
        [chat_line("a"), {**chat_line("b"), "url": "/v1/embeddings"}],
        [("invalid_url", "url", 2)],
    ),
    "duplicate_custom_id": (
        [chat_line("a"), chat_line("b"), chat_line("a")],
        [("duplicate_custom_id", "custom_id", 3)],
    ),
    "streaming_unsupported": ([chat_line("a", stream=True)], [("streaming_unsupported", "body.stream", 1)]),
    "missing_model": ([chat_line("a"), chat_line("b", model=None)], [("invalid_request", "body.model", 2)]),
    "mixed_models": (
        [chat_line("a"), chat_line("b", model="gpt-4.1")],
        [("model_mismatch", "body.model", 2)],
    ),
    "several_errors_in_line_order": (
        # (the first line must parse: the upload itself rejects a file that does not start as JSONL)
        [chat_line("a"), "not json", chat_line("a"), chat_line("d", stream=True)],
        [
            ("invalid_json_line", None, 2),
            ("duplicate_custom_id", "custom_id", 3),
            ("streaming_unsupported", "body.stream", 4),
        ],
    ),
}


def test_validation_failure(sdk: Harness, subtests: pytest.Subtests) -> None:
    """Each bad input line fails its batch with errors {object: list, data: [{code, message, param, line}]}."""
    client = sdk.client()
    for case, (lines, expected) in BROKEN_LINES.items():
        with subtests.test(case=case):
            b = submit(client, lines)
            assert b.status == "validating"
            seen = poll(client, b.id)
            assert [s.status for s in seen] == ["failed"]
            done = seen[0]
            _assert_failed(done)
            assert done.errors is not None and done.errors.data is not None
            assert [(e.code, e.param, e.line) for e in done.errors.data] == expected
            assert all(e.message for e in done.errors.data)
            # a failed batch is terminal: later polls change nothing
            assert client.batches.retrieve(b.id).model_dump() == done.model_dump()


def test_missing_input_file_fails_the_batch(sdk: Harness) -> None:
    """An unknown input_file_id is no create-time error: the batch fails with invalid_request on file_id."""
    client = sdk.client()
    b = client.batches.create(input_file_id="file-doesnotexist", endpoint=CHAT, completion_window="24h")
    assert b.status == "validating"
    done = poll(client, b.id)[-1]
    _assert_failed(done)
    assert done.errors is not None and done.errors.data is not None
    [err] = done.errors.data
    assert (err.code, err.param, err.line) == ("invalid_request", "file_id", None)
    assert "file-doesnotexist" in (err.message or "")


def test_input_file_deleted_before_validation(sdk: Harness) -> None:
    """An input file deleted between create and validation fails the batch like a missing one."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
    client.files.delete(f.id)
    done = poll(client, b.id)[-1]
    _assert_failed(done)
    assert done.errors is not None and done.errors.data is not None
    assert [(e.code, e.param) for e in done.errors.data] == [("invalid_request", "file_id")]


def test_input_file_of_another_purpose(sdk: Harness) -> None:
    """A batch over a file uploaded with another purpose fails validation on file_id."""
    client = sdk.client()
    f = client.files.create(file=("in.jsonl", b'{"custom_id": "a"}\n'), purpose="user_data")
    done = poll(client, client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id)[-1]
    _assert_failed(done)
    assert done.errors is not None and done.errors.data is not None
    assert [(e.code, e.param) for e in done.errors.data] == [("invalid_request", "file_id")]


def test_empty_file_fails_validation(sdk: Harness, subtests: pytest.Subtests) -> None:
    """An empty (or blank) .jsonl uploads fine, and its batch fails with one line-less empty_file error."""
    client = sdk.client()
    for case, content in {"empty": b"", "blank-lines": b"\n  \n\n"}.items():
        with subtests.test(case=case):
            done = poll(client, submit(client, content).id)[-1]
            _assert_failed(done)
            assert done.errors is not None and done.errors.data is not None
            assert [(e.code, e.param, e.line) for e in done.errors.data] == [("empty_file", None, None)]


def test_too_many_requests(sync_sdk: Harness) -> None:
    """50,001 lines (the profile's limit is 50,000) fail the batch with one line-less error."""
    client = sync_sdk.client()
    line = '{"custom_id":"%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n'
    data = "".join(line % i for i in range(50_001)).encode()
    done = poll(client, submit(client, data).id)[-1]
    _assert_failed(done)
    assert done.errors is not None and done.errors.data is not None
    [err] = done.errors.data
    assert (err.code, err.param, err.line) == ("too_many_tasks", None, None)
    assert "50001" in (err.message or "")


def test_expired_keeps_finished_lines(sdk: Harness) -> None:
    """When the 24 h window passes mid-run: expired, finished lines in output, the rest batch_expired."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    lines = [chat_line(f"r{i}") for i in range(5)]
    b = submit(client, lines)
    assert client.batches.retrieve(b.id).status == "validating"  # manual: polls move nothing
    assert sdk.target.step(b.id)["status"] == "in_progress"
    stepped = sdk.target.step(b.id, lines=2)
    assert stepped["status"] == "in_progress"
    live = client.batches.retrieve(b.id)
    assert live.request_counts is not None
    assert (live.request_counts.total, live.request_counts.completed, live.request_counts.failed) == (5, 2, 0)

    sdk.target.advance(DAY)
    done = client.batches.retrieve(b.id)
    assert done.status == "expired"
    assert done.expired_at == done.expires_at == done.created_at + DAY
    assert done.finalizing_at is None and done.completed_at is None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 2, 3)
    out, err = results(client, done)
    assert len(out) == 2 and len(err) == 3
    assert _ids(out + err) == _ids(lines)
    for line in err:
        assert line["response"] is None
        assert line["error"]["code"] == "batch_expired"
        assert line["error"]["message"] == "This request could not be executed before the completion window expired."
    assert done.usage is not None and done.usage.total_tokens > 0
    for file_id in (done.output_file_id, done.error_file_id):
        assert file_id is not None
        assert client.files.retrieve(file_id).purpose == "batch_output"


def test_expired_while_finalizing(sdk: Harness) -> None:
    """A batch still finalizing when the window passes expires with every line in the output file."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    b = submit(client, [chat_line("a"), chat_line("b")])
    sdk.target.step(b.id)
    assert sdk.target.step(b.id)["status"] == "finalizing"
    sdk.target.advance(DAY + 1)
    done = client.batches.retrieve(b.id)
    assert done.status == "expired"
    assert done.expired_at == done.expires_at
    out, err = results(client, done)
    assert len(out) == 2 and err == [] and done.error_file_id is None


def test_expired_untouched_before_window(sdk: Harness) -> None:
    """Short of the window nothing expires; once it has passed the batch is expired."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    b = submit(client, [chat_line("a")])
    sdk.target.step(b.id)
    # 2 s short, not 1: the server's real clock runs on, and created_at drops the fraction
    sdk.target.advance(DAY - 2)
    assert client.batches.retrieve(b.id).status == "in_progress"
    sdk.target.advance(2)
    done = client.batches.retrieve(b.id)
    assert done.status == "expired"
    _, err = results(client, done)
    assert [line["error"]["code"] for line in err] == ["batch_expired"]
    assert done.output_file_id is None


def test_cancel_while_validating(sdk: Harness) -> None:
    """Cancel during validating answers cancelling (cancelling_at set), then cancelled with no files."""
    client = sdk.client()
    b = submit(client, [chat_line("a"), chat_line("b")])
    c = client.batches.cancel(b.id)
    assert c.status == "cancelling"
    assert isinstance(c.cancelling_at, int) and c.cancelled_at is None
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    assert done.cancelling_at == c.cancelling_at
    assert isinstance(done.cancelled_at, int) and done.cancelled_at >= done.cancelling_at
    assert done.in_progress_at is None
    assert done.output_file_id is None and done.error_file_id is None
    assert client.batches.retrieve(b.id).model_dump() == done.model_dump()


def test_cancel_in_progress_keeps_partial_results(sdk: Harness) -> None:
    """Cancel mid-run: finished lines stay in the output file, unfinished ones are batch_cancelled."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    lines = [chat_line(f"r{i}") for i in range(6)]
    b = submit(client, lines)
    sdk.target.step(b.id)
    sdk.target.step(b.id, lines=2)
    sdk.target.step(b.id, lines=1)
    c = client.batches.cancel(b.id)
    assert c.status == "cancelling"
    assert c.request_counts is not None and c.request_counts.completed == 3
    assert client.batches.retrieve(b.id).status == "cancelling"  # manual: only a step finishes it
    assert sdk.target.step(b.id)["status"] == "cancelled"
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (6, 3, 3)
    out, err = results(client, done)
    assert len(out) == 3 and len(err) == 3
    assert _ids(out + err) == _ids(lines)
    assert {(line["response"], line["error"]["code"]) for line in err} == {(None, "batch_cancelled")}


def test_cancel_in_progress_per_poll(sdk: Harness) -> None:
    """Under per-poll progression the poll after a cancel finishes it: cancelled, unfinished lines batch_cancelled."""
    client = sdk.client()
    lines = [chat_line("a"), chat_line("b")]
    b = submit(client, lines)
    assert client.batches.retrieve(b.id).status == "in_progress"
    assert client.batches.cancel(b.id).status == "cancelling"
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    out, err = results(client, done)
    assert out == [] and done.output_file_id is None
    assert _ids(err) == _ids(lines)


def test_cancel_while_finalizing_keeps_all_results(sdk: Harness) -> None:
    """Cancel during finalizing: every line already ran, so all are in the output file and no error file."""
    client = sdk.client()
    b = submit(client, [chat_line("a"), chat_line("b")])
    assert [client.batches.retrieve(b.id).status for _ in range(2)] == ["in_progress", "finalizing"]
    assert client.batches.cancel(b.id).status == "cancelling"
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    assert isinstance(done.finalizing_at, int) and done.completed_at is None
    out, err = results(client, done)
    assert len(out) == 2 and err == [] and done.error_file_id is None


def test_cancel_is_idempotent_on_cancelling_and_cancelled(sdk: Harness) -> None:
    """Cancelling a cancelling or cancelled batch answers 200 and changes nothing."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    b = submit(client, [chat_line("a")])
    first = client.batches.cancel(b.id)
    again = client.batches.cancel(b.id)
    assert again.status == "cancelling" and again.cancelling_at == first.cancelling_at
    sdk.target.step(b.id)
    done = client.batches.retrieve(b.id)
    assert done.status == "cancelled"
    assert client.batches.cancel(b.id).model_dump() == done.model_dump()


def test_cancel_finished_batch_conflicts(sdk: Harness, subtests: pytest.Subtests) -> None:
    """Cancel of a completed, failed or expired batch is a 409 ConflictError, sent once, with the envelope."""
    client = sdk.client()
    for ending in ("completed", "failed", "expired"):
        with subtests.test(ending=ending):
            lines: list[dict[str, Any] | str] = [chat_line("a"), "not json"] if ending == "failed" else [chat_line("a")]
            sdk.target.set_timing(progression="manual" if ending == "expired" else "per_poll")
            b = submit(client, lines)
            if ending == "expired":
                sdk.target.step(b.id)
                sdk.target.advance(DAY)
            assert poll(client, b.id)[-1].status == ending
            before = sdk.checker.calls("POST", f"/batches/{b.id}/cancel")
            with pytest.raises(openai.ConflictError) as exc:
                client.batches.cancel(b.id)
            assert exc.value.status_code == 409
            assert exc.value.type == "invalid_request_error"
            assert exc.value.body == {
                "message": f"Cannot cancel a batch with status '{ending}'.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            assert sdk.checker.calls("POST", f"/batches/{b.id}/cancel") == before + 1
            assert client.batches.retrieve(b.id).status == ending


def test_conflict_not_retried_by_default_client(sync_sdk: Harness) -> None:
    """A 409 carries x-should-retry: false, so even a client with max_retries=2 sends the cancel once."""
    client = sync_sdk.client(max_retries=2)
    b = submit(client, [chat_line("a")])
    poll(client, b.id)
    with pytest.raises(openai.ConflictError) as exc:
        client.batches.cancel(b.id)
    assert exc.value.response.headers["x-should-retry"] == "false"
    assert sync_sdk.checker.calls("POST", f"/batches/{b.id}/cancel") == 1


def test_all_lines_fail_completed_without_output_file(sdk: Harness) -> None:
    """Every line failing with HTTP 500 (fault rule "*"): completed, output_file_id null, all in the error file."""
    client = sdk.client()
    sdk.target.add_fault(custom_id="*", status_code=500)
    lines = [chat_line(f"r{i}") for i in range(4)]
    done = poll(client, submit(client, lines).id)[-1]
    assert done.status == "completed"
    assert done.errors is None
    assert done.output_file_id is None and done.error_file_id is not None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 0, 4)
    assert done.usage is not None and done.usage.total_tokens == 0
    out, err = results(client, done)
    assert out == [] and _ids(err) == _ids(lines)
    for line in err:
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
        assert line["response"]["request_id"].startswith("req_")
        assert line["id"].startswith("batch_req_")


def test_inline_fault_429_goes_to_error_file(sdk: Harness) -> None:
    """An in-line "batchconf_fault": {"status_code": 429} puts that line in the error file with error null."""
    client = sdk.client()
    lines = [chat_line("ok-1"), chat_line("limited", batchconf_fault={"status_code": 429}), chat_line("ok-2")]
    done = poll(client, submit(client, lines).id)[-1]
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    out, err = results(client, done)
    assert _ids(out) == ["ok-1", "ok-2"]
    [line] = err
    assert line["custom_id"] == "limited"
    assert line["error"] is None
    assert line["response"]["status_code"] == 429
    body_error = line["response"]["body"]["error"]
    assert (body_error["type"], body_error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert body_error["message"]
    # the trigger never reaches the model: the echoed body of the successes has no such key
    assert all("batchconf_fault" not in str(o["response"]["body"]) for o in out)


def test_fault_rule_matches_pattern_and_non_http_error(sdk: Harness) -> None:
    """Fault rules match custom_id patterns; an error-code fault writes response null and error {code, message}."""
    client = sdk.client()
    sdk.target.add_fault(custom_id="slow-*", error={"code": "request_timeout", "message": "took too long"})
    sdk.target.add_fault(
        custom_id="bad-?",
        status_code=400,
        body={"error": {"message": "nope", "type": "x", "param": None, "code": None}},
    )
    lines = [chat_line("slow-1"), chat_line("slow-2"), chat_line("bad-1"), chat_line("good")]
    done = poll(client, submit(client, lines).id)[-1]
    out, err = results(client, done)
    assert _ids(out) == ["good"]
    by_id = {line["custom_id"]: line for line in err}
    assert by_id["slow-1"]["response"] is None
    assert by_id["slow-1"]["error"] == {"code": "request_timeout", "message": "took too long"}
    assert by_id["bad-1"]["error"] is None
    assert by_id["bad-1"]["response"]["status_code"] == 400
    assert by_id["bad-1"]["response"]["body"]["error"]["message"] == "nope"


def test_no_error_file_when_nothing_failed(sdk: Harness) -> None:
    """error_file_id stays null when every line succeeded; results list each custom_id once."""
    client = sdk.client()
    lines = [chat_line(f"r{i}") for i in range(3)]
    done = poll(client, submit(client, lines).id)[-1]
    assert done.error_file_id is None and done.output_file_id is not None
    out, _ = results(client, done)
    assert _ids(out) == _ids(lines)


def test_request_counts_live_and_usage(sdk: Harness) -> None:
    """request_counts move as lines finish, and usage sums the successful lines only."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    lines = [chat_line("a", "w1 w2"), chat_line("b", "w1 w2 w3"), chat_line("c", batchconf_fault={"status_code": 500})]
    b = submit(client, lines)
    sdk.target.step(b.id)
    counts = []
    for _ in range(3):
        sdk.target.step(b.id, lines=1)
        rc = client.batches.retrieve(b.id).request_counts
        assert rc is not None
        counts.append(rc.completed + rc.failed)
    assert counts == [1, 2, 3]
    sdk.target.step(b.id)
    sdk.target.step(b.id)
    done = client.batches.retrieve(b.id)
    assert done.status == "completed"
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (5, 5)


def test_batches_in_every_status_list_and_validate(sdk: Harness) -> None:
    """A list holding batches in every terminal and non-terminal status validates and shows each one."""
    client = sdk.client()
    sdk.target.set_timing(progression="manual")
    ok = [chat_line("a")]
    validating = submit(client, ok)
    in_progress = submit(client, ok)
    sdk.target.step(in_progress.id)
    failed = submit(client, [chat_line("a"), "broken"])
    sdk.target.step(failed.id)
    cancelling = submit(client, ok)
    client.batches.cancel(cancelling.id)
    completed = submit(client, ok)
    for _ in range(3):
        sdk.target.step(completed.id)
    statuses = {b.id: b.status for b in bounded(client.batches.list(limit=2))}
    assert statuses == {
        validating.id: "validating",
        in_progress.id: "in_progress",
        failed.id: "failed",
        cancelling.id: "cancelling",
        completed.id: "completed",
    }


def test_bom_is_an_invalid_json_line(sdk: Harness) -> None:
    """A UTF-8 BOM before the first line uploads fine and fails validation with invalid_json_line, line 1."""
    client = sdk.client()
    b = submit(client, b"\xef\xbb\xbf" + to_jsonl([chat_line("a"), chat_line("b")]))
    done = poll(client, b.id)[-1]
    _assert_failed(done)
    assert done.errors is not None and done.errors.data is not None
    assert [(e.code, e.line) for e in done.errors.data] == [("invalid_json_line", 1)]


def test_window_passing_before_the_first_poll(sdk: Harness) -> None:
    """A batch whose window passes before it is ever polled expires at expires_at, never starting late."""
    client = sdk.client()
    b = submit(client, [chat_line("a"), chat_line("b")])
    sdk.target.advance(2 * DAY)
    done = poll(client, b.id)[-1]
    assert done.status == "expired"
    assert done.expired_at == done.expires_at
    assert done.in_progress_at is None or done.in_progress_at <= done.expires_at  # type: ignore[operator]
