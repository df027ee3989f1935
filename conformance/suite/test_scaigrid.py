"""ScaiGrid's own rules: native statuses, `results_url`, the counts, mixed endpoints, the
inline size limit, the concurrent-batch quota, the create body's input fields.

The generic modules already hold ScaiGrid to the shared invariants through its dialect
adapter (exactly once, counts, transitions, the window running out ending `completed` with
error records for the unfinished lines, webhooks); these tests check what only this dialect
says, each citing the profile fact it rests on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from schemas import Profile, load_profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..dialects import BatchParams, Input, ScaiGridDialect
from ..plugin import TestBudget
from ..scenarios import Finished
from . import _scenarios as sc
from . import _support as sup

pytestmark = pytest.mark.dialect("scaigrid")

#: Every scenario whose batch a ScaiGrid test reads, and the status it ends in.
ENDINGS = {
    "all_succeed": "completed",
    "mixed_endpoints": "completed",
    "broken_lines": "failed",
    "missing_input_file": "failed",
    "cancel_validating": "cancelled",
}
ENDING_PARAMS = [pytest.param(name, marks=pytest.mark.scenarios(name), id=name) for name in ENDINGS]


def _dialect(profile: Profile) -> ScaiGridDialect:
    dialect = sup.dialect(profile)
    assert isinstance(dialect, ScaiGridDialect), f"profile {profile.name!r} is not served by the ScaiGrid adapter"
    return dialect


# -- Statuses and results_url ----------------------------------------------------------------


@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios(*ENDINGS)
def test_statuses_are_native_words(finished: Callable[[str], Finished], api: ApiClient, bc_profile: Profile) -> None:
    """Every status a ScaiGrid batch shows (create, polls, the list) MUST be one of the
    native words pending, processing, completed, failed, cancelled; never another dialect's
    (validating, in_progress, finalizing, expired, cancelling)."""
    native = set(bc_profile.lifecycle.statuses)
    seen: dict[str, set[str]] = {}
    for name in ENDINGS:
        done = finished(name)
        for state in sup.states(sup.view(done)):
            seen.setdefault(str(state.get("status")), set()).add(name)
    listed = api.list_batches(limit=bc_profile.batches.list_max_limit)
    page = sup.own_page(inv.expect_ok(listed, bc_profile, None), bc_profile, "batch_list", api.owned)
    for item in page["data"]:
        seen.setdefault(str(item.get("status")), set()).add("the batch list")
    foreign = {status: sorted(where) for status, where in seen.items() if status not in native}
    if foreign:
        raise inv.violation(
            "status-native",
            "a ScaiGrid batch shows a status outside the native vocabulary",
            received=foreign,
            expected=sorted(native),
            profile=bc_profile,
            key="lifecycle.statuses",
        )


@pytest.mark.capability("records")
@pytest.mark.parametrize("name", ENDING_PARAMS)
def test_results_url_only_when_results_exist(
    name: str, finished: Callable[[str], Finished], api: ApiClient, bc_profile: Profile, bc_target: Target
) -> None:
    """`results_url` MUST be null while a batch is pending or processing, for a failed batch
    and for one cancelled before processing started; a completed batch MUST carry it, as an
    absolute http(s) URL that answers the results file (JSONL) to the same key."""
    done = finished(name)
    states = sup.states(sup.view(done))
    inv.check_file_ids(states, bc_profile)
    final = done.final
    url = final.get("results_url")
    if ENDINGS[name] != "completed" or final.get("status") != "completed":
        return  # the null cases are check_file_ids' (and a wrong ending is another test's finding)
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise inv.violation(
            "results-url",
            f"the results_url of completed batch {done.batch_id} is not an absolute http(s) URL",
            received=url,
            expected="http(s)://HOST/...",
            profile=bc_profile,
            key="output.location",
        )
    response = api.get_url(str(url))
    inv.expect_ok(response, bc_profile, None)
    if response.content != done.raw_results.get("results_url"):
        raise inv.violation(
            "results-url",
            f"fetching the results_url of batch {done.batch_id} again answers other bytes",
            received=response.content[:300],
            expected=(done.raw_results.get("results_url") or b"")[:300],
            profile=bc_profile,
            key="output.location",
        )


# -- Counts and records ------------------------------------------------------------------------


@pytest.mark.capability("records")
@pytest.mark.scenarios("mixed_endpoints")
def test_counts_are_the_records(finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target) -> None:
    """A completed batch with failed lines MUST report `failed_count` = its "error" records
    (here the two lines the endpoint rejected), `completed_count` = its "ok" records and
    `total_count` = its input lines."""
    done = finished("mixed_endpoints")
    plan = sc.mixed_endpoints_plan(bc_profile, bc_target.seed)
    view = _dialect(bc_profile).view(done.final)
    got = {"total_count": view.total, "completed_count": view.completed, "failed_count": view.failed}
    want = {
        "total_count": len(plan.lines),
        "completed_count": len(done.output_lines),
        "failed_count": len(done.error_lines),
    }
    failed_ids = sorted(str(line.get("custom_id")) for line in done.error_lines)
    if got != want or failed_ids != sorted(plan.rejected):
        raise inv.violation(
            "counts-records",
            f"the counts of batch {done.batch_id} are not its result records",
            received={**got, "error records": failed_ids},
            expected={**want, "error records": sorted(plan.rejected)},
            profile=bc_profile,
            key="output",
        )


def _shape_problem(url: str, line: Mapping[str, Any], response: Any) -> str | None:
    """What is wrong with an ok record's response for a line of `url` (None: nothing)."""
    if not isinstance(response, Mapping):
        return "the response is not an object"
    if response.get("model") != line["body"]["model"]:
        return f"the response names model {response.get('model')!r}, not the line's {line['body']['model']!r}"
    if url.endswith(("/chat", "/chat/completions")):
        choices = response.get("choices")
        if response.get("object") != "chat.completion" or not isinstance(choices, list) or not choices:
            return "a chat line's response is not a chat.completion with choices"
    elif url.endswith(("/embed", "/embeddings")):
        data = response.get("data")
        raw = line["body"]["input"]
        count = len(raw) if isinstance(raw, list) else 1
        if response.get("object") != "list" or not isinstance(data, list) or len(data) != count:
            return f"an embeddings line's response is not a list of {count} embedding(s)"
        if not all(isinstance(item, Mapping) and isinstance(item.get("embedding"), list) for item in data):
            return "an embeddings line's response holds an item without an embedding"
    return None


