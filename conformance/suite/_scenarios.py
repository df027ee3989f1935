"""The suite's scenarios: the batches submitted up front and polled together.

Several tests read each one (`@pytest.mark.scenarios(name)` + `finished(name)`), so a run
submits few batches. Every builder is deterministic given the profile and the seed, so a
test can rebuild what was submitted (`mixed_plan`, `broken_plan`) instead of relying on
state kept by the builder, which a run resumed from a state file would not have.

Per-line HTTP failures come from the emulator's fault rules (`Control.add_fault`), set only
when the target has controls; elsewhere the mixed batch degrades to "all succeed" and the
tests that need failures carry `needs_control`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import Profile

from .. import strategies
from ..client import ApiResponse
from ..dialects import Input, adapter_for
from ..scenarios import ScenarioContext, ScenarioError, Submitted, scenario

__all__ = [
    "CANCEL_RESPONSES",
    "FAULT_STATUS",
    "MIXED_FAILING",
    "MIXED_SUCCEEDING",
    "MixedPlan",
    "broken_plan",
    "missing_input",
    "mixed_plan",
    "seen_by_builder",
    "stem",
]

#: HTTP status of the injected per-line failures.
FAULT_STATUS = 500
MIXED_SUCCEEDING = 4
MIXED_FAILING = 2
#: The cancel response of `cancel_validating`, by batch id (absent when resumed from a state file).
CANCEL_RESPONSES: dict[str, ApiResponse] = {}


def seen_by_builder(batch_id: str) -> list[dict[str, Any]]:
    """States of a scenario batch its builder saw after creating it (the cancel response of
    `cancel_validating`), to keep in its history between the create response and the polls."""
    response = CANCEL_RESPONSES.get(batch_id)
    if response is None or response.status != 200 or not isinstance(response.json, dict):
        return []
    return [response.json]


def stem(name: str, seed: int) -> str:
    """The custom_id prefix of scenario `name` in a run with `seed`."""
    return f"{name}-{seed}"


def _submit(ctx: ScenarioContext, batch: strategies.GeneratedBatch, **create: Any) -> Submitted:
    created = ctx.submit(batch.lines, endpoint=batch.endpoint, **create)
    return Submitted(batch_id=str(created["id"]), input_custom_ids=list(batch.custom_ids), created=created)


@scenario("all_succeed", capability="lifecycle", requests=3)
def all_succeed(ctx: ScenarioContext) -> Submitted:
    """Three valid lines (with metadata when the profile supports it): every line succeeds."""
    batch = strategies.build_valid(ctx.profile, strategies.batch_size(ctx.profile, 3), prefix=stem(ctx.name, ctx.seed))
    metadata = {"batchconf_scenario": ctx.name} if ctx.profile.has("metadata") else None
    return _submit(ctx, batch, metadata=metadata)


@dataclass(frozen=True)
class MixedPlan:
    """What `mixed_results` submits: the batch, and which custom_ids are made to fail."""

    batch: strategies.GeneratedBatch
    failing: tuple[str, ...]
    fault_pattern: str


def mixed_plan(profile: Profile, seed: int) -> MixedPlan:
    """The `mixed_results` input: successes and failures interleaved (failures on lines 2 and 5)."""
    prefix = stem("mixed_results", seed)
    ok = strategies.build_valid(
        profile, strategies.batch_size(profile, MIXED_SUCCEEDING + MIXED_FAILING) - MIXED_FAILING, prefix=f"{prefix}-ok"
    )
    bad = strategies.build_valid(profile, MIXED_FAILING, prefix=f"{prefix}-fail")
    lines = [ok.lines[0], bad.lines[0], ok.lines[1], ok.lines[2], bad.lines[1], *ok.lines[3:]]
    ids = tuple(str(line["custom_id"]) for line in lines)
    batch = strategies.GeneratedBatch(ok.endpoint, ok.model, tuple(lines), strategies.encode_lines(lines), ids)
    return MixedPlan(batch, bad.custom_ids, f"{prefix}-fail-*")


@scenario("mixed_results", capability="records", requests=MIXED_SUCCEEDING + MIXED_FAILING)
def mixed_results(ctx: ScenarioContext) -> Submitted:
    """Six lines, two of which fail with HTTP 500 on targets with controls (a fault rule on
    their custom_ids); elsewhere all six succeed."""
    plan = mixed_plan(ctx.profile, ctx.seed)
    if ctx.control is not None:
        ctx.control.add_fault(plan.fault_pattern, status_code=FAULT_STATUS)
    return _submit(ctx, plan.batch)


def all_fail_pattern(seed: int) -> str:
    """The fault pattern of `all_fail`."""
    return f"{stem('all_fail', seed)}-*"


@scenario("all_fail", capability="records", requests=2)
def all_fail(ctx: ScenarioContext) -> Submitted:
    """Two lines that both fail with HTTP 400 (fault rule): needs controls."""
    if ctx.control is None:
        raise ScenarioError("all_fail needs the emulator's admin routes to make every line fail")
    batch = strategies.build_valid(ctx.profile, strategies.batch_size(ctx.profile, 2), prefix=stem(ctx.name, ctx.seed))
    ctx.control.add_fault(all_fail_pattern(ctx.seed), status_code=400)
    return _submit(ctx, batch)


@scenario("cancel_validating", capability="cancel", requests=3)
def cancel_validating(ctx: ScenarioContext) -> Submitted:
    """Three valid lines, cancelled right after create (while validating on the emulator;
    whatever the status is by then on a real target)."""
    batch = strategies.build_valid(ctx.profile, strategies.batch_size(ctx.profile, 3), prefix=stem(ctx.name, ctx.seed))
    submitted = _submit(ctx, batch)
    CANCEL_RESPONSES[submitted.batch_id] = ctx.api.cancel_batch(submitted.batch_id)
    return submitted


def broken_plan(profile: Profile, seed: int) -> tuple[tuple[str, ...], strategies.GeneratedBatch]:
    """The `broken_lines` input: every breakage the profile forbids, one per line; and their names."""
    names = strategies.applicable_breakages(profile)
    return names, strategies.build_broken_many(profile, names, prefix=stem("broken_lines", seed))


@scenario("broken_lines", capability="validation", requests=len(strategies.BREAKAGES) + 2)
def broken_lines(ctx: ScenarioContext) -> Submitted:
    """One file with each line-level breakage the profile forbids on its own line, between
    two valid lines: validation must fail the batch and name every broken line."""
    _names, batch = broken_plan(ctx.profile, ctx.seed)
    return _submit(ctx, batch)


def missing_file_id(profile: Profile, seed: int) -> str:
    """An input file id nobody uploaded."""
    return f"{profile.ids.file}batchconf-missing-{seed}"


def missing_input(profile: Profile, seed: int) -> Input:
    """An input reference naming nothing, in the profile's dialect (a file id nobody uploaded,
    a stored-file URL nobody stored)."""
    return adapter_for(profile).missing_input(seed)


def _missing_file_fails_the_batch(profile: Profile) -> str | None:
    if profile.batches.missing_input_file != "fail_batch":
        return f"batches.missing_input_file is {profile.batches.missing_input_file!r} (refused at create)"
    return None


@scenario("missing_input_file", capability="validation", requests=1, applies=_missing_file_fails_the_batch)
def missing_input_file(ctx: ScenarioContext) -> Submitted:
    """A batch naming an input file that does not exist (profiles where that fails the batch
    rather than the create request)."""
    created = ctx.create(missing_input(ctx.profile, ctx.seed))
    return Submitted(batch_id=str(created["id"]), input_custom_ids=[], created=created)
