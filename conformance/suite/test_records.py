"""Result records: schemas, placement, the exactly-once invariant, counts, result references,
usage. Records are read through the dialect adapter: successes and failures are the output
and error files of OpenAI, the "ok" and "error" records of ScaiGrid's one results file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .._target import Target
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup

pytestmark = pytest.mark.capability("records")

#: Scenarios with result records: all succeed, successes mixed with lines the endpoint
#: rejects, all rejected. None needs an admin route: the failing lines carry bodies the
#: endpoint itself rejects (the profile's rejected_requests).
RECORD_SCENARIOS = [
    pytest.param("all_succeed", marks=pytest.mark.scenarios("all_succeed"), id="all_succeed"),
    pytest.param("mixed_results", marks=pytest.mark.scenarios("mixed_results"), id="mixed_results"),
    pytest.param("all_fail", marks=pytest.mark.scenarios("all_fail"), id="all_fail"),
]


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_records_validate(name: str, finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Every result file MUST be JSONL, every success record MUST be a success and every
    failure record a failure as the dialect writes them (OpenAI: output-file lines 2xx,
    error-file lines failures; ScaiGrid: status "ok" with a response, "error" with an
    error), each valid against its schema."""
    run = sup.view(finished(name))
    inv.check_records(run.output_lines, run.error_lines, bc_profile)


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_every_custom_id_exactly_once(name: str, finished: Callable[[str], Finished]) -> None:
    """Every input custom_id MUST appear exactly once across the result records (successes
    and failures), and no other custom_id may appear (compared without assuming any order)."""
    run = sup.view(finished(name))
    inv.check_exactly_once(run.input_custom_ids, run.output_lines, run.error_lines)


@pytest.mark.parametrize("name", RECORD_SCENARIOS)
def test_line_counts_equal_request_counts(name: str, finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """There MUST be as many success records as the completed count and as many failure
    records as the failed count (OpenAI: `request_counts`; ScaiGrid: `completed_count`,
    `failed_count`), and the total MUST be the number of input lines."""
    run = sup.view(finished(name))
    inv.check_line_counts(run.final, run.output_lines, run.error_lines, bc_profile)
    dialect = sup.dialect(bc_profile)
    view = dialect.view(run.final)
    if view.total != len(run.input_custom_ids):
        raise inv.violation(
            "counts-total",
            "the total count is not the number of input lines",
            received=view.counts_body,
            expected={"total": len(run.input_custom_ids)},
            **dialect.counts_contract(),
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
    """Lines whose body the endpoint rejects (the profile's rejected_requests: e.g. a chat
    with an empty `messages`) MUST be failure records carrying the endpoint's HTTP status as
    the dialect writes it (OpenAI: in the error file with `response.status_code` that status,
    `error` null and the endpoint's error, with its `param`, in `response.body`; ScaiGrid:
    status "error" with code `http_<status>`), and every other line a success."""
    run = sup.view(finished("mixed_results"))
    plan = sc.mixed_plan(bc_profile, bc_target.seed)
    inv.check_rejected_records(run.output_lines, run.error_lines, plan.failing, plan.rejection, bc_profile)


def _check_refs(final: dict[str, Any], profile: Profile, what: str) -> None:
    """The final state's result references are as the dialect's rules say (`ref_rules`)."""
    dialect = sup.dialect(profile)
    view = dialect.view(final)
    for rule in dialect.ref_rules(view, started=view.total > 0):
        value = view.refs.get(rule.field)
        if rule.present is not None and (value is not None) != rule.present:
            raise inv.violation(
                rule.check,
                f"{what} names the wrong result references: {rule.why}",
                received={"status": view.status, **view.refs, **view.counts_body},
                expected={rule.field: rule.expected if rule.present else None},
                profile=profile if rule.key else None,
                key=rule.key,
                source=rule.source,
            )


@pytest.mark.scenarios("all_fail")
def test_no_output_file_when_nothing_succeeded(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """A batch none of whose lines succeeded MUST complete with the result references the
    dialect gives failures only (OpenAI: `output_file_id` null unless the profile says an
    empty output file is created, and an error file holding every line; ScaiGrid: a
    `results_url` whose records are all "error")."""
    run = sup.view(finished("all_fail"))
    _check_refs(run.final, bc_profile, "an all-failed batch")
    rule = sc.rejection(bc_profile)
    assert rule is not None, "all_fail applies only where the profile names a rejected body"
    failing = sc.all_fail_plan(bc_profile, bc_target.seed).custom_ids
    inv.check_rejected_records(run.output_lines, run.error_lines, failing, rule, bc_profile)


@pytest.mark.scenarios("all_succeed")
def test_no_error_file_when_nothing_failed(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """A batch all of whose lines succeeded MUST complete with the result references the
    dialect gives successes only (OpenAI: `error_file_id` null unless the profile says an
    empty error file is created, and an output file holding every line; ScaiGrid: a
    `results_url`)."""
    _check_refs(dict(finished("all_succeed").final), bc_profile, "an all-succeeded batch")


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
    """A batch that failed validation MUST name no results of successes (nothing ran):
    OpenAI no output file, ScaiGrid no `results_url`."""
    dialect = sup.dialect(bc_profile)
    view = dialect.view(finished("broken_lines").final)
    named = {k: view.refs.get(k) for k in dialect.success_refs if view.refs.get(k) is not None}
    if named:
        raise inv.violation(
            "failed-files",
            "a batch that failed validation names results",
            received=named,
            expected=dict.fromkeys(named),
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
