"""The invariants catch hand-made violations: a check that cannot fail is a defect.

Each test starts from one correct finished batch (the OpenAI profile's happy path with two
successes and one HTTP failure), breaks one thing the way real providers have, and asserts
that the named check fails with a message that says what was received, what was expected
and where the contract says it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.client import ApiResponse
from conformance.invariants import (
    NOT_OBSERVED,
    ContractViolation,
    ExpectedLineError,
    check_error_file_lines,
    check_exactly_once,
    check_finished,
    check_list_page,
    check_schema,
    check_status_path,
    check_timestamps,
    check_validation_errors,
    cite,
    expect_error,
    expect_ok,
    violation,
)
from schemas import Profile, load_profile, overlay_text
from tests.conformance_suite._fakes import Done, Obs

PROFILE = load_profile("openai")
T0 = 1_763_800_000


def _batch(status: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "batch_1",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "model": None,
        "errors": None,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": T0,
        "in_progress_at": None,
        "expires_at": T0 + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "usage": None,
        "metadata": None,
    }
    body.update(changes)
    return body


def _ok_line(cid: str) -> dict[str, Any]:
    return {
        "id": f"batch_req_{cid}",
        "custom_id": cid,
        "response": {"status_code": 200, "request_id": f"req_{cid}", "body": {"object": "chat.completion"}},
        "error": None,
    }


def _http_error_line(cid: str, status: int = 500) -> dict[str, Any]:
    return {
        "id": f"batch_req_{cid}",
        "custom_id": cid,
        "response": {"status_code": status, "request_id": f"req_{cid}", "body": {"error": {"message": "boom"}}},
        "error": None,
    }


def _failure_line(cid: str, code: str) -> dict[str, Any]:
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": None, "error": {"code": code, "message": "m"}}


def good() -> Done:
    """validating -> in_progress -> finalizing -> completed, 2 successes and 1 HTTP failure."""
    running = {"total": 3, "completed": 1, "failed": 0}
    done = {"total": 3, "completed": 2, "failed": 1}
    snapshots = [
        _batch("in_progress", in_progress_at=T0 + 1, request_counts=running),
        _batch("finalizing", in_progress_at=T0 + 1, finalizing_at=T0 + 2, request_counts=done),
        _batch(
            "completed",
            in_progress_at=T0 + 1,
            finalizing_at=T0 + 2,
            completed_at=T0 + 3,
            request_counts=done,
            output_file_id="file-out",
            error_file_id="file-err",
        ),
    ]
    # Output order is not input order: "b" before "a".
    return Done(
        "batch_1", _batch("validating"), Obs(snapshots), [_ok_line("b"), _ok_line("a")], [_http_error_line("c")]
    )


def _violation(done: Done, profile: Profile = PROFILE, *, every_transition: bool = True) -> ContractViolation:
    with pytest.raises(ContractViolation) as info:
        check_finished(done, profile, every_transition=every_transition)
    return info.value


def test_the_happy_path_passes() -> None:
    check_finished(good(), PROFILE)


def test_the_happy_path_passes_when_polled_sparsely() -> None:
    done = good()
    del done.observation.snapshots[1]  # finalizing was never seen
    check_finished(done, PROFILE, every_transition=False)


def _set(index: int, **changes: Any) -> Callable[[Done], None]:
    def mutate(done: Done) -> None:
        done.observation.snapshots[index].update(changes)

    return mutate


def _append(state: dict[str, Any]) -> Callable[[Done], None]:
    def mutate(done: Done) -> None:
        done.observation.snapshots.append(state)

    return mutate


def _final_counts(**counts: int) -> Callable[[Done], None]:
    """Counts of the finalizing and completed observations."""

    def mutate(done: Done) -> None:
        for state in done.observation.snapshots[1:]:
            state["request_counts"] = {"total": 3, "completed": 2, "failed": 1, **counts}

    return mutate


def _skip_finalizing(done: Done) -> None:
    del done.observation.snapshots[1]
    done.observation.snapshots[-1]["finalizing_at"] = None


def _drop_output(done: Done) -> None:
    done.output_lines.pop()


def _duplicate_output(done: Done) -> None:
    done.output_lines.append(copy.deepcopy(done.output_lines[0]))
    _final_counts(completed=3)(done)


def _rewrite_custom_id(done: Done) -> None:
    done.output_lines[0]["custom_id"] = "never-sent"


def _http_error_in_output(done: Done) -> None:
    done.output_lines.append(done.error_lines.pop())


def _success_in_error(done: Done) -> None:
    done.error_lines.append(done.output_lines.pop())


def _status_as_string(done: Done) -> None:
    done.output_lines[0]["response"]["status_code"] = "200"


def _all_failed_with_output_id(done: Done) -> None:
    done.output_lines.clear()
    done.error_lines[:] = [_http_error_line(c) for c in "abc"]
    for state in done.observation.snapshots:
        state["request_counts"] = {"total": 3, "completed": 0, "failed": 3 if state["status"] != "in_progress" else 0}


CASES: dict[str, tuple[Callable[[Done], None], str]] = {
    "status_goes_backwards": (_append(_batch("in_progress", in_progress_at=T0 + 1)), "status-path"),
    "leave_terminal_state": (
        _append(
            _batch(
                "cancelling",
                in_progress_at=T0 + 1,
                finalizing_at=T0 + 2,
                completed_at=T0 + 3,
                cancelling_at=T0 + 4,
                output_file_id="file-out",
                error_file_id="file-err",
                request_counts={"total": 3, "completed": 2, "failed": 1},
            )
        ),
        "status-path",
    ),
    "skip_finalizing": (_skip_finalizing, "status-path"),
    "status_outside_enum": (_set(0, status="running"), "schema:batch"),
    "completed_without_output_id": (_set(2, output_file_id=None), "file-ids"),
    "missing_error_file": (_set(2, error_file_id=None), "file-ids"),
    "file_id_before_terminal": (_set(1, output_file_id="file-out"), "file-ids-at-terminal"),
    "timestamp_changes": (_set(2, in_progress_at=T0 + 5), "timestamp-set-once"),
    "timestamp_disappears": (_set(2, in_progress_at=None), "timestamp-set-once"),
    "timestamps_out_of_order": (_set(2, completed_at=T0 + 1), "timestamp-order"),
    "stamp_not_set_on_entry": (_set(0, in_progress_at=None), "timestamp-entered"),
    "stamp_of_future_status": (_set(0, completed_at=T0 + 1), "timestamp-entered"),
    "wrong_expires_at": (_set(1, expires_at=T0 + 3600), "expires-at"),
    "counts_dont_add_up": (_final_counts(completed=3), "counts-add-up"),
    "counts_decrease": (
        _append(good().observation.snapshots[-1] | {"request_counts": {"total": 3, "completed": 0, "failed": 1}}),
        "counts-monotonic",
    ),
    "counts_disagree_with_files": (_final_counts(failed=0), "counts-add-up"),
    "counts_consistent_but_not_the_files": (_final_counts(completed=1, failed=2), "line-counts"),
    "counts_short_of_total": (_final_counts(total=4), "counts-add-up"),
    "drop_output_line": (_drop_output, "line-counts"),
    "duplicate_output_line": (_duplicate_output, "counts-add-up"),
    "rewrite_custom_id": (_rewrite_custom_id, "exactly-once"),
    "http_error_in_output_file": (_http_error_in_output, "records-placement"),
    "success_in_error_file": (_success_in_error, "records-placement"),
    "output_line_bad_shape": (_status_as_string, "records-placement"),
    "empty_output_file_when_none_succeeded": (_all_failed_with_output_id, "file-ids-empty"),
    "batch_field_wrong_type": (_set(0, created_at=str(T0)), "schema:batch"),
    "initial_status": (lambda d: d.created.update(status="in_progress"), "initial-status"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_violation_is_caught(case: str) -> None:
    mutate, check = CASES[case]
    done = good()
    mutate(done)
    error = _violation(done)
    assert error.check == check, str(error)
    text = str(error)
    assert "received:" in text and "expected:" in text and "contract:" in text


def test_message_cites_profile_fact_and_source() -> None:
    done = good()
    _skip_finalizing(done)
    text = str(_violation(done))
    assert "profile 'openai'" in text
    assert "lifecycle.transitions.in_progress" in text
    assert "openai-batch-spec.md" in text


def test_sparse_polling_still_needs_the_stamp_of_a_mandatory_status() -> None:
    done = good()
    _skip_finalizing(done)
    assert _violation(done, every_transition=False).check == "timestamp-entered"


def test_status_outside_the_enum_is_named() -> None:
    with pytest.raises(ContractViolation) as info:
        check_status_path(["validating", "running"], PROFILE)
    assert info.value.check == "status-enum"


def test_sparse_polling_rejects_unreachable_status() -> None:
    with pytest.raises(ContractViolation) as info:
        check_status_path(["validating", "completed", "in_progress"], PROFILE, every_transition=False)
    assert info.value.check == "status-path"


def test_cancelled_while_validating_has_no_records() -> None:
    created = _batch("validating")
    cancelling = _batch("cancelling", cancelling_at=T0 + 1)
    cancelled = _batch("cancelled", cancelling_at=T0 + 1, cancelled_at=T0 + 2)
    done = Done("batch_1", created, Obs([cancelling, cancelled]), [], [])
    check_finished(done, PROFILE)


def test_cancelled_in_progress_keeps_every_line_once() -> None:
    counts = {"total": 3, "completed": 1, "failed": 2}
    states = [
        _batch("in_progress", in_progress_at=T0 + 1, request_counts={"total": 3, "completed": 1, "failed": 0}),
        _batch(
            "cancelling",
            in_progress_at=T0 + 1,
            cancelling_at=T0 + 2,
            request_counts={"total": 3, "completed": 1, "failed": 0},
        ),
        _batch(
            "cancelled",
            in_progress_at=T0 + 1,
            cancelling_at=T0 + 2,
            cancelled_at=T0 + 3,
            request_counts=counts,
            output_file_id="file-out",
            error_file_id="file-err",
        ),
    ]
    errors = [_failure_line("b", "batch_cancelled"), _failure_line("c", "batch_cancelled")]
    done = Done("batch_1", _batch("validating"), Obs(states), [_ok_line("a")], errors)
    check_finished(done, PROFILE)
    # cancel_loses_results: the finished line is gone.
    lost = Done("batch_1", _batch("validating"), Obs(copy.deepcopy(states)), [], errors)
    lost.observation.snapshots[-1]["output_file_id"] = None
    for state in lost.observation.snapshots:
        state["request_counts"] = {"total": 3, "completed": 0, "failed": 2 if state["status"] == "cancelled" else 0}
    assert _violation(lost).check == "counts-add-up"


def test_exactly_once_is_order_agnostic_and_names_the_culprits() -> None:
    check_exactly_once(["x", "y"], [{"custom_id": "y"}], [{"custom_id": "x"}])
    with pytest.raises(ContractViolation, match="missing") as info:
        check_exactly_once(["x", "y"], [{"custom_id": "y"}], [])
    assert "'x'" in str(info.value)
    check_exactly_once(["x", "y"], [{"custom_id": "y"}], [], complete=False)
    with pytest.raises(ContractViolation):
        check_exactly_once(["x", "y"], [{"custom_id": "y"}], [{"custom_id": "y"}], complete=False)


def test_error_file_codes() -> None:
    lines = [_failure_line("a", "batch_expired"), _http_error_line("b")]
    assert len(check_error_file_lines(lines, ["batch_expired"], PROFILE, "output.expired_code")) == 1
    with pytest.raises(ContractViolation, match=r"output\.expired_code"):
        check_error_file_lines([_failure_line("a", "oops")], ["batch_expired"], PROFILE, "output.expired_code")


def test_timestamps_of_an_expired_batch() -> None:
    states = [
        _batch("validating"),
        _batch("in_progress", in_progress_at=T0 + 1),
        _batch("expired", in_progress_at=T0 + 1, expired_at=T0 + 86401),
    ]
    check_timestamps(states, PROFILE)
    states[2]["completed_at"] = T0 + 5
    with pytest.raises(ContractViolation):
        check_timestamps(states, PROFILE)


def _failed(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return _batch("failed", failed_at=T0 + 1, errors={"object": "list", "data": errors})


def test_validation_errors() -> None:
    want = [ExpectedLineError.of(PROFILE, "invalid_json_line", 2)]
    entry = {"code": "invalid_json_line", "message": "m", "param": None, "line": 2}
    check_validation_errors(_failed([entry]), want, PROFILE)
    for bad, check in (
        ([{**entry, "line": None}], "validation-invalid_json_line"),  # validation_error_without_line
        ([{**entry, "line": 3}], "validation-invalid_json_line"),
        ([entry, {**entry, "line": 1}], "validation-spurious"),
        ([], "validation-errors"),
    ):
        with pytest.raises(ContractViolation) as info:
            check_validation_errors(_failed(bad), want, PROFILE)
        assert info.value.check == check
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_batch("completed"), want, PROFILE)  # accept_* mutations
    assert info.value.check == "validation-status"


def test_expected_line_error_fills_param() -> None:
    assert ExpectedLineError.of(PROFILE, "missing_field", 3, param="body").param == "body"
    assert ExpectedLineError.of(PROFILE, "too_many_requests", None, count=2, max=1).line is None


def _response(status: int, body: Any, operation: str = "retrieve_batch") -> ApiResponse:
    import json

    raw = json.dumps(body).encode()
    return ApiResponse(status, {}, raw, body, operation=operation, method="GET", url="http://t/v1/batches/x")


def test_expect_error_checks_status_envelope_and_catalogue() -> None:
    ok = {
        "error": {
            "message": "No batch found with id 'x'.",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
    }
    expect_error(_response(404, ok), PROFILE, "batch_not_found", id="x")
    cases = {
        "error-status:batch_not_found": _response(200, {}),  # not_found_returns_200
        "error-envelope:batch_not_found": _response(404, {"error": {"message": "m", "param": None, "code": None}}),
        "error-param:batch_not_found": _response(404, {"error": {**ok["error"], "param": None}}),
        "error-type:batch_not_found": _response(404, {"error": {**ok["error"], "type": "not_found"}}),
        "error-message:batch_not_found": _response(404, {"error": {**ok["error"], "message": " "}}),
    }
    for check, response in cases.items():
        with pytest.raises(ContractViolation) as info:
            expect_error(response, PROFILE, "batch_not_found", id="x")
        assert info.value.check == check
        assert "errors.batch_not_found" in str(info.value) or "openai/error" in str(info.value)


def test_expect_ok_validates_the_body() -> None:
    assert expect_ok(_response(200, _batch("validating")), PROFILE, "batch")["status"] == "validating"
    with pytest.raises(ContractViolation) as info:
        expect_ok(_response(200, {}), PROFILE, "batch")
    assert info.value.check == "schema:batch"
    with pytest.raises(ContractViolation) as info:
        expect_ok(_response(422, {"error": {}}), PROFILE, "batch")
    assert info.value.check == "status:retrieve_batch"


def test_list_page_checks() -> None:
    check_list_page(
        {"object": "list", "data": [{"id": "a"}, {"id": "b"}], "first_id": "a", "last_id": "b", "has_more": False},
        PROFILE,
        "p",
    )
    check_list_page({"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}, PROFILE, "p")
    with pytest.raises(ContractViolation):
        check_list_page(
            {"object": "list", "data": [{"id": "a"}], "first_id": "a", "last_id": "b", "has_more": False}, PROFILE, "p"
        )
    with pytest.raises(ContractViolation):  # list_missing_has_more
        check_list_page({"object": "list", "data": []}, PROFILE, "p")


def test_cite_names_source_and_verification() -> None:
    assert "UNVERIFIED" in cite(PROFILE, "output.cancelled_code")
    assert "verified" in cite(PROFILE, "lifecycle.transitions.in_progress")
    assert "errors.batch_not_found" in cite(PROFILE, "errors.batch_not_found")
    assert "source:" in cite(PROFILE, "lifecycle.transitions")
    assert "source:" in cite(PROFILE, "windows.48h")  # unknown key: closest parent


# -- Diagnostics: the one fact that differs, and what the target showed for it -----------------


def test_entry_with_another_param_says_so() -> None:
    want = [ExpectedLineError.of(PROFILE, "missing_field", 3, param="custom_id")]
    entry = {"code": "missing_required_parameter", "message": "m", "param": "body", "line": 3}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([entry]), want, PROFILE)
    text = str(info.value)
    assert "has the entry for line 3 with param 'body', expected 'custom_id'" in text
    assert "lacks" not in text
    assert "validation.missing_field.param" in text
    assert info.value.fact is None  # a verified fact: a failure, not a deviation


def test_entry_with_another_code_is_a_deviation_carrying_the_observed_code() -> None:
    want = [ExpectedLineError.of(PROFILE, "custom_id_invalid", 2)]
    entry = {"code": "missing_required_parameter", "message": "m", "param": "custom_id", "line": 2}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([entry]), want, PROFILE)
    error = info.value
    assert "has the entry for line 2 with code 'missing_required_parameter', expected 'invalid_request'" in str(error)
    assert error.inferred is not None
    assert error.fact == "validation.custom_id_invalid.code"
    assert error.observed == "missing_required_parameter"


def test_entry_at_another_line_and_a_missing_entry() -> None:
    want = [ExpectedLineError.of(PROFILE, "invalid_json_line", 2)]
    entry = {"code": "invalid_json_line", "message": "m", "param": None, "line": 3}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([entry]), want, PROFILE, broken_lines=[2, 3])
    assert "has the entry with code 'invalid_json_line' for line 3, expected for line 2" in str(info.value)
    assert info.value.observed is NOT_OBSERVED  # another line number is no value of a fact
    other = {"code": "invalid_url", "message": "m", "param": "url", "line": 5}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([other]), want, PROFILE, broken_lines=[2, 5])
    assert "lacks the entry for 'invalid_json_line'" in str(info.value)


def test_several_entries_for_the_line_offer_no_observed_code() -> None:
    want = [ExpectedLineError.of(PROFILE, "too_few_requests", None, count=0, min=1)]
    entries = [
        {"code": "token_limit_exceeded", "message": "m", "param": None, "line": None},
        {"code": "invalid_request", "message": "m", "param": "file_id", "line": None},
    ]
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed(entries), want, PROFILE)
    assert "has 2 entries for the file (no line), with codes 'invalid_request', 'token_limit_exceeded'" in str(
        info.value
    )
    assert info.value.fact == "validation.too_few_requests.code"
    assert info.value.observed is NOT_OBSERVED


def test_file_level_entry_given_a_line_names_the_line_fact() -> None:
    want = [ExpectedLineError.of(PROFILE, "too_few_requests", None, count=0, min=1)]
    entry = {"code": "empty_file", "message": "m", "param": None, "line": 1}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([entry]), want, PROFILE, broken_lines=[1, None])
    assert info.value.fact == "validation.too_few_requests.line"
    assert info.value.observed is True


def test_received_quotes_only_the_entries_about_the_line() -> None:
    want = [ExpectedLineError.of(PROFILE, "custom_id_invalid", 40)]
    noise = [{"code": "invalid_url", "message": "x" * 50, "param": "url", "line": n} for n in range(1, 40)]
    entry = {"code": "duplicate_custom_id", "message": "m", "param": "custom_id", "line": 40}
    with pytest.raises(ContractViolation) as info:
        check_validation_errors(_failed([*noise, entry]), want, PROFILE, broken_lines=range(1, 41))
    received = str(info.value).split("received:")[1].split("expected:")[0]
    assert "duplicate_custom_id" in received and "invalid_url" not in received


def test_error_param_deviation_carries_the_observed_null() -> None:
    body = {"error": {"message": "No batch found with id 'x'.", "type": "invalid_request_error", "param": None}}
    body["error"]["code"] = None
    with pytest.raises(ContractViolation) as info:
        expect_error(_response(404, body), PROFILE, "batch_not_found", id="x")
    error = info.value
    assert "error.param is None, the catalogue's error 'batch_not_found' has 'id'" in str(error)
    assert error.fact == "errors.batch_not_found.param"
    assert error.observed is None
    # The 404 itself is documented (a verified fact): another status is a violation, not a
    # deviation, and proposes no observed fact.
    with pytest.raises(ContractViolation) as info:
        expect_error(_response(400, body), PROFILE, "batch_not_found", id="x")
    assert (info.value.fact, info.value.observed, info.value.inferred) == (None, NOT_OBSERVED, None)
    with pytest.raises(ContractViolation) as info:
        expect_error(_response(200, {}), PROFILE, "batch_not_found", id="x")
    assert info.value.inferred is None and info.value.observed is NOT_OBSERVED
    # An inferred status (ScaiGrid's refusal of a cancel) still carries what was observed.
    scaigrid = load_profile("scaigrid")
    refused = {"error": {"code": "CONFLICT", "message": "m", "param": None}}
    with pytest.raises(ContractViolation) as info:
        expect_error(_response(400, refused), scaigrid, "cancel_terminal")
    assert (info.value.fact, info.value.observed) == ("errors.cancel_terminal.status", 400)


def test_verified_or_sourced_checks_carry_no_fact() -> None:
    plain = violation("c", "w", received=1, expected=2)
    assert (plain.fact, plain.observed, plain.inferred) == (None, NOT_OBSERVED, None)
    verified = violation("c", "w", received=1, expected=2, profile=PROFILE, key="lifecycle.initial", observed="x")
    assert (verified.fact, verified.observed) == (None, NOT_OBSERVED)
    sourced = violation("c", "w", received=1, expected=2, profile=PROFILE, key="output.cancelled_code", source="s")
    assert sourced.fact is None
    inferred = violation("c", "w", received=1, expected=2, profile=PROFILE, key="output.cancelled_code", observed="y")
    assert (inferred.fact, inferred.observed) == ("output.cancelled_code", "y")
    assert repr(NOT_OBSERVED) == "NOT_OBSERVED"


def test_error_file_code_deviation_carries_the_observed_code() -> None:
    with pytest.raises(ContractViolation) as info:
        check_error_file_lines([_failure_line("a", "cancelled")], ["batch_cancelled"], PROFILE, "output.cancelled_code")
    assert (info.value.fact, info.value.observed) == ("output.cancelled_code", "cancelled")


def test_long_values_are_cut_in_the_middle_keeping_head_and_tail() -> None:
    value = "HEAD" + "x" * 20_000 + "TAIL"
    text = str(violation("c", "w", received=value, expected="short"))
    received = text.split("received: ")[1].split("\n")[0]
    assert received.startswith("HEAD") and received.endswith("TAIL")
    assert "chars cut" in received and 3_000 < len(received) < 4_200
    short = "y" * 3_500  # under the limit: quoted whole
    assert short in str(violation("c", "w", received=short, expected=None))


def test_schema_violation_cites_the_rules_source_and_quotes_the_part_judged() -> None:
    batch = _batch("validating", request_counts={"total": 1, "completed": "0", "failed": 0}, metadata={"k": "v" * 400})
    with pytest.raises(ContractViolation) as info:
        check_schema(PROFILE, "batch", batch, "the body")
    text = str(info.value)
    assert "openapi: BatchRequestCounts.completed" in text
    assert "schemas/json/openai/batch.schema.json#/$defs/request_counts/properties/completed" in text
    received = text.split("received: ")[1].split("\n")[0]
    assert received == "$.request_counts.completed = '0'"


def test_a_deviation_becomes_an_overlay_under_which_the_check_holds(tmp_path: Path) -> None:
    """The fact and observed value a deviation carries are what a profile overlay needs: the
    overlay written from them, loaded on top of the profile, makes the same answer pass."""
    body = {"error": {"message": "No batch found with id 'x'.", "type": "invalid_request_error"}}
    body["error"].update(param=None, code=None)
    with pytest.raises(ContractViolation) as info:
        expect_error(_response(404, body), PROFILE, "batch_not_found", id="x")
    deviation = info.value
    assert deviation.fact is not None
    overlay = tmp_path / "observed.toml"
    overlay.write_text(overlay_text("openai", [(deviation.fact, deviation.observed, "observed on t, 2026-11-20")]))
    observed = load_profile(overlay)
    assert observed.fact(deviation.fact).verified
    expect_error(_response(404, body), observed, "batch_not_found", id="x")
