"""Failures without admin routes, and the records each profile requires.

The suite makes lines fail with bodies the endpoint itself rejects (the profile's
`[rejected_requests]`): these tests hold the scenario plans to that data, show that the
records check of those lines fails on each way a target can get them wrong (and cites the
fact it rests on, so an unverified one gives a deviation), that `response.request_id` is
required exactly where the profile says, and that the new facts are checked at load time.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from conformance import strategies
from conformance.invariants import ContractViolation, check_records, check_rejected_records
from conformance.scenarios import registered
from conformance.suite import _scenarios as sc
from schemas import Profile, ProfileError, load_profile
from schemas._profile import RejectedRequest

OPENAI = load_profile("openai")
CHAT = OPENAI.rejected_requests["/v1/chat/completions"]
SEED = 7


def _ok(cid: str, **response: Any) -> dict[str, Any]:
    body = {"status_code": 200, "request_id": f"req_{cid}", "body": {"object": "chat.completion"}, **response}
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": body, "error": None}


def _rejected(cid: str, rule: RejectedRequest = CHAT, **error: Any) -> dict[str, Any]:
    envelope = {"message": rule.message, "type": rule.type, "param": rule.param, "code": rule.code, **error}
    response = {"status_code": rule.status, "request_id": f"req_{cid}", "body": {"error": envelope}}
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": response, "error": None}


def _violation(call: Any, *args: Any) -> ContractViolation:
    with pytest.raises(ContractViolation) as info:
        call(*args)
    return info.value


# -- The scenarios' plans ----------------------------------------------------------------------


def test_mixed_plan_interleaves_rejected_bodies_on_lines_two_and_five() -> None:
    """mixed_results keeps its layout (failures on lines 2 and 5, ids `{stem}-fail-{i}`), and
    its failing lines carry the body the profile says the endpoint rejects."""
    plan = sc.mixed_plan(OPENAI, SEED)
    stem = sc.stem("mixed_results", SEED)
    assert plan.batch.custom_ids == (
        f"{stem}-ok-0",
        f"{stem}-fail-0",
        f"{stem}-ok-1",
        f"{stem}-ok-2",
        f"{stem}-fail-1",
        f"{stem}-ok-3",
    )
    assert plan.failing == (f"{stem}-fail-0", f"{stem}-fail-1") and plan.rejection == CHAT
    by_id = {line["custom_id"]: line for line in plan.batch.lines}
    for cid in plan.failing:
        assert by_id[cid]["body"] == {"model": OPENAI.models.default, "messages": []}
        assert by_id[cid]["url"] == "/v1/chat/completions"
    assert all(by_id[cid]["body"]["messages"] for cid in plan.batch.custom_ids if cid not in plan.failing)
    assert strategies.encode_lines(plan.batch.lines) == plan.batch.content


def test_all_fail_plan_rejects_every_line_and_pads_to_the_minimum() -> None:
    """all_fail: every line a rejected body, as many as the profile's minimum asks for."""
    for name in ("openai", "truefoundry+bedrock", "scaigrid"):
        profile = load_profile(name)
        batch = sc.all_fail_plan(profile, SEED)
        rule = sc.rejection(profile)
        assert rule is not None
        assert len(batch.lines) == strategies.batch_size(profile, 2)
        assert all(line["body"] == rule.body(profile.models.default) for line in batch.lines), name
        assert all(line["url"] == rule.endpoint for line in batch.lines)


def test_every_profile_names_a_rejected_body_for_its_batches() -> None:
    """Every bundled profile and variant says what the endpoint of the suite's batches
    rejects, so mixed_results and all_fail apply everywhere, controls or not."""
    for name in ("openai", "azure-openai", "ovhcloud", "scaleway", "scaigrid", "truefoundry"):
        profile = load_profile(name)
        for variant in (None, *(v.name for v in profile.variants)):
            loaded = profile if variant is None else profile.with_variant(variant)
            assert sc.rejection(loaded) is not None, (name, variant)


def test_scenarios_do_not_apply_without_a_rejected_body() -> None:
    """A profile naming no rejected body for its endpoint gets a reason, not a scenario
    that cannot make its lines fail."""
    bare = dataclasses.replace(OPENAI, rejected_requests={})
    specs = registered()
    for name in ("mixed_results", "all_fail"):
        reason = specs[name].lack(bare)
        assert reason is not None and "rejected_requests./v1/chat/completions" in reason, name
        assert specs[name].lack(OPENAI) is None


