"""Gateways and OpenAI-compatible providers, as their own documents describe them.

What TrueFoundry's gateway, Azure OpenAI and OVHcloud add to OpenAI's contract, each check
citing the profile fact it rests on (and so that fact's source):
- a gateway's provider header is required on every request (`http.required_headers`);
- statuses a backend never enters are never shown (`lifecycle.never_entered`: Bedrock and
  Vertex behind TrueFoundry show neither finalizing nor expired);
- a failed batch names an error file with its errors (`output.failed_error_file`);
- a small batch under a backend's minimum fails validation (`limits.min_requests`);
- Azure's create-time endpoint `/chat/completions` over `/v1/chat/completions` and
  `/v1/responses` lines; its pre-v1 `/openai/...?api-version=` routes serve the same batches
  (`http.base_path_aliases`); its `api-key` header authenticates (`http.auth_header`);
- a line naming a model outside the catalogue fails into the error file (`models.catalogue`);
- every documented completion window is accepted, and a create naming none gets the default
  (`windows`, `batches.default_window`).

Each test is deselected, with the reason, where its profile states no such fact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
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

pytestmark = pytest.mark.dialect("openai")


def _applies(check: Callable[[Profile], str | None]) -> pytest.MarkDecorator:
    return pytest.mark.applies.with_args(check)


# -- A gateway's provider header ---------------------------------------------------------------


def _requires_headers(profile: Profile) -> str | None:
    if not profile.http.required_headers:
        return "it requires no header beyond auth (http.required_headers is empty)"
    return None


#: Calls that each reach a different route, for a principal whose batch exists.
HEADER_CALLS: dict[str, Callable[[ApiClient, Finished, Profile], ApiResponse]] = {
    "list_batches": lambda api, done, profile: api.list_batches(limit=1),
    "retrieve_batch": lambda api, done, profile: api.retrieve_batch(done.batch_id),
    "create_file": lambda api, done, profile: api.upload_file(
        strategies.build_valid(profile, 1, prefix="header").content,
        f"batchconf-header{profile.files.batch_file_extension}",
    ),
}


@pytest.mark.capability("auth")
@pytest.mark.scenarios("all_succeed")
@_applies(_requires_headers)
@pytest.mark.parametrize("operation", list(HEADER_CALLS))
def test_request_without_the_provider_header_is_refused(
    operation: str, api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """A request with a valid key but without a header the profile requires on every request
    (TrueFoundry: `x-tfy-provider-name`, which names the provider the gateway routes to;
    [tfy] Client Setup: 'All providers use the OpenAI SDK with provider-specific headers')
    MUST be refused with a 4xx in the dialect's error envelope; with it, the same request is
    served (the suite's other tests)."""
    done = finished("all_succeed")
    for name in bc_profile.http.required_headers:
        response = HEADER_CALLS[operation](api.without_headers(name), done, bc_profile)
        inv.expect_refused(response, bc_profile, f"http.required_headers.{name}")


# -- Statuses a backend never enters -------------------------------------------------------------


def _skips_statuses(profile: Profile) -> str | None:
    if not profile.lifecycle.never_entered:
        return "its batches may enter every status of the enum (lifecycle.never_entered is empty)"
    return None


NEVER_ENTERED_SCENARIOS = ("all_succeed", "mixed_results", "cancel_validating", "broken_lines")


@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios(*NEVER_ENTERED_SCENARIOS)
@_applies(_skips_statuses)
def test_backend_never_shows_the_statuses_it_never_enters(
    finished: Callable[[str], Finished], api: ApiClient, bc_profile: Profile
) -> None:
    """A batch MUST NOT show a status the profile says its backend never enters, at create,
    on any poll or in the batch list (TrueFoundry in front of Bedrock or Vertex: finalizing
    and expired are '(OpenAI / Azure OpenAI)' only, [tfy] Batch Status Reference)."""
    never = bc_profile.lifecycle.never_entered
    shown: dict[str, list[str]] = {}
    for name in NEVER_ENTERED_SCENARIOS:
        for state in sup.states(sup.view(finished(name))):
            status = str(state.get("status"))
            if status in never:
                shown.setdefault(status, []).append(name)
    listed = api.list_batches(limit=bc_profile.batches.list_max_limit)
    page = sup.own_page(inv.expect_ok(listed, bc_profile, None), bc_profile, "batch_list", api.owned)
    for item in page["data"]:
        if item.get("status") in never:
            shown.setdefault(str(item["status"]), []).append(f"the batch list ({item.get('id')})")
    if shown:
        raise inv.violation(
            "never-entered",
            "a batch shows a status its backend never enters",
            received=shown,
            expected=f"none of {sorted(never)}",
            profile=bc_profile,
            key="lifecycle.never_entered",
        )


# -- A failed batch's error file -------------------------------------------------------------------


def _failed_error_file(profile: Profile) -> str | None:
    if not profile.output.failed_error_file:
        return "a failed batch names no error file (output.failed_error_file is false)"
    return None


FAILED_SCENARIOS = [
    pytest.param("broken_lines", marks=pytest.mark.scenarios("broken_lines"), id="broken_lines"),
    pytest.param("missing_input_file", marks=pytest.mark.scenarios("missing_input_file"), id="missing_input_file"),
]


@pytest.mark.capability("validation")
@_applies(_failed_error_file)
@pytest.mark.parametrize("name", FAILED_SCENARIOS)
def test_failed_batch_names_an_error_file_with_its_errors(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """A batch that failed MUST name an error file (`error_file_id`) whose failure lines hold
    its errors: every code of `errors.data` on a line of the file, each line valid against
    the dialect's error-line schema (TrueFoundry, [tfy] Batch Status Reference: 'failed:
    Batch processing failed (use error_file_id from the batch response to fetch error
    details)')."""
    done = finished(name)
    final = done.final
    key = "output.failed_error_file"
    if final.get("status") != sup.status_of(bc_profile, "failed"):
        raise inv.violation(
            "failed-error-file",
            f"scenario {name!r} did not fail, so its error file cannot be checked",
            received={"status": final.get("status"), "errors": final.get("errors")},
            expected=sup.status_of(bc_profile, "failed"),
            profile=bc_profile,
            key="lifecycle.roles.failed",
        )
    if final.get("error_file_id") is None:
        raise inv.violation(
            "failed-error-file",
            f"failed batch {done.batch_id} names no error file",
            received={"error_file_id": None, "errors": final.get("errors")},
            expected="the id of a file with the batch's errors",
            profile=bc_profile,
            key=key,
            observed=False,
        )
    inv.check_records([], done.error_lines, bc_profile)
    errors = final.get("errors")
    data = errors.get("data") if isinstance(errors, Mapping) else None
    wanted = {str(entry.get("code")) for entry in (data or []) if isinstance(entry, Mapping)}
    in_file = {str(line["error"].get("code")) for line in done.error_lines if isinstance(line.get("error"), Mapping)}
    if not done.error_lines or not wanted <= in_file:
        raise inv.violation(
            "failed-error-file",
            f"the error file of failed batch {done.batch_id} does not hold its errors",
            received={"codes in the error file": sorted(in_file), "lines": len(done.error_lines)},
            expected={"codes of errors.data": sorted(wanted)},
            profile=bc_profile,
            key=key,
        )


# -- A backend's minimum batch size ----------------------------------------------------------------


@pytest.mark.capability("validation")
@pytest.mark.scenarios("below_minimum")
def test_small_batch_under_the_minimum_fails_validation(
    finished: Callable[[str], Finished], bc_profile: Profile
) -> None:
    """A batch of three requests where the profile's minimum is larger (TrueFoundry in front
    of Bedrock: [tfy] Best Practices, 'Bedrock: minimum 100 records') MUST fail validation
    with the catalogue's `too_few_requests` entry naming the count and the minimum."""
    minimum = bc_profile.limits.min_requests
    expected = inv.ExpectedLineError.of(bc_profile, "too_few_requests", None, count=sc.BELOW_MINIMUM_LINES, min=minimum)
    inv.check_validation_errors(finished("below_minimum").final, [expected], bc_profile)


# -- Azure's create-time endpoint form ---------------------------------------------------------------

SHORT_ENDPOINT = {"short_endpoint_chat": "/v1/chat/completions", "short_endpoint_responses": "/v1/responses"}
SHORT_ENDPOINT_PARAMS = [pytest.param(n, marks=pytest.mark.scenarios(n), id=n) for n in SHORT_ENDPOINT]


def _answer_problem(url: str, record: Mapping[str, Any]) -> str | None:
    response = record.get("response")
    body = response.get("body") if isinstance(response, Mapping) else None
    if not isinstance(body, Mapping):
        return "the record has no response body"
    if url.endswith("/responses"):
        if body.get("object") != "response" or not isinstance(body.get("output"), list):
            return "a /v1/responses line's answer is not a response object with output"
    elif body.get("object") != "chat.completion" or not body.get("choices"):
        return "a /v1/chat/completions line's answer is not a chat.completion with choices"
    return None


@pytest.mark.capability("create")
@pytest.mark.parametrize("name", SHORT_ENDPOINT_PARAMS)
def test_batch_created_with_the_short_chat_endpoint_runs_its_lines(
    name: str, finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """A batch created with `endpoint="/chat/completions"` over lines whose url is
    `/v1/chat/completions`, or `/v1/responses` with `body.input`, MUST be accepted, echo that
    endpoint, and complete with every line answered by its own url's endpoint, every batch
    invariant holding (TrueFoundry's Azure route, [tfy] Azure prerequisites; Azure OpenAI,
    [azure-rest] Create batch)."""
    done = finished(name)
    run = sup.view(done)
    url = SHORT_ENDPOINT[name]
    key = "endpoints.allowed"
    if done.created.get("endpoint") != sc.SHORT_CHAT_ENDPOINT:
        raise inv.violation(
            "short-endpoint",
            "the created batch does not echo the endpoint it was created with",
            received=done.created.get("endpoint"),
            expected=sc.SHORT_CHAT_ENDPOINT,
            profile=bc_profile,
            key=key,
        )
    sup.expect_final_role(
        run, bc_profile, "completed", "short-endpoint", f"a batch of {url} lines did not complete", key
    )
    sup.check_run(run, bc_profile, bc_target)
    if len(run.output_lines) != len(run.input_custom_ids):
        raise inv.violation(
            "short-endpoint",
            f"not every {url} line of a batch created with {sc.SHORT_CHAT_ENDPOINT} succeeded",
            received={
                "successes": len(run.output_lines),
                "failures": [line.get("response") for line in run.error_lines[:3]],
            },
            expected={"successes": len(run.input_custom_ids)},
            profile=bc_profile,
            key="line_rules.url_must_match_endpoint",
        )
    for record in run.output_lines:
        problem = _answer_problem(url, record)
        if problem is not None:
            raise inv.violation(
                "short-endpoint",
                f"the record of {record.get('custom_id')!r}: {problem}",
                received=record,
                expected=f"the answer of {url}",
                profile=bc_profile,
                key=key,
            )


# -- Azure's pre-v1 routes and its api-key header ------------------------------------------------


def _has_alias_form(profile: Profile) -> str | None:
    http = profile.http
    if not http.base_path_aliases or not http.alias_required_query:
        return "it has no other base path with a required query parameter (http.base_path_aliases)"
    return None


#: The api-version the pre-v1 requests name (latest GA in [azure-howto] API support).
API_VERSION = "2024-10-21"


def _alias_clients(api: ApiClient, profile: Profile) -> list[tuple[str, ApiClient]]:
    http = profile.http
    return [
        (alias, api.with_profile(dataclasses.replace(profile, http=dataclasses.replace(http, base_path=alias))))
        for alias in http.base_path_aliases
    ]


@pytest.mark.capability("create")
@pytest.mark.scenarios("all_succeed")
@_applies(_has_alias_form)
def test_pre_v1_routes_serve_the_same_batches(
    api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """The routes under the profile's other base path with the required query parameter
    (Azure: `/openai/batches?api-version=...` beside `/openai/v1/batches`, [azure-howto] API
    support, [azure-rest]) MUST serve the same batches and files: a batch and its input file
    retrieved both ways are equal, the list holds it, its output downloads to the same
    bytes; without the parameter the request MUST be refused with a 4xx envelope."""
    done = finished("all_succeed")
    param = bc_profile.http.alias_required_query
    query = {param: API_VERSION}
    key = "http.base_path_aliases"
    stable = ("id", "status", "input_file_id", "output_file_id", "error_file_id", "request_counts", "created_at")
    v1 = inv.expect_ok(api.retrieve_batch(done.batch_id), bc_profile, "batch")
    for alias, client in _alias_clients(api, bc_profile):
        path = {"batch_id": done.batch_id}
        got = inv.expect_ok(client.request("retrieve_batch", path=path, query=query), bc_profile, "batch")
        if {k: got.get(k) for k in stable} != {k: v1.get(k) for k in stable}:
            raise inv.violation(
                "alias-same-batch",
                f"batch {done.batch_id} retrieved under {alias} differs from {bc_profile.http.base_path}",
                received={k: got.get(k) for k in stable},
                expected={k: v1.get(k) for k in stable},
                profile=bc_profile,
                key=key,
            )
        page = inv.expect_ok(client.request("list_batches", query={**query, "limit": 100}), bc_profile, "batch_list")
        if done.batch_id not in {item.get("id") for item in page["data"]}:
            raise inv.violation(
                "alias-same-batch",
                f"the batch list under {alias} does not hold batch {done.batch_id}",
                received=[item.get("id") for item in page["data"]][:10],
                expected=f"a list holding {done.batch_id}",
                profile=bc_profile,
                key=key,
            )
        file_id = str(v1.get("input_file_id"))
        inv.expect_ok(client.request("retrieve_file", path={"file_id": file_id}, query=query), bc_profile, "file")
        output = v1.get("output_file_id")
        if isinstance(output, str):
            content = client.request("file_content", path={"file_id": output}, query=query, parse=False)
            inv.expect_ok(content, bc_profile, None)
            if content.content != done.raw_results.get("output_file_id"):
                raise inv.violation(
                    "alias-same-batch",
                    f"the output file {output} downloads to other bytes under {alias}",
                    received=content.content[:200],
                    expected=(done.raw_results.get("output_file_id") or b"")[:200],
                    profile=bc_profile,
                    key=key,
                )
        bare = client.request("retrieve_batch", path=path)
        inv.expect_refused(bare, bc_profile, "http.alias_required_query")


def _key_header(profile: Profile) -> str | None:
    if profile.http.auth_header.lower() == "authorization":
        return "its key goes in the Authorization header (http.auth_header)"
    return None


@pytest.mark.capability("auth")
@_applies(_key_header)
def test_the_profile_key_header_authenticates(api: ApiClient, bc_profile: Profile) -> None:
    """A request carrying the key in the profile's own header and no Authorization header
    (Azure: `api-key: $AZURE_OPENAI_API_KEY`, [azure-rest] curl examples) MUST be served."""
    client = api.without_headers("Authorization")
    inv.expect_ok(client.list_batches(limit=1), bc_profile, "batch_list")
    inv.expect_ok(client.list_files(limit=1), bc_profile, "file_list")


# -- A model catalogue -------------------------------------------------------------------------------


@pytest.mark.capability("records")
@pytest.mark.scenarios("unknown_model")
def test_line_naming_a_model_outside_the_catalogue_fails_into_the_error_file(
    finished: Callable[[str], Finished], bc_profile: Profile, bc_target: Target
) -> None:
    """A valid line naming a model outside the provider's catalogue MUST fail on its own,
    into the error file (an HTTP 4xx failure record), while the batch completes with every
    invariant holding (OVHcloud, [ovh-blog]: 'The model field must reference a model
    available in the AI Endpoints catalog'; 'If some requests in your batch failed (e.g.,
    invalid model name, ...), their details will be available in a separate error file')."""
    run = sup.view(finished("unknown_model"))
    key = "models.catalogue"
    sup.expect_final_role(
        run, bc_profile, "completed", "unknown-model", "a batch of lines naming an unknown model did not complete", key
    )
    sup.check_run(run, bc_profile, bc_target)
    dialect = sup.dialect(bc_profile)
    served = [line.get("custom_id") for line in run.output_lines]
    not_4xx = [line.get("custom_id") for line in run.error_lines if (dialect.record(line).http_status or 0) // 100 != 4]
    if served or not_4xx or len(run.error_lines) != len(run.input_custom_ids):
        raise inv.violation(
            "unknown-model",
            f"lines naming model {sc.UNKNOWN_MODEL!r} were not each refused into the error file",
            received={
                "served": served[:5],
                "failures that are not HTTP 4xx": not_4xx[:5],
                "failures": len(run.error_lines),
            },
            expected={"served": [], "failures": len(run.input_custom_ids), "each": "an HTTP 4xx failure record"},
            profile=bc_profile,
            key=key,
        )


# -- Completion windows ----------------------------------------------------------------------------


def _several_windows(profile: Profile) -> str | None:
    if len(profile.windows) < 2:
        return f"it offers one completion window ({', '.join(profile.windows)})"
    return None


def _default_window(profile: Profile) -> str | None:
    if not profile.batches.default_window:
        return "it states no default completion window (batches.default_window)"
    if "completion_window" in profile.batches.create_required:
        return "a create must name its completion window (batches.create_required)"
    return None


def _expect_window(created: Mapping[str, Any], profile: Profile, window: str, key: str, what: str) -> None:
    seconds = profile.windows[window]
    got = {"completion_window": created.get("completion_window"), "expires_at": created.get("expires_at")}
    created_at = created.get("created_at")
    want = {"completion_window": window, "expires_at": created_at + seconds if isinstance(created_at, int) else None}
    if got != want:
        raise inv.violation(
            "window",
            what,
            received={**got, "created_at": created_at},
            expected=want,
            profile=profile,
            key=key,
        )


@pytest.mark.capability("create")
@_applies(_several_windows)
def test_every_documented_window_is_accepted(
    api: ApiClient, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """Create with each completion window the profile offers MUST be accepted, the batch
    echoing the window with `expires_at` = `created_at` + its length (OVHcloud,
    [ovh-guide]: 'You can choose between 24, 48 and 72 hours')."""
    content = strategies.build_valid(
        bc_profile, strategies.batch_size(bc_profile, 1), prefix=f"windows-{bc_target.seed}"
    ).content
    source = sup.stage_ok(api, bc_profile, content)
    for window in bc_profile.windows:
        bc_budget.charge(strategies.batch_size(bc_profile, 1), f"the {window} window")
        created = sup.create_ok(api, bc_profile, sup.batch_request(bc_profile, source, window=window))
        _expect_window(created, bc_profile, window, f"windows.{window}", f"a batch created with window {window!r}")


@pytest.mark.capability("create")
@_applies(_default_window)
def test_create_without_a_window_gets_the_default(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> None:
    """A create body without `completion_window` (raw HTTP: the openai SDK always sends one)
    MUST be accepted, and the batch MUST carry the profile's default window with `expires_at`
    = `created_at` + that window, from create to its end (OVHcloud, [ovh-guide]: 'Batch
    jobs have a default completion window of 48 hours')."""
    batch = strategies.build_valid(
        bc_profile, strategies.batch_size(bc_profile, 1), prefix=f"default-window-{bc_target.seed}"
    )
    bc_budget.charge(batch.requests, "the default window")
    body = sup.batch_request(bc_profile, sup.stage_ok(api, bc_profile, batch.content))
    del body["completion_window"]
    created = sup.create_ok(api, bc_profile, body)
    default = bc_profile.batches.default_window
    _expect_window(created, bc_profile, default, "batches.default_window", "a batch created without a window")
    run = sup.run_to_end(api, waiter, bc_profile, created, batch.custom_ids)
    for state in sup.states(run):
        _expect_window(
            state, bc_profile, default, "batches.default_window", "a poll of a batch created without a window"
        )
