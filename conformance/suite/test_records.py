"""Result records: schemas, placement, the exactly-once invariant, counts, file ids, usage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .._target import Target
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup

pytestmark = pytest.mark.capability("records")

#: Scenarios with result records: all succeed, mixed successes and HTTP failures, all fail.
RECORD_SCENARIOS = [
    pytest.param("all_succeed", marks=pytest.mark.scenarios("all_succeed"), id="all_succeed"),
    pytest.param("mixed_results", marks=pytest.mark.scenarios("mixed_results"), id="mixed_results"),
    pytest.param("all_fail", marks=[pytest.mark.scenarios("all_fail"), pytest.mark.needs_control], id="all_fail"),
]


@pytest.fixture(scope="module", autouse=True)
def _forget_scenario_faults(request: pytest.FixtureRequest, bc_target: Target) -> Iterator[None]:
    """The fault rules the scenarios set are needed only until the scenarios finished
    (before any test body): remove them so later batches are unaffected."""
    if bc_target.controls:
        control = request.getfixturevalue("control")
        control.remove_faults(sc.mixed_plan(bc_target.profile, bc_target.seed).fault_pattern)
        control.remove_faults(sc.all_fail_pattern(bc_target.seed))
    yield


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_records_validate(name: str, finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Every output-file line MUST be a success valid against the output-line schema and every
    error-file line a failure valid against the error-line schema; both files MUST be JSONL."""
    run = sup.view(finished(name))
    inv.check_records(run.output_lines, run.error_lines, bc_profile)


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_every_custom_id_exactly_once(name: str, finished: Callable[[str], Finished]) -> None:
    """Every input custom_id MUST appear exactly once across the output and error files, and
    no other custom_id may appear (compared without assuming any order)."""
    run = sup.view(finished(name))
    inv.check_exactly_once(run.input_custom_ids, run.output_lines, run.error_lines)


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_line_counts_equal_request_counts(name: str, finished: Callable[[str], Finished]) -> None:
    """The output file MUST have `request_counts.completed` lines and the error file
    `request_counts.failed` lines, and `total` MUST be the number of input lines."""
    run = sup.view(finished(name))
    inv.check_line_counts(run.final, run.output_lines, run.error_lines)
    total = (run.final.get("request_counts") or {}).get("total")
    if total != len(run.input_custom_ids):
        raise inv.violation(
            "counts-total",
            "request_counts.total is not the number of input lines",
            received=total,
            expected=len(run.input_custom_ids),
            source=inv.SPEC_COUNTS,
        )


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_batch_with_line_failures_completes(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """A batch whose lines ran MUST end in the completed status whatever the lines' HTTP
    outcomes: `failed` is for a batch that failed validation."""
    status = sup.status_of(bc_profile, "completed")
    final = finished(name).final
    if final.get("status") != status:
        raise inv.violation(
            "completed-with-failures",
            "a batch whose lines ran (some or all failing) did not end completed",
            received=final.get("status"),
            expected=status,
            profile=bc_profile,
            key="lifecycle.roles.completed",
        )


@pytest.mark.scenarios("mixed_results")
def test_http_failures_go_to_the_error_file(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """Lines answered with an HTTP error MUST be in the error file (`response.status_code` the
    error status, `error` null) and every other line in the output file. Without controls no
    line is made to fail, and every line MUST succeed."""
    run = sup.view(finished("mixed_results"))
    plan = sc.mixed_plan(bc_profile, bc_target.seed)
    failing = set(plan.failing) if bc_target.controls else set()
    in_errors = {line.get("custom_id"): line for line in run.error_lines}
    in_output = {line.get("custom_id") for line in run.output_lines}
    wrong_output = sorted(cid for cid in in_output if cid in failing)
    wrong_errors = sorted(str(cid) for cid in in_errors if cid not in failing)
    if wrong_output or wrong_errors:
        raise inv.violation(
            "records-placement",
            "lines are in the wrong result file",
            received={"failing lines in the output file": wrong_output, "good lines in the error file": wrong_errors},
            expected={"error file": sorted(failing), "output file": "every other line"},
            source=inv.SPEC_RECORDS,
        )
    for cid in failing:
        line = in_errors.get(cid) or {}
        status = (line.get("response") or {}).get("status_code")
        if status != sc.FAULT_STATUS or line.get("error") is not None:
            raise inv.violation(
                "records-http-failure",
                f"the error-file line of {cid!r} does not carry the HTTP failure",
                received=line,
                expected={"response": {"status_code": sc.FAULT_STATUS, "body": {"error": "..."}}, "error": None},
                source=inv.SPEC_RECORDS,
            )


@pytest.mark.needs_control
@pytest.mark.scenarios("all_fail")
def test_no_output_file_when_nothing_succeeded(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """A batch none of whose lines succeeded MUST complete with `output_file_id` null (unless
    the profile says an empty output file is created) and an error file holding every line."""
    run = sup.view(finished("all_fail"))
    final = run.final
    want_null = not bc_profile.output.empty_output_file
    if (final.get("output_file_id") is None) != want_null or final.get("error_file_id") is None:
        raise inv.violation(
            "file-ids-empty",
            "an all-failed batch names the wrong result files",
            received={k: final.get(k) for k in ("status", "output_file_id", "error_file_id", "request_counts")},
            expected={"output_file_id": None if want_null else "an (empty) file", "error_file_id": "a file"},
            profile=bc_profile,
            key="output.empty_output_file",
        )


@pytest.mark.scenarios("all_succeed")
def test_no_error_file_when_nothing_failed(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """A batch all of whose lines succeeded MUST complete with `error_file_id` null (unless the
    profile says an empty error file is created) and an output file holding every line."""
    final = finished("all_succeed").final
    want_null = not bc_profile.output.empty_error_file
    if (final.get("error_file_id") is None) != want_null or final.get("output_file_id") is None:
        raise inv.violation(
            "file-ids-empty",
            "an all-succeeded batch names the wrong result files",
            received={k: final.get(k) for k in ("status", "output_file_id", "error_file_id", "request_counts")},
            expected={"error_file_id": None if want_null else "an (empty) file", "output_file_id": "a file"},
            profile=bc_profile,
            key="output.empty_error_file",
        )


@pytest.mark.scenarios("all_succeed")
def test_output_order_only_where_promised(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Where the profile promises ordered output, the output file MUST list lines in input
    order; elsewhere the suite assumes no order (and there is nothing to check)."""
    if not bc_profile.output.ordered:
        pytest.skip(f"profile {bc_profile.name!r} promises no output order (output.ordered = false)")
    run = sup.view(finished("all_succeed"))
    got = [line.get("custom_id") for line in run.output_lines]
    want = [cid for cid in run.input_custom_ids if cid in set(got)]
    if got != want:
        raise inv.violation(
            "output-order",
            "the output file is not in input order",
            received=got,
            expected=want,
            profile=bc_profile,
            key="output.ordered",
        )


@pytest.mark.capability("usage")
@pytest.mark.scenarios("all_succeed")
def test_completed_batch_reports_usage(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Where the profile reports usage, a completed batch MUST carry a usage object whose
    `total_tokens` is `input_tokens + output_tokens`."""
    if not bc_profile.output.usage:
        pytest.skip(f"profile {bc_profile.name!r} reports no batch usage (output.usage = false)")
    usage: Any = finished("all_succeed").final.get("usage")
    ok = isinstance(usage, dict) and usage.get("total_tokens") == usage.get("input_tokens", 0) + usage.get(
        "output_tokens", 0
    )
    if not ok:
        raise inv.violation(
            "usage",
            "a completed batch does not report consistent usage",
            received=usage,
            expected="{input_tokens, output_tokens, total_tokens = input + output, ...}",
            profile=bc_profile,
            key="output.usage",
        )


@pytest.mark.scenarios("broken_lines")
def test_failed_batch_has_no_result_files(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """A batch that failed validation MUST name no output file (nothing ran)."""
    final = finished("broken_lines").final
    if final.get("output_file_id") is not None:
        raise inv.violation(
            "failed-files",
            "a batch that failed validation names an output file",
            received=final.get("output_file_id"),
            expected=None,
            profile=bc_profile,
            key="lifecycle.roles.failed",
        )


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_all_batch_invariants(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """Every batch invariant (status path, timestamps, expires_at, counts, file ids, records,
    line counts, exactly once) MUST hold together for this batch."""
    sup.check_run(sup.view(finished(name)), bc_profile, bc_target)