@pytest.mark.capability("records")
@pytest.mark.scenarios("mixed_endpoints")
def test_mixed_endpoints_in_one_batch_are_processed(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """One batch MAY mix endpoints and models (chat and embeddings lines of two models): it
    MUST complete with an "ok" record for every line its endpoint accepts, whose response
    is that endpoint's (a chat.completion, an embeddings list) for the line's model, and an
    "error" record with the HTTP status the endpoint answered for every line it rejects."""
    done = finished("mixed_endpoints")
    dialect = _dialect(bc_profile)
    plan = sc.mixed_endpoints_plan(bc_profile, bc_target.seed)
    if done.final.get("status") != sup.status_of(bc_profile, "completed"):
        raise inv.violation(
            "mixed-endpoints",
            "a batch mixing endpoints and models did not complete",
            received={"status": done.final.get("status"), "errors": done.final.get("errors")},
            expected=sup.status_of(bc_profile, "completed"),
            profile=bc_profile,
            key="line_rules.mixed_endpoints",
        )
    records = {str(line.get("custom_id")): line for line in [*done.output_lines, *done.error_lines]}
    for custom_id in plan.custom_ids:
        line = plan.line(custom_id)
        record = records.get(custom_id, {})
        canonical = dialect.record(record)
        if custom_id in plan.rejected:
            want = dialect.http_error_code(400)
            if canonical.ok or not canonical.http or canonical.http_status != 400:
                raise inv.violation(
                    "mixed-endpoints",
                    f"the line {custom_id!r} its endpoint ({line['url']}) rejects is not an error record of HTTP 400",
                    received=record,
                    expected={"custom_id": custom_id, "status": "error", "error": {"code": want, "message": "..."}},
                    profile=bc_profile,
                    key="output.line_format",
                )
            continue
        problem = _shape_problem(str(line["url"]), line, record.get("response")) if canonical.ok else "not ok"
        if problem is not None:
            raise inv.violation(
                "mixed-endpoints",
                f"the record of {custom_id!r} ({line['url']}, model {line['body']['model']!r}): {problem}",
                received=record,
                expected={"custom_id": custom_id, "status": "ok", "response": f"the answer of {line['url']}"},
                profile=bc_profile,
                key="line_rules.mixed_endpoints",
            )


# -- The create body ---------------------------------------------------------------------------


def _one_line(profile: Profile, prefix: str) -> strategies.GeneratedBatch:
    return strategies.build_valid(profile, 1, prefix=prefix)


@pytest.mark.capability("create")
@pytest.mark.parametrize("case", ["neither", "both", "not_base64"])
def test_create_needs_exactly_one_input(api: ApiClient, bc_profile: Profile, bc_target: Target, case: str) -> None:
    """A create body MUST give its input exactly one way: with neither `input_file_url` nor
    `input_file_base64` it MUST be refused with `missing_parameter` naming input_file_url,
    with both with `conflicting_input`, and base64 that does not decode with
    `invalid_base64`."""
    dialect = _dialect(bc_profile)
    inline = dialect.create_body(Input.of_content(_one_line(bc_profile, f"inputs-{bc_target.seed}").content))
    body: dict[str, Any] = dict(inline)
    url_field, inline_field = dialect.field("input_url"), dialect.field("input")
    assert url_field and inline_field
    if case == "neither":
        del body[inline_field]
        inv.expect_error(api.create_batch(body), bc_profile, "missing_parameter", param=url_field)
    elif case == "both":
        body[url_field] = dialect.missing_input(bc_target.seed).url
        inv.expect_error(api.create_batch(body), bc_profile, "conflicting_input")
    else:
        body[inline_field] = "this is not base64!"
        inv.expect_error(api.create_batch(body), bc_profile, "invalid_base64")


@pytest.mark.capability("create")
def test_window_defaults_to_24h(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A create body without `endpoint_completion_window` MUST be accepted and the batch
    MUST carry the default window (24h), with `expires_at` = `created_at` + that window."""
    dialect = _dialect(bc_profile)
    batch = _one_line(bc_profile, f"default-window-{bc_target.seed}")
    bc_budget.charge(1, "default window")
    body = dialect.create_body(Input.of_content(batch.content))
    window_field = dialect.field("window")
    assert window_field
    del body[window_field]
    created = sup.create_ok(api, bc_profile, body)
    run = sup.run_to_end(api, waiter, bc_profile, created, batch.custom_ids)
    default = bc_profile.batches.default_window
    if dialect.view(created).window != default:
        raise inv.violation(
            "default-window",
            f"a batch created without {window_field} does not carry the default window",
            received=created.get(window_field),
            expected=default,
            profile=bc_profile,
            key="batches.default_window",
            observed=created.get(window_field) if isinstance(created.get(window_field), str) else inv.NOT_OBSERVED,
        )
    inv.check_expires_at(sup.states(run), bc_profile)


def _compat_client(api: ApiClient, profile: Profile) -> ApiClient:
    """The same principal on the profile's OpenAI-compatible surface ([compat])."""
    compat = profile.compat
    assert compat is not None
    base = load_profile(compat.openai_profile)
    http = dataclasses.replace(base.http, base_path=compat.openai_base_path)
    return ApiClient(api.http, dataclasses.replace(base, http=http), api_key=api.api_key, project=api.project)


def _has_compat(profile: Profile) -> str | None:
    return None if profile.compat is not None else "it has no OpenAI-compatible surface ([compat])"


@pytest.mark.capability("create")
@pytest.mark.applies.with_args(_has_compat)
def test_input_by_stored_file_reference(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A file uploaded through the OpenAI-compatible Files API MUST be usable as a native
    batch's `input_file_url` in the profile's reference form (`scaigrid://file/{file_id}`):
    the batch echoes the reference and completes with every line once."""
    compat = bc_profile.compat
    assert compat is not None
    compat_api = _compat_client(api, bc_profile)
    batch = strategies.build_valid(bc_profile, 2, prefix=f"stored-{bc_target.seed}")
    bc_budget.charge(2, "input by stored file reference")
    uploaded = inv.expect_ok(
        compat_api.upload_file(batch.content, "batchconf-stored.jsonl"), compat_api.profile, "file"
    )
    reference = compat.reference(str(uploaded["id"]))
    body = _dialect(bc_profile).create_body(Input.of_url(reference))
    created = sup.create_ok(api, bc_profile, body)
    if created.get("input_file_url") != reference:
        raise inv.violation(
            "input-reference",
            "the batch does not echo the stored-file reference it was created with",
            received=created.get("input_file_url"),
            expected=reference,
            profile=bc_profile,
            key="compat.file_reference",
        )
    run = sup.run_to_end(api, waiter, bc_profile, created, batch.custom_ids)
    sup.expect_final_role(
        run, bc_profile, "completed", "input-reference", "a batch of a stored file did not complete", "compat"
    )
    sup.check_run(run, bc_profile, bc_target)


# -- Limits ------------------------------------------------------------------------------------


def _inline_limit(profile: Profile) -> str | None:
    if not profile.limits.inline_base64_max_bytes:
        return "it sets no inline size limit (limits.inline_base64_max_bytes = 0)"
    return None


def padded_jsonl(profile: Profile, size: int, prefix: str, chunk: int = 1 << 16) -> Iterator[bytes]:
    """One valid chat line of exactly `size` bytes (its prompt padded), produced chunk by
    chunk: the payload is never held whole."""
    line = strategies.build_valid(profile, 1, prefix=prefix).lines[0]
    line["body"]["messages"] = [{"role": "user", "content": ""}]
    text = json.dumps(line, separators=(",", ":")).encode("utf-8")
    cut = text.index(b'"content":""') + len(b'"content":"')
    head, tail = text[:cut], text[cut:] + b"\n"
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise ValueError(f"a line of {size} bytes cannot hold the request ({len(head) + len(tail)} bytes)")
    yield head
    while pad > 0:
        step = min(chunk, pad)
        yield b"x" * step
        pad -= step
    yield tail


@pytest.mark.capability("create")
@pytest.mark.applies.with_args(_inline_limit)
def test_inline_input_at_the_limit_is_refused(
    api: ApiClient, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """An `input_file_base64` whose decoded size is the inline limit (10 MiB) or more MUST be
    refused at create with `inline_too_large` (429 QUOTA_EXCEEDED): inline input is for
    batches smaller than that."""
    limit = bc_profile.limits.inline_base64_max_bytes
    bc_budget.charge(1, "inline input at the limit")
    content = padded_jsonl(bc_profile, limit, f"inline-limit-{bc_target.seed}")
    response = api.create_batch(content=_dialect(bc_profile).create_body_stream(content))
    inv.expect_error(response, bc_profile, "inline_too_large", size=limit, max=limit)


def _concurrency_limit(profile: Profile) -> str | None:
    if not profile.limits.max_concurrent_batches:
        return "it sets no concurrent-batch limit (limits.max_concurrent_batches = 0)"
    return None


def _open_batches(api: ApiClient, profile: Profile) -> int:
    """How many of the principal's batches (in the first list page) have not ended."""
    listed = api.list_batches(limit=profile.batches.list_max_limit)
    page = sup.own_page(inv.expect_ok(listed, profile, None), profile, "batch_list", api.owned)
    return sum(1 for item in page["data"] if item.get("status") not in profile.lifecycle.terminal)


@pytest.mark.capability("create")
@pytest.mark.applies.with_args(_concurrency_limit)
def test_batch_past_the_concurrent_limit_is_refused(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """While an owner has `limits.max_concurrent_batches` (10) batches that have not ended,
    creating one more MUST be refused with `quota_exceeded` (429 QUOTA_EXCEEDED); the ones
    before it MUST be accepted. (On the emulator with per-poll progression, batches nobody
    polls stay pending; the test cancels and waits out every batch it created.)"""
    limit = bc_profile.limits.max_concurrent_batches
    bc_budget.charge(limit + 1, f"{limit + 1} batches for the concurrent-batch quota")
    dialect = _dialect(bc_profile)
    content = _one_line(bc_profile, f"quota-{bc_target.seed}").content
    already = _open_batches(api, bc_profile)
    created: list[str] = []
    try:
        for number in range(1, limit - already + 1):
            response = dialect.submit(api, content, BatchParams())
            if response.status != 200:
                raise inv.violation(
                    "quota-early",
                    f"create #{number} was refused although only {already + number - 1} batches were open",
                    received=response.describe(),
                    expected=f"accepted while fewer than {limit} batches are open",
                    profile=bc_profile,
                    key="limits.max_concurrent_batches",
                )
            created.append(str(inv.expect_ok(response, bc_profile, "batch")["id"]))
        response = dialect.submit(api, content, BatchParams())
        if response.status == 200:
            created.append(str(response.json["id"]))
            states = [inv.expect_ok(api.retrieve_batch(b), bc_profile, "batch") for b in created[:-1]]
            ended = [s["id"] for s in states if s.get("status") in bc_profile.lifecycle.terminal]
            if ended:
                pytest.skip(
                    f"inconclusive: {len(ended)} of the {limit} batches ended before the next create, so the "
                    "target never had the limit open at once"
                )
            raise inv.violation(
                "quota-not-enforced",
                f"a batch past the concurrent limit was accepted while {limit} batches were open",
                received=response.describe(),
                expected=f"HTTP 429 QUOTA_EXCEEDED (limit {limit})",
                profile=bc_profile,
                key="limits.max_concurrent_batches",
            )
        inv.expect_error(response, bc_profile, "quota_exceeded", limit="concurrent batches", max=limit)
    finally:
        if bc_profile.has("cancel"):
            for batch_id in created:
                api.cancel_batch(batch_id)
        if created:
            waiter.wait_many(api, created, raise_errors=False)
