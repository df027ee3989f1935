"""The suite's scenarios: the batches submitted up front and polled together.

Several tests read each one (`@pytest.mark.scenarios(name)` + `finished(name)`), so a run
submits few batches. Every builder is deterministic given the profile and the seed, so a
test can rebuild what was submitted (`mixed_plan`, `broken_plan`) instead of relying on
state kept by the builder, which a run resumed from a state file would not have.

Per-line HTTP failures need no admin route: `mixed_results`, `all_fail` and
`mixed_endpoints` make lines fail with requests the endpoint itself rejects when it runs
them (the profile's `[rejected_requests]`, e.g. a chat whose `messages` is empty), so the
error-file, records and counts checks run against any target, a real provider included.
The webhook scenarios subscribe their batches to the run's webhook receiver
(`ScenarioContext.webhook_url`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import Profile
from schemas._profile import RejectedRequest

from .. import strategies
from ..client import ApiClient, ApiResponse
from ..dialects import Input, adapter_for
from ..scenarios import ScenarioContext, ScenarioError, Submitted, scenario

__all__ = [
    "CANCEL_RESPONSES",
    "MIXED_ENDPOINT_LINES",
    "MIXED_FAILING",
    "MIXED_SUCCEEDING",
    "WEBHOOK_SCENARIOS",
    "InconsistentPlan",
    "MixedEndpointsPlan",
    "MixedPlan",
    "all_fail_plan",
    "broken_line_plan",
    "broken_line_scenario",
    "broken_plan",
    "inconsistent_plan",
    "missing_input",
    "mixed_endpoints_plan",
    "mixed_plan",
    "rejected_line",
    "rejection",
    "seen_by_builder",
    "stem",
]

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


def rejected_line(endpoint: str, model: str, custom_id: str, profile: Profile | None = None) -> dict[str, Any]:
    """A line valid as a request line whose body its endpoint rejects when it runs: with
    `profile`, the body its `[rejected_requests]` states for `endpoint`; else (or where it
    states none) a chat with no messages, an embeddings request with no input. It fails
    without any admin route."""
    rule = profile.rejected_requests.get(endpoint) if profile is not None else None
    if rule is not None:
        body = rule.body(model)
    else:
        field = "input" if endpoint.endswith(("/embeddings", "/embed", "/moderations", "/responses")) else "messages"
        body = {"model": model, field: []}
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def rejection(profile: Profile) -> RejectedRequest | None:
    """What the profile says the endpoint of the suite's batches rejects (None: nothing)."""
    return profile.rejected_requests.get(strategies.default_endpoint(profile))


def _rejects_a_body(profile: Profile) -> str | None:
    if rejection(profile) is None:
        endpoint = strategies.default_endpoint(profile)
        return f"its profile names no body {endpoint} rejects (rejected_requests.{endpoint})"
    return None


def _rejected_batch(profile: Profile, n: int, prefix: str) -> strategies.GeneratedBatch:
    """`n` lines `{prefix}-{i}`, each a body the default endpoint rejects."""
    endpoint, model = strategies.default_endpoint(profile), profile.models.default
    lines = [rejected_line(endpoint, model, f"{prefix}-{i}", profile) for i in range(n)]
    return strategies.GeneratedBatch(
        endpoint, model, tuple(lines), strategies.encode_lines(lines), tuple(str(line["custom_id"]) for line in lines)
    )


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
    """What `mixed_results` submits: the batch, the custom_ids whose body the endpoint
    rejects, and the profile's rule for that rejection."""

    batch: strategies.GeneratedBatch
    failing: tuple[str, ...]
    rejection: RejectedRequest


