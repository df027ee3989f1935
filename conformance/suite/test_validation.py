"""Input validation: broken lines, a missing input file, and the file-level limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient, ApiResponse
from ..plugin import TestBudget
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup

pytestmark = pytest.mark.capability("validation")

#: Larger generated inputs are not sent (memory and time); the test says so and skips.
MAX_GENERATED_BYTES = 16 * 1024 * 1024


def _expected(profile: Profile, seed: int) -> dict[str, inv.ExpectedLineError]:
    names, batch = sc.broken_plan(profile, seed)
    return dict(zip(names, batch.expected, strict=True))


@pytest.mark.scenarios("broken_lines")
def test_broken_file_fails_validation_naming_broken_lines_only(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """A file with broken lines MUST fail validation (the failed status, `errors` listing
    entries with codes from the profile's validation catalogue) and MUST NOT report a valid
    line."""
    final = finished("broken_lines").final
    expected = list(_expected(bc_profile, bc_target.seed).values())
    data = inv.check_validation_errors(final, expected[:1], bc_profile, broken_lines=[e.line for e in expected])
    codes = {spec.code for spec in bc_profile.validation.values()}
    for entry in data:
        if entry.get("code") not in codes:
            raise inv.violation(
                "validation-code",
                "errors.data holds a code that is not in the profile's validation catalogue",
                received=entry,
                expected=sorted(codes),
                profile=bc_profile,
                key="validation",
            )


def _forbids(breakage: str) -> Callable[[Profile], str | None]:
    def applies(profile: Profile) -> str | None:
        if breakage in strategies.applicable_breakages(profile):
            return None
        spec = strategies.BREAKAGES[breakage]
        return f"it does not forbid {breakage} (validation.{spec.validation} / line_rules)"

    return applies


BREAKAGE_PARAMS = [
    pytest.param(
        name,
        marks=[pytest.mark.applies.with_args(_forbids(name)), pytest.mark.scenarios(sc.broken_line_scenario(name))],
        id=name,
    )
    for name in strategies.BREAKAGES
]


@pytest.mark.parametrize("breakage", BREAKAGE_PARAMS)
def test_broken_line_is_reported(
    breakage: str, finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """Each line breaking a rule of the profile (invalid JSON, a missing field, a duplicate
    custom_id, a url other than the endpoint (where the endpoint need not be the lines' url,
    a url other than the other lines') or, where lines may mix endpoints, a url no allowed
    endpoint has, `stream: true`, another model, another method, a body that is not
    an object, an empty custom_id) MUST be reported in the batch's errors (OpenAI
    `errors.data`, ScaiGrid `errors`) with its 1-based line number, the code (and param) of
    the profile's validation catalogue. Each breakage is its own small batch, so a target
    that refuses one loses that check only."""
    (expected,) = sc.broken_line_plan(bc_profile, bc_target.seed, breakage).expected
    inv.check_validation_errors(
        finished(sc.broken_line_scenario(breakage)).final, [expected], bc_profile, broken_lines=[expected.line]
    )


@pytest.mark.scenarios("missing_input_file")
def test_missing_input_file_fails_the_batch(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Where the profile says so, a batch naming an input file that does not exist MUST be
    created and then fail validation with the catalogue's `input_file_not_found` entry."""
    if bc_profile.batches.missing_input_file != "fail_batch":
        pytest.skip(f"profile {bc_profile.name!r} refuses such a create (batches.missing_input_file)")
    expected = inv.ExpectedLineError.of(bc_profile, "input_file_not_found", None)
    inv.check_validation_errors(finished("missing_input_file").final, [expected], bc_profile)


def _limit_outcome(
    api: ApiClient,
    waiter: Waiter,
    profile: Profile,
    batch: strategies.GeneratedBatch,
    *,
    limit: str,
    validation: str | None,
    errors: dict[str, str],
    fields: dict[str, object],
) -> None:
    """Send `batch` and check the outcome where the profile enforces `limit`: at "upload" or
    "create" the catalogue error `errors[stage]` (any 4xx envelope when it names none), at
    "validation" the failed status with the catalogue's `validation` entry."""
    key = f"limits.enforced_at.{limit}"
    stage = profile.limits.enforced_at.get(limit, "validation")
    name = f"batchconf-limit{profile.files.batch_file_extension}"

    def refused(response: ApiResponse) -> None:
        error = errors.get(stage)
        if error is not None and error in profile.errors:
            inv.expect_error(response, profile, error, **fields)
        else:
            inv.expect_refused(response, profile, key)

    if stage == "upload":
        refused(api.upload_file(batch.content, name))
        return
    source = sup.stage_ok(api, profile, batch.content, name)
    body = sup.batch_request(profile, source, batch.endpoint)
    if stage == "create":
        refused(api.create_batch(body))
        return
    if validation is None or validation not in profile.validation:
        pytest.skip(f"profile {profile.name!r} enforces {limit} at validation but names no entry for it ({key})")
    created = sup.create_ok(api, profile, body)
    run = sup.run_to_end(api, waiter, profile, created, batch.custom_ids)
    expected = inv.ExpectedLineError.of(profile, validation, None, **fields)
    inv.check_validation_errors(run.final, [expected], profile)


def test_too_many_requests_are_refused(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A file with more requests than the profile's maximum MUST get the documented outcome
    where the profile enforces the limit: refused at upload or create (4xx envelope), or
    the failed status with the catalogue's `too_many_requests` entry (no line number)."""
    limit = bc_profile.limits.max_requests
    if not limit:
        pytest.skip(f"profile {bc_profile.name!r} has no request limit (limits.max_requests = 0)")
    batch = strategies.build_many(bc_profile, limit + 1, prefix=f"too-many-{bc_target.seed}")
    if len(batch.content) > MAX_GENERATED_BYTES:
        pytest.skip(f"{limit + 1} requests take {len(batch.content)} bytes, over the suite's {MAX_GENERATED_BYTES}")
    bc_budget.charge(limit + 1, "too many requests")
    _limit_outcome(
        api,
        waiter,
        bc_profile,
        batch,
        limit="max_requests",
        validation="too_many_requests",
        errors={},
        fields={"count": limit + 1, "max": limit},
    )


def test_too_few_requests_are_refused(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A file with fewer requests than the profile's minimum (an empty file when the minimum
    is 1) MUST get the documented outcome: refused where the profile enforces the minimum,
    or the failed status with the catalogue's `too_few_requests` entry."""
    minimum = bc_profile.limits.min_requests
    if minimum < 1:
        pytest.skip(f"profile {bc_profile.name!r} has no minimum (limits.min_requests = 0)")
    count = minimum - 1
    batch = strategies.build_many(bc_profile, count, prefix=f"too-few-{bc_target.seed}")
    bc_budget.charge(count, "too few requests")
    _limit_outcome(
        api,
        waiter,
        bc_profile,
        batch,
        limit="min_requests",
        validation="too_few_requests",
        errors={},
        fields={"count": count, "min": minimum},
    )


def test_too_many_bytes_are_refused(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """An input file larger than the profile's byte limit MUST get the documented outcome
    where the profile enforces it (OpenAI: the catalogue's `file_too_large` at create)."""
    limit = bc_profile.limits.max_input_bytes
    if not limit:
        pytest.skip(f"profile {bc_profile.name!r} has no input size limit (limits.max_input_bytes = 0)")
    if limit + 1 > MAX_GENERATED_BYTES:
        pytest.skip(
            f"the limit ({limit} bytes, {inv.cite(bc_profile, 'limits.max_input_bytes')}) is over the "
            f"{MAX_GENERATED_BYTES} bytes the suite generates"
        )
    line = strategies.build_valid(bc_profile, 1, prefix=f"too-big-{bc_target.seed}")
    padding = "x" * (limit + 1 - len(line.content) + 1)
    batch = strategies.build_valid(bc_profile, 1, prefix=f"too-big-{bc_target.seed}", extra=lambda i: {"user": padding})
    bc_budget.charge(1, "too many bytes")
    fields: dict[str, Any] = {"max": limit}
    _limit_outcome(
        api,
        waiter,
        bc_profile,
        batch,
        limit="max_input_bytes",
        validation=None,
        errors={"upload": "upload_too_large", "create": "file_too_large"},
        fields=fields,
    )