def test_rejected_line_follows_the_profile_rule() -> None:
    """With a profile, rejected_line sends the rule's field empty; without one, the
    historical choice (messages for chat, input for embeddings)."""
    rule = RejectedRequest("/v1/chat/completions", "prompt_messages", 400, "t", None, None, "m")
    profile = dataclasses.replace(OPENAI, rejected_requests={rule.endpoint: rule})
    line = sc.rejected_line("/v1/chat/completions", "m", "x", profile)
    assert line["body"] == {"model": "m", "prompt_messages": []}
    assert sc.rejected_line("/v1/chat/completions", "m", "x")["body"] == {"model": "m", "messages": []}
    assert sc.rejected_line("/v1/embeddings", "m", "x")["body"] == {"model": "m", "input": []}


# -- The records of rejected lines -------------------------------------------------------------


def test_rejected_records_as_the_profile_says_pass() -> None:
    check_rejected_records([_ok("a"), _ok("c")], [_rejected("b")], ["b"], CHAT, OPENAI)


REJECTED_CASES: dict[str, tuple[Any, str, str | None]] = {
    # (output lines, error lines) -> the check and the fact it cites (None: the shared contract)
    "accepted": (([_ok("a"), _ok("b")], []), "records-rejected-accepted", "rejected_requests./v1/chat/completions"),
    "in_output_file": (([_ok("a"), _rejected("b")], []), "records-placement", None),
    "good_line_in_error_file": (([], [_rejected("b"), _rejected("a")]), "records-placement", None),
    "other_status": (
        ([_ok("a")], [{**_rejected("b"), "response": {**_rejected("b")["response"], "status_code": 422}}]),
        "records-http-failure",
        "rejected_requests./v1/chat/completions.status",
    ),
    "not_http": (
        ([_ok("a")], [{"id": "x", "custom_id": "b", "response": None, "error": {"code": "c", "message": "m"}}]),
        "records-http-failure",
        "rejected_requests./v1/chat/completions.status",
    ),
    "other_param": (
        ([_ok("a")], [_rejected("b", param=None)]),
        "records-rejected-param",
        "rejected_requests./v1/chat/completions.param",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED_CASES))
def test_each_wrong_record_of_a_rejected_line_is_caught(case: str) -> None:
    """Each way a target can get a rejected line wrong fails the check, citing the verified
    fact (a failure, not a deviation) or the shared contract."""
    (output, errors), check, key = REJECTED_CASES[case]
    error = _violation(check_rejected_records, output, errors, ["b"], CHAT, OPENAI)
    assert error.check == check, str(error)
    assert error.inferred is None, "the openai chat rule is verified: a failure, not a deviation"
    if key is not None:
        assert key in str(error)
    else:
        assert "openai-batch-spec.md §3.2" in str(error)


def test_an_unverified_rule_gives_a_deviation() -> None:
    """Against a rule marked unverified (OpenAI's embeddings answer, inferred), a target
    answering another param deviates: the violation names the inferred fact."""
    rule = OPENAI.rejected_requests["/v1/embeddings"]
    error = _violation(check_rejected_records, [], [_rejected("b", rule, param="input")], ["b"], rule, OPENAI)
    assert error.check == "records-rejected-param"
    assert error.inferred is not None and "rejected_requests./v1/embeddings.param" in error.inferred


def test_scaigrid_rejected_records_are_error_records_of_the_status() -> None:
    """ScaiGrid: a rejected line is an "error" record with code http_<status>; another code
    is caught."""
    profile = load_profile("scaigrid")
    rule = profile.rejected_requests["/v1/inference/chat"]

    def record(code: str) -> dict[str, Any]:
        return {"custom_id": "b", "status": "error", "error": {"code": code, "message": rule.message}}

    ok = {"custom_id": "a", "status": "ok", "response": {"object": "chat.completion"}}
    check_rejected_records([ok], [record("http_400")], ["b"], rule, profile)
    error = _violation(check_rejected_records, [ok], [record("http_500")], ["b"], rule, profile)
    assert error.check == "records-http-failure"


# -- response.request_id, per profile ----------------------------------------------------------