def mixed_plan(profile: Profile, seed: int) -> MixedPlan:
    """The `mixed_results` input: successes and rejected lines interleaved (lines 2 and 5
    are bodies the endpoint rejects, custom_ids `{stem}-fail-{i}`)."""
    rule = rejection(profile)
    assert rule is not None, "mixed_results does not apply to this profile"
    prefix = stem("mixed_results", seed)
    ok = strategies.build_valid(
        profile, strategies.batch_size(profile, MIXED_SUCCEEDING + MIXED_FAILING) - MIXED_FAILING, prefix=f"{prefix}-ok"
    )
    bad = _rejected_batch(profile, MIXED_FAILING, f"{prefix}-fail")
    lines = [ok.lines[0], bad.lines[0], ok.lines[1], ok.lines[2], bad.lines[1], *ok.lines[3:]]
    ids = tuple(str(line["custom_id"]) for line in lines)
    batch = strategies.GeneratedBatch(ok.endpoint, ok.model, tuple(lines), strategies.encode_lines(lines), ids)
    return MixedPlan(batch, bad.custom_ids, rule)


@scenario("mixed_results", capability="records", requests=MIXED_SUCCEEDING + MIXED_FAILING, applies=_rejects_a_body)
def mixed_results(ctx: ScenarioContext) -> Submitted:
    """Six lines, two of which (lines 2 and 5) carry a body the endpoint rejects when it runs
    them (the profile's rejected_requests): they fail on any target, with or without admin
    routes."""
    return _submit(ctx, mixed_plan(ctx.profile, ctx.seed).batch)


def all_fail_plan(profile: Profile, seed: int) -> strategies.GeneratedBatch:
    """The `all_fail` input: lines `{stem}-{i}` whose every body the endpoint rejects."""
    return _rejected_batch(profile, strategies.batch_size(profile, 2), stem("all_fail", seed))


@scenario("all_fail", capability="records", requests=2, applies=_rejects_a_body)
def all_fail(ctx: ScenarioContext) -> Submitted:
    """Two lines that both fail: each a body the endpoint rejects when it runs it (the
    profile's rejected_requests), so no admin route is needed."""
    return _submit(ctx, all_fail_plan(ctx.profile, ctx.seed))


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


def broken_line_scenario(breakage: str) -> str:
    """The name of the scenario that submits `breakage` alone."""
    return f"broken_line_{breakage}"


def broken_line_plan(profile: Profile, seed: int, breakage: str) -> strategies.GeneratedBatch:
    """The input of `broken_line_<breakage>`: a small valid file with line 2 broken."""
    name = broken_line_scenario(breakage)
    return strategies.build_broken(
        profile, breakage, n=strategies.batch_size(profile, 3), prefix=stem(name, seed).replace("_", "-")
    )


def _register_broken_line(breakage: str) -> None:
    # One small batch per breakage, so that a target refusing (or choking on) one breakage
    # loses that check only, not every validation check sharing the combined file.
    def forbids(profile: Profile) -> str | None:
        if breakage in strategies.applicable_breakages(profile):
            return None
        return f"it does not forbid {breakage} (validation.{strategies.BREAKAGES[breakage].validation} / line_rules)"

    def build(ctx: ScenarioContext) -> Submitted:
        return _submit(ctx, broken_line_plan(ctx.profile, ctx.seed, breakage))

    build.__doc__ = f"A small valid file whose line 2 is broken by {breakage!r}: validation must name it."
    scenario(broken_line_scenario(breakage), capability="validation", requests=3, applies=forbids)(build)


for _breakage in strategies.BREAKAGES:
    _register_broken_line(_breakage)


def missing_file_id(profile: Profile, seed: int) -> str:
    """An input file id nobody uploaded."""
    return f"{profile.ids.file}batchconf-missing-{seed}"


def missing_input(profile: Profile, seed: int, api: ApiClient | None = None) -> Input:
    """An input reference naming nothing, in the profile's dialect (a file id nobody uploaded,
    a stored-file URL nobody stored, an object URL in the run's bucket nobody wrote)."""
    return adapter_for(profile).missing_input(seed, api)


