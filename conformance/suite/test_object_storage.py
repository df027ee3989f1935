"""Batches on object storage (Scaleway's own rules): input by object URL, never pre-signed;
the batch principal's bucket policy; one url and one model per file; a cancel keeps what was
processed, in both objects, and drops the rest; bare UUIDs.

The generic modules already hold these profiles to the shared invariants through the
object-storage adapter (`conformance.dialects.ObjectStorageDialect`: inputs put in the run's
bucket, results read from the objects the file ids name), and `test_storage_layout` checks
where the results go. These tests check what only a provider on object storage says, each
citing the profile fact it rests on (Scaleway: the how-to [scw-howto] and the API reference
[scw-api], see schemas/profiles/scaleway.toml).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._storage import ObjectStorage
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..control import Control
from ..dialects import BatchParams, Input, ObjectStorageDialect, default_endpoint
from ..plugin import TestBudget
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup


def _on_object_storage(profile: Profile) -> str | None:
    if profile.output.location != "object_storage" or profile.storage is None:
        return (
            f"its batches do not read their input from object storage (output.location = {profile.output.location!r})"
        )
    return None


pytestmark = pytest.mark.applies.with_args(_on_object_storage)


def _dialect(profile: Profile) -> ObjectStorageDialect:
    dialect = sup.dialect(profile)
    assert isinstance(dialect, ObjectStorageDialect), f"profile {profile.name!r} is not served by the object adapter"
    return dialect


def _storage(api: ApiClient) -> ObjectStorage:
    assert api.storage is not None, "the run has no bucket (conformance._target.object_storage)"
    return api.storage


# -- Line rules ------------------------------------------------------------------------------


@pytest.mark.capability("validation")
@pytest.mark.scenarios("inconsistent_lines")
def test_lines_must_share_one_url_and_one_model(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """A file whose lines are each valid but name another model (line 2) or another allowed
    endpoint (line 3) than the first line MUST fail validation, reporting exactly those
    lines with the catalogue's `mixed_models` and `invalid_url` entries and their 1-based
    line numbers (Scaleway: "The method, url, and model fields must remain consistent
    across all requests", `line_rules.one_model_per_file`, `line_rules.mixed_endpoints`)."""
    plan = sc.inconsistent_plan(bc_profile, bc_target.seed)
    other_model = str(plan.lines[plan.other_model_line - 1]["body"]["model"])
    other_url = str(plan.lines[plan.other_url_line - 1]["url"])
    expected = [
        inv.ExpectedLineError.of(bc_profile, "mixed_models", plan.other_model_line, value=other_model),
        inv.ExpectedLineError.of(bc_profile, "invalid_url", plan.other_url_line, value=other_url),
    ]
    inv.check_validation_errors(finished("inconsistent_lines").final, expected, bc_profile)


# -- Input URLs ------------------------------------------------------------------------------


def _refuses_presigned(profile: Profile) -> str | None:
    if profile.storage is not None and not profile.storage.presigned_urls:
        return None
    return "it accepts pre-signed input URLs (storage.presigned_urls)"


@pytest.mark.capability("create")
@pytest.mark.applies.with_args(_refuses_presigned)
def test_presigned_url_is_refused(
    api: ApiClient, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """Create naming the input by a pre-signed URL (the object's URL with the signature in
    its query string) MUST be refused with the catalogue's `invalid_input_url` error (400,
    param `input_file_id`), although the object exists (Scaleway: "only path to the file
    without query parameters, hence not a pre-signed URL", `storage.presigned_urls`)."""
    dialect = _dialect(bc_profile)
    storage = _storage(api)
    bc_budget.charge(1, "a pre-signed input URL")
    batch = strategies.build_valid(
        bc_profile, strategies.batch_size(bc_profile, 1), prefix=f"presigned-{bc_target.seed}"
    )
    key = storage.new_folder("presigned") + "batchconf-presigned.jsonl"
    dialect.put_input(api, batch.content, key)
    url = storage.presigned_url(key)
    response = api.create_batch(dialect.create_body(Input.of_url(url), BatchParams(endpoint=batch.endpoint)))
    if response.status == 200 and isinstance(response.json, dict) and isinstance(response.json.get("id"), str):
        # Accepted: do not leave a paid batch running behind the finding.
        api.cancel_batch(response.json["id"])
    inv.expect_error(response, bc_profile, "invalid_input_url", value=url)


# -- The batch principal's bucket policy -------------------------------------------------------


def _names_a_principal(profile: Profile) -> str | None:
    rules = profile.storage
    if rules is not None and rules.batch_principal and rules.principal_actions:
        return None
    return "it names no batch principal a bucket policy must allow (storage.batch_principal)"


def _principals(control: Control, profile: Profile) -> list[str]:
    """The names the target's batch principal goes by: its admin info's `batch_principals`
    (the managed principal's name and application id), else the profile's name for it."""
    named = control.info().get("batch_principals")
    found = [p for p in named if isinstance(p, str)] if isinstance(named, list) else []
    assert profile.storage is not None
    return found or [profile.storage.batch_principal]


def _policy_run(
    api: ApiClient, waiter: Waiter, control: Control, profile: Profile, target: Target, *, allow: bool
) -> tuple[sup.Run, str, list[str]]:
    """A batch whose input sits in a bucket of its own with a policy that allows another
    principal everything and, when `allow`, the batch principal the profile's actions."""
    assert profile.storage is not None
    dialect = _dialect(profile)
    storage = _storage(api)
    principals = _principals(control, profile)
    bucket = f"batchconf-policy-{storage.run}-{'allow' if allow else 'deny'}"
    someone_else = {
        "Sid": "batchconf-owner",
        "Effect": "Allow",
        "Principal": {"SCW": "user_id:batchconf-someone-else"},
        "Action": "*",
        "Resource": [bucket, f"{bucket}/*"],
    }
    statements: list[dict[str, Any]] = [someone_else]
    if allow:
        statements.insert(
            0,
            {
                "Sid": "batchconf-batch-principal",
                "Effect": "Allow",
                "Principal": {"SCW": principals[-1]},
                "Action": list(profile.storage.principal_actions),
                "Resource": [f"{bucket}/*"],
            },
        )
    storage.create_bucket(bucket)
    try:
        storage.put_policy(bucket, json.dumps({"Version": "2023-04-17", "Statement": statements}))
        batch = strategies.build_valid(profile, strategies.batch_size(profile, 2), prefix=f"policy-{target.seed}")
        key = f"{storage.run_folder}policy/batchconf-policy.jsonl"
        storage.put(key, batch.content, bucket=bucket)
        url = storage.url(key, dialect.forms()[0], bucket=bucket)
        created = sup.create_ok(
            api, profile, dialect.create_body(Input.of_url(url), BatchParams(endpoint=batch.endpoint))
        )
        run = sup.run_to_end(api, waiter, profile, created, batch.custom_ids)
    finally:
        storage.remove_bucket(bucket)
    return run, bucket, principals


@pytest.mark.capability("validation")
@pytest.mark.needs_control
@pytest.mark.applies.with_args(_names_a_principal)
def test_bucket_policy_without_the_batch_principal_fails_the_batch(
    api: ApiClient,
    waiter: Waiter,
    control: Control,
    bc_profile: Profile,
    bc_target: Target,
    bc_budget: TestBudget,
) -> None:
    """A batch whose input bucket has a policy that does not allow the batch principal
    (Scaleway: `scw-managed-genapi-batch`) `s3:GetObject` and `s3:PutObject` MUST be created
    and then fail, with the catalogue's `bucket_policy_denies` entry whose message names the
    principal and the missing actions (Scaleway how-to, "Object Storage bucket
    permissions": `storage.batch_principal`, `storage.principal_actions`)."""
    assert bc_profile.storage is not None
    bc_budget.charge(strategies.batch_size(bc_profile, 2), "a bucket policy without the batch principal")
    run, bucket, principals = _policy_run(api, waiter, control, bc_profile, bc_target, allow=False)
    expected = inv.ExpectedLineError.of(bc_profile, "bucket_policy_denies", None, bucket=bucket)
    entries = inv.check_validation_errors(run.final, [expected], bc_profile)
    entry = next(e for e in entries if e.get("code") == expected.code)
    message = str(entry.get("message") or "")
    actions = bc_profile.storage.principal_actions
    if not any(p in message for p in principals) or not all(a in message for a in actions):
        raise inv.violation(
            "bucket-policy-message",
            "the error of a batch its bucket policy denies does not name the principal and the missing actions",
            received=entry,
            expected=f"a message naming one of {principals} and each of {list(actions)}",
            profile=bc_profile,
            key="storage.batch_principal",
        )


@pytest.mark.capability("lifecycle")
@pytest.mark.needs_control
@pytest.mark.applies.with_args(_names_a_principal)
def test_bucket_policy_allowing_the_batch_principal_lets_the_batch_run(
    api: ApiClient,
    waiter: Waiter,
    control: Control,
    bc_profile: Profile,
    bc_target: Target,
    bc_budget: TestBudget,
) -> None:
    """A batch whose input bucket has a policy allowing the batch principal the profile's
    actions (besides the owner's own statement) MUST complete, its results beside the input
    (Scaleway how-to: "you must edit this bucket policy or create a new one allowing the
    Scaleway-managed application principal", `storage.principal_actions`)."""
    bc_budget.charge(strategies.batch_size(bc_profile, 2), "a bucket policy allowing the batch principal")
    run, _bucket, _principals = _policy_run(api, waiter, control, bc_profile, bc_target, allow=True)
    sup.expect_final_role(
        run,
        bc_profile,
        "completed",
        "bucket-policy-allows",
        "a batch whose bucket policy allows the batch principal did not complete",
        "storage.principal_actions",
    )
    sup.check_run(run, bc_profile, bc_target)


# -- Cancel ----------------------------------------------------------------------------------


def _drops_unfinished(profile: Profile) -> str | None:
    policy = profile.output.unfinished_on_cancel
    if policy != "dropped":
        return f"a cancel does not drop the unfinished lines (output.unfinished_on_cancel = {policy!r})"
    return None


CANCEL_PAIRS = 3


@pytest.mark.capability("cancel")
@pytest.mark.needs_control
@pytest.mark.applies.with_args(_drops_unfinished)
def test_cancel_keeps_processed_lines_in_both_objects_and_drops_the_rest(
    api: ApiClient,
    control: Control,
    waiter: Waiter,
    bc_profile: Profile,
    bc_target: Target,
    bc_budget: TestBudget,
) -> None:
    """A batch cancelled while in progress, after lines that succeeded and lines that failed,
    MUST end cancelled with the processed lines kept in both objects beside the input (each
    success in the output object, each failure in the error object, at the profile's keys)
    and the remaining lines in neither, not processed after the cancel (Scaleway: "results
    already processed are stored in corresponding output.jsonl and errors.jsonl files, while
    remaining requests will not be processed", `output.unfinished_on_cancel`)."""
    dialect = _dialect(bc_profile)
    endpoint = default_endpoint(bc_profile)
    prefix = f"cancel-objects-{bc_target.seed}"
    ok = strategies.build_valid(bc_profile, CANCEL_PAIRS, prefix=f"{prefix}-ok")
    bad = [sc.rejected_line(endpoint, bc_profile.models.default, f"{prefix}-rejected-{i}") for i in range(CANCEL_PAIRS)]
    lines = [line for pair in zip(ok.lines, bad, strict=True) for line in pair]
    ids = [str(line["custom_id"]) for line in lines]
    bc_budget.charge(len(lines), "cancel with results in both objects")
    source = sup.stage_ok(api, bc_profile, strategies.encode_lines(lines))
    with sup.manual_progression(control):
        created = sup.create_ok(api, bc_profile, sup.batch_request(bc_profile, source, endpoint))
        stepped: list[dict[str, Any]] = [created]
        sup.drive_to(control, bc_profile, created["id"], sup.status_of(bc_profile, "in_progress"), stepped)
        view = dialect.view(stepped[-1])
        # One line at a time until both a success and a failure are in: at most
        # CANCEL_PAIRS + 1 steps, leaving at least CANCEL_PAIRS - 1 lines unprocessed.
        for _ in range(CANCEL_PAIRS + 1):
            if view.completed and view.failed:
                break
            stepped.append(control.step(created["id"], lines=1))
            view = dialect.view(stepped[-1])
        response = api.cancel_batch(created["id"])
    at_cancel = (view.completed, view.failed)
    body = inv.expect_ok(response, bc_profile, "batch")
    run = sup.run_to_end(api, waiter, bc_profile, created, ids, seen_before=[*stepped[1:], body], timeout="cancel")
    sup.check_run(run, bc_profile, bc_target)
    sup.expect_final_role(
        run,
        bc_profile,
        "cancelled",
        "cancel-final",
        "a cancelled batch did not end cancelled",
        "output.unfinished_on_cancel",
    )
    final = dialect.view(run.final)
    succeeded = {str(line.get("custom_id")) for line in run.output_lines}
    failed = {str(line.get("custom_id")) for line in run.error_lines}
    problems = []
    if (final.completed, final.failed) != at_cancel:
        problems.append(f"counts went from {at_cancel} at the cancel to {(final.completed, final.failed)}")
    if len(succeeded) != at_cancel[0] or not succeeded <= set(ok.custom_ids):
        problems.append(f"the output object holds {sorted(succeeded)}, not the {at_cancel[0]} processed successes")
    if len(failed) != at_cancel[1] or not failed <= {str(line["custom_id"]) for line in bad}:
        problems.append(f"the error object holds {sorted(failed)}, not the {at_cancel[1]} processed failures")
    if problems:
        raise inv.violation(
            "cancel-objects",
            f"cancelled batch {run.batch_id}: " + "; ".join(problems),
            received={"output": sorted(succeeded), "error": sorted(failed), **final.counts_body},
            expected=f"{at_cancel[0]} successes in the output object, {at_cancel[1]} failures in the error object, "
            f"the other {len(ids) - sum(at_cancel)} lines in neither",
            profile=bc_profile,
            key="output.unfinished_on_cancel",
        )
    input_key = dialect.locate(api, str(source.url))
    assert input_key is not None
    named = dialect.result_keys(input_key[1], run.batch_id)["primary"]
    storage = _storage(api)
    for ref_field, key in zip(("output_file_id", "error_file_id"), named, strict=True):
        want = storage.url(key, dialect.forms()[0])
        if run.final.get(ref_field) != want:
            raise inv.violation(
                "cancel-objects",
                f"{ref_field} of cancelled batch {run.batch_id} is not the object beside its input",
                received=run.final.get(ref_field),
                expected=want,
                profile=bc_profile,
                key="storage.output_key" if ref_field == "output_file_id" else "storage.error_key",
            )


# -- Ids -------------------------------------------------------------------------------------


def _bare_ids(profile: Profile) -> str | None:
    if profile.ids.batch:
        return f"its batch ids carry the prefix {profile.ids.batch!r} (ids.batch)"
    return None


@pytest.mark.capability("create")
@pytest.mark.applies.with_args(_bare_ids)
@pytest.mark.scenarios("all_succeed", "broken_lines", "cancel_validating")
def test_batch_ids_are_uuids(finished: Callable[[str], Finished], api: ApiClient, bc_profile: Profile) -> None:
    """Batch ids MUST be bare UUIDs in their canonical form (8-4-4-4-12 hexadecimal digits,
    lower case), in create responses, polls and the list, where the profile gives them no
    prefix (Scaleway: "id UUID of the batch", the list cursor "a batch UUID"; `ids.batch`)."""
    seen: dict[str, str] = {}
    for name in ("all_succeed", "broken_lines", "cancel_validating"):
        done = finished(name)
        for state in sup.states(sup.view(done)):
            seen[str(state.get("id"))] = f"scenario {name}"
    page = sup.own_page(inv.expect_ok(api.list_batches(limit=5), bc_profile, None), bc_profile, "batch_list", api.owned)
    for item in page["data"]:
        seen.setdefault(str(item.get("id")), "the batch list")
    for batch_id, where in seen.items():
        try:
            canonical = str(uuid.UUID(batch_id))
        except ValueError:
            canonical = None
        if canonical != batch_id:
            raise inv.violation(
                "ids-uuid",
                f"a batch id ({where}) is not a canonical UUID",
                received=batch_id,
                expected="xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lower-case hexadecimal)",
                profile=bc_profile,
                key="ids.batch",
            )