def _without_request_id(line: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(line)
    del out["response"]["request_id"]
    return out


@pytest.mark.parametrize("place", ["output", "error"])
def test_openai_requires_a_request_id_on_every_record_with_a_response(place: str) -> None:
    """openai: a success or an HTTP failure without response.request_id fails the records
    check, citing the verified fact output.request_id_required."""
    output, errors = [_ok("a")], [_rejected("b")]
    if place == "output":
        output = [_without_request_id(output[0])]
    else:
        errors = [_without_request_id(errors[0])]
    error = _violation(check_records, output, errors, OPENAI)
    assert error.check == "records-request-id" and error.inferred is None
    assert "output.request_id_required" in str(error) and "'req_abc123'" in str(error)
    empty = copy.deepcopy(output[0])
    empty["response"]["request_id"] = ""
    assert _violation(check_records, [empty], [], OPENAI).check == "records-request-id"


def test_records_without_a_response_need_no_request_id() -> None:
    """A non-HTTP failure (`response` null, e.g. batch_expired) has no request to name."""
    expired = {"id": "x", "custom_id": "b", "response": None, "error": {"code": "batch_expired", "message": "m"}}
    check_records([_ok("a")], [expired], OPENAI)


def test_ovhcloud_records_may_omit_the_request_id() -> None:
    """OVHcloud's example output line has no request_id: its profile does not require it."""
    profile = load_profile("ovhcloud")
    assert not profile.output.request_id_required
    check_records([_without_request_id(_ok("a"))], [_without_request_id(_rejected("b"))], profile)


def test_an_unverified_request_id_requirement_gives_a_deviation() -> None:
    """Azure's requirement is OpenAI's assumed: a missing request_id there is a deviation."""
    profile = load_profile("azure-openai")
    error = _violation(check_records, [_without_request_id(_ok("a"))], [], profile)
    assert error.check == "records-request-id"
    assert error.inferred is not None and error.inferred.startswith("output.request_id_required")


# -- The facts, checked at load time -----------------------------------------------------------


BROKEN: dict[str, tuple[str, str, str, str]] = {
    "status_not_an_error": (
        "openai",
        'empty_field = "messages"\nstatus = 400',
        'empty_field = "messages"\nstatus = 200',
        "rejected_requests./v1/chat/completions.status",
    ),
    "no_field": (
        "openai",
        'empty_field = "messages"',
        'empty_field = ""',
        "rejected_requests./v1/chat/completions.empty_field",
    ),
    "not_a_path": (
        "openai",
        '[rejected_requests."/v1/chat/completions"]',
        '[rejected_requests."chat"]',
        "rejected_requests.chat",
    ),
    "typed_dialect_needs_a_type": (
        "openai",
        'status = 400\ntype = "invalid_request_error"\ncode = ""\nparam = "messages"',
        'status = 400\ncode = ""\nparam = "messages"',
        "rejected_requests./v1/chat/completions.type",
    ),
    "scaigrid_has_no_type": (
        "scaigrid",
        'empty_field = "messages"\nstatus = 400',
        'empty_field = "messages"\nstatus = 400\ntype = "invalid_request_error"',
        "rejected_requests./v1/inference/chat.type",
    ),
    "request_id_needs_openai_lines": (
        "scaigrid",
        "request_id_required = { value = false",
        "request_id_required = { value = true",
        "output.request_id_required",
    ),
    "extension_to_require": (
        "openai",
        'batch_file_extension = { value = ".jsonl"',
        'require_jsonl_extension = true\nbatch_file_extension = { value = ""',
        "files.require_jsonl_extension",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_fact_is_refused_naming_its_key(tmp_path: Path, case: str) -> None:
    """A rejected body that is no rejection, a type the dialect's envelope lacks, a
    request_id required of records that have none: load-time errors naming the key."""
    name, old, new, key = BROKEN[case]
    text = (Path(OPENAI.path).parent / f"{name}.toml").read_text(encoding="utf-8")
    if case == "extension_to_require":
        # The fact is written once in the file: drop it before stating it again.
        old_fact = next(line for line in text.splitlines() if line.startswith("require_jsonl_extension"))
        text = text.replace(old_fact + "\n", "")
    assert old in text, f"{old!r} not in {name}.toml"
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert key in str(info.value)


def test_the_new_facts_carry_their_sources() -> None:
    """Each new fact has a source; the openai chat rejection and request_id requirement are
    verified, the inferred ones are not."""
    profile: Profile = OPENAI
    assert profile.fact("rejected_requests./v1/chat/completions.param").verified
    assert "issue 11" in profile.fact("rejected_requests./v1/chat/completions.status").source
    assert not profile.fact("rejected_requests./v1/embeddings.param").verified
    assert profile.fact("output.request_id_required").verified
    assert not profile.fact("files.require_jsonl_extension").verified
    assert load_profile("ovhcloud").fact("output.request_id_required").verified
    assert not load_profile("azure-openai").fact("rejected_requests./v1/chat/completions.status").verified