def _missing_file_fails_the_batch(profile: Profile) -> str | None:
    if profile.batches.missing_input_file != "fail_batch":
        return f"batches.missing_input_file is {profile.batches.missing_input_file!r} (refused at create)"
    return None


@scenario("missing_input_file", capability="validation", requests=1, applies=_missing_file_fails_the_batch)
def missing_input_file(ctx: ScenarioContext) -> Submitted:
    """A batch naming an input file that does not exist (profiles where that fails the batch
    rather than the create request)."""
    created = ctx.create(missing_input(ctx.profile, ctx.seed, ctx.api))
    return Submitted(batch_id=str(created["id"]), input_custom_ids=[], created=created)


# -- One url and one model per file ---------------------------------------------------------


def _other_endpoint(profile: Profile) -> str | None:
    first = strategies.default_endpoint(profile)
    return next((e for e in profile.endpoints if e != first and not e.endswith("/transcriptions")), None)


def _one_url_and_model(profile: Profile) -> str | None:
    rules = profile.line_rules
    if rules.mixed_endpoints or not rules.one_model_per_file:
        return "its batches may mix endpoints or models (line_rules.mixed_endpoints, one_model_per_file)"
    if not {"mixed_models", "invalid_url"} <= profile.validation.keys():
        return "its validation catalogue has no mixed_models and invalid_url entries"
    if _other_endpoint(profile) is None:
        return f"it allows one endpoint only (endpoints.allowed = {list(profile.endpoints)})"
    return None


@dataclass(frozen=True)
class InconsistentPlan:
    """What `inconsistent_lines` submits: the lines, the line naming another model and the
    line naming another (allowed) endpoint, 1-based."""

    lines: tuple[dict[str, Any], ...]
    other_model_line: int
    other_url_line: int

    @property
    def custom_ids(self) -> tuple[str, ...]:
        """Every line's custom_id, in file order."""
        return tuple(str(line["custom_id"]) for line in self.lines)


def inconsistent_plan(profile: Profile, seed: int) -> InconsistentPlan:
    """Four lines, each valid on its own: the first sets the url and model; line 2 names the
    profile's other model, line 3 another allowed endpoint (with a body valid there)."""
    first = strategies.default_endpoint(profile)
    other = _other_endpoint(profile)
    assert other is not None, "inconsistent_lines does not apply to this profile"
    prefix = stem("inconsistent_lines", seed)
    model = profile.models.default

    def line(i: int, url: str, body_model: str) -> dict[str, Any]:
        body = strategies.body_for(url, body_model, f"line {i} of {prefix}")
        return {"custom_id": f"{prefix}-{i}", "method": "POST", "url": url, "body": body}

    lines = (line(0, first, model), line(1, first, profile.models.other), line(2, other, model), line(3, first, model))
    return InconsistentPlan(lines, other_model_line=2, other_url_line=3)


@scenario("inconsistent_lines", capability="validation", requests=4, applies=_one_url_and_model)
def inconsistent_lines(ctx: ScenarioContext) -> Submitted:
    """Lines that are valid each on its own but name another model (line 2) and another
    allowed endpoint (line 3) than the first: profiles whose batches take one url and one
    model."""
    plan = inconsistent_plan(ctx.profile, ctx.seed)
    created = ctx.submit(plan.lines)
    return Submitted(batch_id=str(created["id"]), input_custom_ids=list(plan.custom_ids), created=created)


# -- Mixed endpoints -------------------------------------------------------------------------


def _chat_and_embed(profile: Profile) -> tuple[str, str] | None:
    chat = next((e for e in profile.endpoints if e.endswith(("/chat", "/chat/completions"))), None)
    embed = next((e for e in profile.endpoints if e.endswith(("/embed", "/embeddings"))), None)
    return (chat, embed) if chat and embed else None


