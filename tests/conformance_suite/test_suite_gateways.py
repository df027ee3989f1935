"""The suite's pieces for gateways and OpenAI-compatible providers: the client's header and
base-path copies, the failed batch's error file rule, the breakage of a line whose url
differs from the others, and which profiles the gateway scenarios apply to."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

import conformance.suite._scenarios as sc
from conformance import strategies
from conformance.client import ApiClient
from conformance.dialects import adapter_for
from conformance.scenarios import registered
from schemas import load_profile


class Recorder:
    """A mock transport remembering requests; answers 200 with an empty list page."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})


def test_without_headers_drops_required_and_default_headers() -> None:
    """A copy made with `without_headers` sends neither the profile's required header nor the
    HTTP client's default of that name; the original still sends both, and copies share the
    request counter."""
    profile = load_profile("truefoundry+bedrock")
    rec = Recorder()
    http = httpx.Client(
        base_url="http://t", transport=httpx.MockTransport(rec), headers={"x-tfy-provider-name": "bedrock"}
    )
    api = ApiClient(http, profile, api_key="sk-1")
    api.list_batches()
    api.without_headers("x-tfy-provider-name").list_batches()
    api.without_headers("X-TFY-Provider-Name").with_key("sk-2").list_batches()
    sent, bare, other = rec.requests
    assert sent.headers["x-tfy-provider-name"] == "bedrock"
    assert "x-tfy-provider-name" not in bare.headers and bare.headers["Authorization"] == "Bearer sk-1"
    assert "x-tfy-provider-name" not in other.headers and other.headers["Authorization"] == "Bearer sk-2"
    assert api.calls == 3


def test_with_profile_builds_routes_from_another_base_path() -> None:
    """A copy made with `with_profile` builds its paths from that profile (Azure's pre-v1
    `/openai` base path), with the same key in the same header."""
    profile = load_profile("azure-openai")
    rec = Recorder()
    api = ApiClient(httpx.Client(base_url="http://t", transport=httpx.MockTransport(rec)), profile, api_key="k")
    legacy = api.with_profile(dataclasses.replace(profile, http=dataclasses.replace(profile.http, base_path="/openai")))
    api.retrieve_batch("batch_1")
    legacy.request("retrieve_batch", path={"batch_id": "batch_1"}, query={"api-version": "2024-10-21"})
    v1, pre = rec.requests
    assert str(v1.url) == "http://t/openai/v1/batches/batch_1"
    assert str(pre.url) == "http://t/openai/batches/batch_1?api-version=2024-10-21"
    assert pre.headers["api-key"] == "k" and "Authorization" not in pre.headers


def _failed_state(error_file_id: str | None) -> dict[str, Any]:
    return {
        "id": "batch_1",
        "status": "failed",
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "output_file_id": None,
        "error_file_id": error_file_id,
        "errors": {"object": "list", "data": [{"code": "empty_file", "message": "m", "line": None}]},
    }


def test_ref_rules_of_a_failed_batch_follow_the_profile() -> None:
    """A failed batch must name an error file where the profile says it has one
    (TrueFoundry), and must not where it does not (OpenAI: nothing failed line by line)."""
    tfy = adapter_for(load_profile("truefoundry"))
    rules = {r.field: r for r in tfy.ref_rules(tfy.view(_failed_state(None)), started=False)}
    assert rules["error_file_id"].present is True and rules["error_file_id"].key == "output.failed_error_file"
    assert rules["output_file_id"].present is False
    openai = adapter_for(load_profile("openai"))
    rules = {r.field: r for r in openai.ref_rules(openai.view(_failed_state("file-1")), started=False)}
    assert rules["error_file_id"].present is False


def test_url_differs_breakage_applies_where_lines_need_not_match_the_endpoint() -> None:
    """Azure's lines need not carry the create-time endpoint but must share one url: the
    `url_differs` breakage applies there (and not to OpenAI, whose `wrong_url` covers it),
    and its line gets another allowed url and Azure's `url_mismatch` code."""
    azure = load_profile("azure-openai")
    assert "url_differs" in strategies.applicable_breakages(azure)
    assert "url_differs" not in strategies.applicable_breakages(load_profile("openai"))
    assert "wrong_url" not in strategies.applicable_breakages(azure)
    batch = strategies.build_broken(azure, "url_differs", n=3, prefix="u")
    urls = [line["url"] for line in batch.lines]
    (expected,) = batch.expected
    assert expected.line == 2 and expected.code == "url_mismatch"
    assert urls[0] == urls[2] != urls[1] and urls[1] in azure.endpoints


APPLIES = {
    "unknown_model": {"ovhcloud"},
    "short_endpoint_chat": {"azure-openai", "truefoundry+azure"},
    "short_endpoint_responses": {"azure-openai", "truefoundry+azure"},
    "below_minimum": {"truefoundry+bedrock"},
}
PROFILES = ["openai", "azure-openai", "ovhcloud", "truefoundry", "truefoundry+bedrock", "truefoundry+vertex"]
PROFILES += ["truefoundry+azure", "scaigrid"]


@pytest.mark.parametrize("name", sorted(APPLIES))
def test_gateway_scenarios_apply_where_the_profile_states_the_fact(name: str) -> None:
    """Each gateway scenario applies exactly to the profiles stating its fact (a catalogue,
    Azure's short endpoint, a minimum above three requests), with a reason elsewhere."""
    spec = registered()[name]
    applies = {p for p in PROFILES if spec.lack(load_profile(p)) is None}
    assert applies == APPLIES[name]
    assert all(spec.lack(load_profile(p)) for p in set(PROFILES) - applies)


def test_gateway_scenario_inputs() -> None:
    """The inputs are what the scenarios say: every unknown_model line names the model no
    catalogue holds; short_endpoint_responses lines are /v1/responses with body.input;
    below_minimum has three lines."""
    ovh = load_profile("ovhcloud")
    assert {line["body"]["model"] for line in sc.unknown_model_plan(ovh, 1).lines} == {sc.UNKNOWN_MODEL}
    azure = load_profile("azure-openai")
    responses = sc.short_endpoint_plan(azure, 1, "/v1/responses")
    assert all(line["url"] == "/v1/responses" and "input" in line["body"] for line in responses.lines)
    assert len(sc.below_minimum_plan(load_profile("truefoundry+bedrock"), 1).lines) == sc.BELOW_MINIMUM_LINES
