"""Generated input: any valid file is processed exactly once; any broken file fails precisely.

Each example is one batch submitted and polled to its end, so the number of examples is
bounded by the settings profile (dev, ci, nightly) and hard-capped, without shrinking, on
targets other than the emulator; each example is charged to the request budget.
"""

from __future__ import annotations

import pytest
from hypothesis import given, seed

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..plugin import TestBudget
from . import _support as sup


def _submit(api: ApiClient, waiter: Waiter, profile: Profile, batch: strategies.GeneratedBatch) -> sup.Run:
    created = sup.submit_ok(api, profile, batch.content, batch.endpoint)
    return sup.run_to_end(api, waiter, profile, created, batch.custom_ids)


@pytest.mark.capability("records")
def test_any_valid_file_is_processed_exactly_once(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """Any valid input file (unicode custom_ids, varied bodies, sizes and JSON spellings) MUST
    be processed to completion with every batch invariant holding: each input custom_id
    exactly once across the result records, their numbers equal to the counts."""

    @sup.hypothesis_settings(bc_target)
    @seed(bc_target.seed)
    @given(batch=strategies.valid_batches(bc_profile))
    def check(batch: strategies.GeneratedBatch) -> None:
        bc_budget.charge(batch.requests, "a generated valid batch")
        run = _submit(api, waiter, bc_profile, batch)
        sup.expect_final_role(
            run, bc_profile, "completed", "valid-file", "a valid input file did not complete", "line_rules"
        )
        sup.check_run(run, bc_profile, bc_target)

    check()


@pytest.mark.capability("validation")
def test_any_broken_file_fails_with_its_line_and_code(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """Any input file with one named breakage on one line MUST fail validation, reporting that
    1-based line with the code (and param) of the profile's validation catalogue, and no
    other line."""
    if not strategies.applicable_breakages(bc_profile):
        pytest.skip(f"profile {bc_profile.name!r} forbids none of the generated breakages")

    @sup.hypothesis_settings(bc_target)
    @seed(bc_target.seed)
    @given(batch=strategies.broken_batches(bc_profile))
    def check(batch: strategies.GeneratedBatch) -> None:
        bc_budget.charge(batch.requests, "a generated broken batch")
        run = _submit(api, waiter, bc_profile, batch)
        inv.check_validation_errors(run.final, batch.expected, bc_profile)

    check()