def _mixes_endpoints(profile: Profile) -> str | None:
    if not profile.line_rules.mixed_endpoints or profile.line_rules.one_model_per_file:
        return "its batches may not mix endpoints and models (line_rules.mixed_endpoints, one_model_per_file)"
    if _chat_and_embed(profile) is None:
        return f"it allows no chat and embeddings endpoints together (endpoints.allowed = {list(profile.endpoints)})"
    return None


@dataclass(frozen=True)
class MixedEndpointsPlan:
    """What `mixed_endpoints` submits: the lines, and which custom_ids the endpoint rejects."""

    lines: tuple[dict[str, Any], ...]
    rejected: tuple[str, ...]

    @property
    def custom_ids(self) -> tuple[str, ...]:
        """Every line's custom_id, in file order."""
        return tuple(str(line["custom_id"]) for line in self.lines)

    def line(self, custom_id: str) -> dict[str, Any]:
        """The input line of `custom_id`."""
        return next(line for line in self.lines if line["custom_id"] == custom_id)


#: Lines of `mixed_endpoints`: two chats and two embeddings that succeed, one of each rejected.
MIXED_ENDPOINT_LINES = 6


def mixed_endpoints_plan(profile: Profile, seed: int) -> MixedEndpointsPlan:
    """Chat lines (the default model) and embeddings lines (the other model) interleaved in
    one file, plus one chat with no messages and one embeddings line with no input: requests
    the endpoint itself rejects (HTTP 400), so they fail without any admin route."""
    pair = _chat_and_embed(profile)
    assert pair is not None, "mixed_endpoints does not apply to this profile"
    chat, embed = pair
    prefix = stem("mixed_endpoints", seed)
    chat_model, embed_model = profile.models.default, profile.models.other

    def line(cid: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": f"{prefix}-{cid}", "method": "POST", "url": url, "body": body}

    lines = (
        line("chat-0", chat, strategies.body_for(chat, chat_model, "first chat line", {"max_tokens": 16})),
        line("embed-0", embed, {"model": embed_model, "input": ["first text", "second text"]}),
        line("chat-rejected", chat, {"model": chat_model, "messages": []}),
        line("chat-1", chat, strategies.body_for(chat, chat_model, "second chat line")),
        line("embed-rejected", embed, {"model": embed_model, "input": []}),
        line("embed-1", embed, {"model": embed_model, "input": "one text"}),
    )
    return MixedEndpointsPlan(lines, (f"{prefix}-chat-rejected", f"{prefix}-embed-rejected"))


@scenario("mixed_endpoints", capability="records", requests=MIXED_ENDPOINT_LINES, applies=_mixes_endpoints)
def mixed_endpoints(ctx: ScenarioContext) -> Submitted:
    """Chat and embeddings lines of two models in one batch, two of them rejected by their
    endpoint (no messages, no input): the profiles whose batches may mix endpoints."""
    plan = mixed_endpoints_plan(ctx.profile, ctx.seed)
    created = ctx.submit(plan.lines)
    return Submitted(batch_id=str(created["id"]), input_custom_ids=list(plan.custom_ids), created=created)


# -- Webhooks --------------------------------------------------------------------------------


def _subscribes(profile: Profile) -> str | None:
    rules = profile.webhooks
    if rules is None or not rules.subscribe_field:
        return "a batch cannot subscribe a webhook URL at create (webhooks.subscribe_field is empty)"
    return None


def _subscribes_and_cancels(profile: Profile) -> str | None:
    return _subscribes(profile) or (None if profile.has("cancel") else "it cannot cancel (capabilities.cancel)")


def _subscribes_and_fails(profile: Profile) -> str | None:
    if not strategies.applicable_breakages(profile):
        return "none of the suite's line breakages fails a batch of it"
    return _subscribes(profile)


def _webhook_url(ctx: ScenarioContext) -> str:
    if ctx.webhook_url is None:
        raise ScenarioError(f"{ctx.name} needs the run's webhook receiver, and none runs")
    return ctx.webhook_url


#: The webhook scenarios and the terminal role each batch ends in.
WEBHOOK_SCENARIOS: dict[str, str] = {
    "webhook_completed": "completed",
    "webhook_failed": "failed",
    "webhook_cancelled": "cancelled",
}


@scenario("webhook_completed", capability="webhooks", requests=2, applies=_subscribes, resumable=False)
def webhook_completed(ctx: ScenarioContext) -> Submitted:
    """Two valid lines, subscribed to the run's webhook receiver: the batch completes."""
    batch = strategies.build_valid(ctx.profile, strategies.batch_size(ctx.profile, 2), prefix=stem(ctx.name, ctx.seed))
    return _submit(ctx, batch, webhook_url=_webhook_url(ctx))


@scenario("webhook_failed", capability="webhooks", requests=3, applies=_subscribes_and_fails, resumable=False)
def webhook_failed(ctx: ScenarioContext) -> Submitted:
    """Three lines, one broken, subscribed to the run's webhook receiver: the batch fails
    validation."""
    breakage = strategies.applicable_breakages(ctx.profile)[0]
    batch = strategies.build_broken(
        ctx.profile, breakage, n=strategies.batch_size(ctx.profile, 3), prefix=stem(ctx.name, ctx.seed)
    )
    return _submit(ctx, batch, webhook_url=_webhook_url(ctx))


@scenario("webhook_cancelled", capability="webhooks", requests=2, applies=_subscribes_and_cancels, resumable=False)
def webhook_cancelled(ctx: ScenarioContext) -> Submitted:
    """Two valid lines, subscribed to the run's webhook receiver, cancelled right after create."""
    batch = strategies.build_valid(ctx.profile, strategies.batch_size(ctx.profile, 2), prefix=stem(ctx.name, ctx.seed))
    submitted = _submit(ctx, batch, webhook_url=_webhook_url(ctx))
    response = ctx.api.cancel_batch(submitted.batch_id)
    if response.status != 200:
        raise ScenarioError(f"{ctx.name}: the cancel right after create was refused: {response.describe()}")
    return submitted


# -- Gateways and OpenAI-compatible providers ------------------------------------------------

__all__ += [
    "BELOW_MINIMUM_LINES",
    "SHORT_CHAT_ENDPOINT",
    "UNKNOWN_MODEL",
    "below_minimum_plan",
    "short_endpoint_plan",
    "unknown_model_plan",
]

#: A model name no provider's catalogue holds.
UNKNOWN_MODEL = "batchconf-no-such-model"
#: Lines of `unknown_model`.
UNKNOWN_MODEL_LINES = 3


def _has_catalogue(profile: Profile) -> str | None:
    if not profile.models.catalogue:
        return "it serves any model (models.catalogue is empty)"
    return None


def unknown_model_plan(profile: Profile, seed: int) -> strategies.GeneratedBatch:
    """The `unknown_model` input: valid lines that all name a model outside the catalogue
    (all of them: one model per file)."""
    return strategies.build_valid(
        profile,
        strategies.batch_size(profile, UNKNOWN_MODEL_LINES),
        prefix=stem("unknown_model", seed),
        model=UNKNOWN_MODEL,
    )


@scenario("unknown_model", capability="records", requests=UNKNOWN_MODEL_LINES, applies=_has_catalogue)
def unknown_model(ctx: ScenarioContext) -> Submitted:
    """Valid lines naming a model outside the profile's catalogue (models.catalogue): each
    request fails on its own, into the error file."""
    return _submit(ctx, unknown_model_plan(ctx.profile, ctx.seed))


#: The create-time endpoint form Azure documents (lines keep their /v1/... urls).
SHORT_CHAT_ENDPOINT = "/chat/completions"
#: Lines of each `short_endpoint_*` scenario.
SHORT_ENDPOINT_LINES = 3


def _takes_short_endpoint(url: str) -> Callable[[Profile], str | None]:
    def applies(profile: Profile) -> str | None:
        if SHORT_CHAT_ENDPOINT not in profile.endpoints or profile.line_rules.url_must_match_endpoint:
            return (
                f"it does not create batches with endpoint {SHORT_CHAT_ENDPOINT!r} over lines of another url "
                "(endpoints.allowed, line_rules.url_must_match_endpoint)"
            )
        if url not in profile.endpoints:
            return f"its lines cannot target {url} (endpoints.allowed = {list(profile.endpoints)})"
        return None

    return applies


def short_endpoint_plan(profile: Profile, seed: int, url: str) -> strategies.GeneratedBatch:
    """Valid lines whose `url` is `url` (`/v1/chat/completions`: messages; `/v1/responses`:
    `body.input`), for a batch created with endpoint `/chat/completions`."""
    name = "short_endpoint_responses" if url.endswith("/responses") else "short_endpoint_chat"
    return strategies.build_valid(
        profile, strategies.batch_size(profile, SHORT_ENDPOINT_LINES), prefix=stem(name, seed), endpoint=url
    )


@scenario(
    "short_endpoint_chat",
    capability="create",
    requests=SHORT_ENDPOINT_LINES,
    applies=_takes_short_endpoint("/v1/chat/completions"),
)
def short_endpoint_chat(ctx: ScenarioContext) -> Submitted:
    """Chat lines (url `/v1/chat/completions`) in a batch created with endpoint
    `/chat/completions`, the form Azure's API uses ([tfy] Azure prerequisites, [azure-rest])."""
    batch = short_endpoint_plan(ctx.profile, ctx.seed, "/v1/chat/completions")
    created = ctx.submit(batch.lines, endpoint=SHORT_CHAT_ENDPOINT)
    return Submitted(batch_id=str(created["id"]), input_custom_ids=list(batch.custom_ids), created=created)


@scenario(
    "short_endpoint_responses",
    capability="create",
    requests=SHORT_ENDPOINT_LINES,
    applies=_takes_short_endpoint("/v1/responses"),
)
def short_endpoint_responses(ctx: ScenarioContext) -> Submitted:
    """Responses lines (url `/v1/responses`, `body.input`) in a batch created with endpoint
    `/chat/completions` ([tfy] Azure prerequisites: 'use url: "/v1/responses" and body.input in
    each JSONL line'; Azure's create-time form also for these lines, peers.md A.1)."""
    batch = short_endpoint_plan(ctx.profile, ctx.seed, "/v1/responses")
    created = ctx.submit(batch.lines, endpoint=SHORT_CHAT_ENDPOINT)
    return Submitted(batch_id=str(created["id"]), input_custom_ids=list(batch.custom_ids), created=created)


#: Lines of `below_minimum`: a small batch, as a first try with a provider would send.
BELOW_MINIMUM_LINES = 3


def _has_minimum(profile: Profile) -> str | None:
    if profile.limits.min_requests <= BELOW_MINIMUM_LINES:
        return f"its minimum is {profile.limits.min_requests} requests (limits.min_requests)"
    if profile.limits.enforced_at.get("min_requests", "validation") != "validation":
        return "it refuses a small batch before validation (limits.enforced_at.min_requests)"
    return None


def below_minimum_plan(profile: Profile, seed: int) -> strategies.GeneratedBatch:
    """The `below_minimum` input: three valid lines."""
    return strategies.build_valid(profile, BELOW_MINIMUM_LINES, prefix=stem("below_minimum", seed))


@scenario("below_minimum", capability="validation", requests=BELOW_MINIMUM_LINES, applies=_has_minimum)
def below_minimum(ctx: ScenarioContext) -> Submitted:
    """Three valid lines where the profile's minimum is larger (Bedrock behind a gateway: 100
    records): validation must fail the batch."""
    return _submit(ctx, below_minimum_plan(ctx.profile, ctx.seed))
