"""Provider profiles: every bundled profile loads, is consistent and sources every fact.

Three kinds of checks. Each bundled profile (and each of its variants) loads and its graph,
roles, windows, limits and catalogues hold together. Every fact carries a non-empty source,
and no leaf of a profile file escapes the loader's provenance record. Broken profiles (each
derived from openai.toml with one edit) are refused with a message naming the file and the
key. A few provider facts that the sources disagree on are pinned.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from schemas import ProfileError, UnknownProfileError, load_profile, profile_names
from schemas._profile import Profile

PROFILES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "profiles"
OPENAI_TEXT = (PROFILES_DIR / "openai.toml").read_text(encoding="utf-8")
EXPECTED = ("openai", "azure-openai", "ovhcloud", "scaleway", "scaigrid", "truefoundry")
PROVENANCE_KEYS = frozenset({"source", "verified", "note"})
# Root keys that hold arrays of tables, checked item by item.
STRUCTURAL = frozenset({"variants", "deviations"})
NAMES = list(profile_names())
VARIANTS = [f"{name}+{v.name}" for name in NAMES for v in load_profile(name).variants]


def _leaves(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every fact in a raw TOML table, as the loader names them."""
    for key, value in table.items():
        if key in PROVENANCE_KEYS:
            continue
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and "value" not in value:
            yield from _leaves(value, dotted)
        else:
            yield dotted, value


def _raw(profile: Profile) -> dict[str, Any]:
    return tomllib.loads(profile.path.read_text(encoding="utf-8"))


def _reachable(profile: Profile) -> set[str]:
    life = profile.lifecycle
    seen = {life.initial}
    todo = deque([life.initial])
    while todo:
        for dst in life.transitions[todo.popleft()]:
            if dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def _template_fields(*templates: str | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for template in templates:
        for _, name, _, _ in string.Formatter().parse(template or ""):
            if name:
                fields[name] = f"<{name}>"
    return fields


# --- every bundled profile -------------------------------------------------------------------


def test_bundled_profiles_are_listed() -> None:
    assert set(EXPECTED) <= set(NAMES), f"profile_names() = {NAMES}, expected at least {EXPECTED}"


@pytest.mark.parametrize("name", NAMES)
def test_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.variant is None
    assert profile.path == PROFILES_DIR / f"{name}.toml"


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_lifecycle_is_a_consistent_graph(name: str) -> None:
    profile = load_profile(name)
    life = profile.lifecycle
    assert set(life.transitions) == set(life.statuses)
    assert _reachable(profile) == set(life.statuses) - life.never_entered, (
        "every status must be reachable from the initial one, unless the profile says it is never entered"
    )
    assert not set(life.roles.values()) & life.never_entered, "no role maps to a status never entered"
    for status in life.statuses:
        if status in life.terminal:
            assert life.transitions[status] == (), f"terminal {status!r} has outgoing edges"
        else:
            assert life.transitions[status], f"non-terminal {status!r} has no way out"
    assert life.status("validating") == life.initial
    assert set(life.roles.values()) <= set(life.statuses)
    assert life.status("completed") in life.terminal
    assert set(life.timestamps) <= set(life.statuses)


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_cancel_and_expiry_agree_with_the_graph(name: str) -> None:
    profile = load_profile(name)
    life = profile.lifecycle
    if profile.has("cancel"):
        target = life.status("cancelling") or life.status("cancelled")
        assert target is not None
        assert life.cancellable
        for status in life.cancellable:
            assert life.allows(status, target), f"{status!r} is cancellable but has no edge to {target!r}"
    assert profile.has("expiry") == profile.expiry.enabled
    # The expiry edges must exist even where expiry is switched off (Azure keeps `expired`).
    if profile.expiry.enters in life.roles:
        dst = life.roles[profile.expiry.enters]
        for role in profile.expiry.from_roles:
            assert life.allows(life.roles[role], dst), f"expiry from {role!r} to {dst!r} is not an edge"
    else:
        assert not profile.expiry.enabled


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_surface_limits_and_windows_hold_together(name: str) -> None:
    profile = load_profile(name)
    assert profile.has("files_api") == profile.files.api
    assert profile.http.route("create_batch") is not None
    assert profile.http.route("retrieve_batch") is not None
    file_routes = [profile.http.route(op) for op in ("create_file", "file_content")]
    if profile.files.api:
        assert all(file_routes), "a Files API profile needs upload and content routes"
    else:
        assert not any(file_routes), "a profile without Files API must not route files"
    if profile.output.location == "object_storage":
        assert profile.storage is not None
    assert profile.windows and all(seconds > 0 for seconds in profile.windows.values())
    if profile.batches.default_window:
        assert profile.batches.default_window in profile.windows
    assert profile.endpoints and all(ep.startswith("/") for ep in profile.endpoints)
    limits = profile.limits
    assert not limits.max_requests or limits.min_requests <= limits.max_requests
    assert not (profile.line_rules.mixed_endpoints and profile.line_rules.url_must_match_endpoint)


# Entries of openai.toml's [validation] that record what the live API was observed to answer
# but that neither the emulator's validation nor a breakage of the suite produces: the other
# profiles need not state them (test_observed_only_entries_are_used_nowhere keeps this true).
OBSERVED_ONLY = frozenset({"missing_messages", "model_not_found", "token_limit_exceeded"})
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_catalogues_cover_the_openai_names_and_render(name: str) -> None:
    profile = load_profile(name)
    reference = load_profile("openai")
    missing_errors = set(reference.errors) - set(profile.errors)
    missing_validation = set(reference.validation) - set(profile.validation) - OBSERVED_ONLY
    assert not missing_errors, f"[errors] lacks {sorted(missing_errors)}"
    assert not missing_validation, f"[validation] lacks {sorted(missing_validation)}"
    for spec in profile.errors.values():
        rendered = spec.render(**_template_fields(spec.message, spec.param, spec.code))
        assert "{" not in rendered.message and 400 <= rendered.status <= 599
    for entry in profile.validation.values():
        code, message, _ = entry.render(**_template_fields(entry.message, entry.param))
        assert code and "{" not in message


def test_observed_only_entries_are_used_nowhere() -> None:
    """An entry only openai.toml states must not be asked for by name anywhere else: not by
    a breakage of the suite, not by the emulator (else another profile would lack it)."""
    from conformance.strategies import BREAKAGES

    assert set(load_profile("openai").validation) >= OBSERVED_ONLY
    assert OBSERVED_ONLY.isdisjoint(b.validation for b in BREAKAGES.values())
    sources = [path.read_text(encoding="utf-8") for path in (REPO / "emulator").rglob("*.py")]
    sources += [path.read_text(encoding="utf-8") for path in (REPO / "conformance").rglob("*.py")]
    for name in OBSERVED_ONLY:
        # The ways code asks for a [validation] entry by name (a code string of the same
        # spelling, e.g. a backend's own "model_not_found" answer, is no such use).
        use = re.compile(rf'(?:validation\[|_error\(|\.of\([^"]*|_has\()"{name}"')
        assert not any(use.search(text) for text in sources), f"{name!r} is used by name: state it in every profile"


def test_openai_catalogue_holds_every_observed_code() -> None:
    """Every code openai-batch-spec.md §2.2 records as observed on the live API is an entry
    of the openai validation catalogue, verified and with its own source."""
    observed = {
        "invalid_json_line": None,
        "missing_required_parameter": None,
        "invalid_url": "url",
        "model_not_found": "body.model",
        "invalid_request": "body.messages",
        "streaming_unsupported": "body.stream",
        "token_limit_exceeded": None,
    }
    profile = load_profile("openai")
    for code, param in observed.items():
        entries = [
            name
            for name, entry in profile.validation.items()
            if entry.code == code and (param is None or entry.param == param)
        ]
        assert entries, f"no [validation] entry has code {code!r}" + (f" and param {param!r}" if param else "")
        for name in entries:
            fact = profile.fact(f"validation.{name}.code")
            assert fact.verified and "openai-batch-spec.md" in fact.source, (name, fact)
    spec = profile.validation["model_not_found"]
    assert spec.render(value="m")[1] == "The provided model 'm' is not supported by the Batch API."
    assert (spec.param, spec.line) == ("body.model", True)
    assert profile.validation["token_limit_exceeded"].line is False


# --- provenance ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_every_fact_has_a_source(name: str) -> None:
    profile = load_profile(name)
    assert profile.provenance
    for key, prov in profile.provenance.items():
        if key in STRUCTURAL:
            continue
        assert prov.source.strip() and prov.source != "-", f"{name}: fact {key!r} has no source"
        assert isinstance(prov.verified, bool)


@pytest.mark.parametrize("name", NAMES)
def test_every_leaf_of_the_file_is_recorded(name: str) -> None:
    profile = load_profile(name)
    raw = _raw(profile)
    unrecorded = [
        key
        for key, _ in _leaves({k: v for k, v in raw.items() if k not in STRUCTURAL})
        if key not in profile.provenance
    ]
    assert not unrecorded, f"{name}: leaves the loader did not record: {unrecorded}"
    for i, variant in enumerate(raw.get("variants", [])):
        for key in ("name", "header", "value"):
            assert f"variants[{i}].{key}" in profile.provenance
        assert variant.get("source") and isinstance(variant.get("verified"), bool)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_overrides_state_their_own_sources(name: str) -> None:
    base_name, variant_name = name.split("+", 1)
    base = load_profile(base_name)
    profile = load_profile(name)
    (variant,) = (v for v in _raw(base)["variants"] if v["name"] == variant_name)
    leaves = list(_leaves(variant["overrides"]))
    assert leaves, f"{name}: empty overrides"
    for key, value in leaves:
        # A plain value would silently inherit the base table's source: each override is a
        # fact table of its own.
        assert isinstance(value, dict) and value.get("source"), f"{name}: override {key!r} states no source"
        prov = profile.fact(key)
        assert prov.source == value["source"]
        assert prov.verified == value.get("verified", profile.provenance[key].verified)


# --- loading by name -------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_loads_by_both_spellings(name: str) -> None:
    base_name, variant_name = name.split("+", 1)
    by_plus = load_profile(name)
    by_keyword = load_profile(base_name, variant=variant_name)
    assert by_plus.variant == by_keyword.variant == variant_name
    assert by_plus.limits == by_keyword.limits
    assert load_profile(base_name).with_variant(variant_name).variant == variant_name


def test_unknown_profile_lists_the_known_names() -> None:
    with pytest.raises(UnknownProfileError) as info:
        load_profile("no-such-provider")
    message = str(info.value)
    assert "no-such-provider" in message
    for name in NAMES:
        assert name in message


def test_unknown_variant_lists_the_known_variants() -> None:
    with pytest.raises(UnknownProfileError) as info:
        load_profile("truefoundry+no-such-backend")
    message = str(info.value)
    assert "no-such-backend" in message
    for variant in load_profile("truefoundry").variants:
        assert variant.name in message


# --- broken profiles -------------------------------------------------------------------------

# (test id, text in openai.toml, replacement, key named by the error, fragment of the problem)
BROKEN = [
    (
        "transition-to-unknown-status",
        'cancelling = ["cancelled"]',
        'cancelling = ["cancelled", "archived"]',
        "lifecycle.transitions.cancelling",
        "unknown status 'archived'",
    ),
    (
        "terminal-with-outgoing-edges",
        "completed = []",
        'completed = ["in_progress"]',
        "lifecycle.transitions.completed",
        "terminal status 'completed' has outgoing transitions",
    ),
    (
        "unreachable-status",
        'validating = { value = ["in_progress", "failed", "cancelling", "expired"]',
        'validating = { value = ["in_progress", "cancelling", "expired"]',
        "lifecycle.transitions",
        "unreachable from 'validating': ['failed']",
    ),
    (
        "unknown-key-typo",
        "cancelling_max_seconds = {",
        "cancelling_max_second = {",
        "lifecycle.cancelling_max_second",
        "unknown key",
    ),
    (
        "unknown-capability-typo",
        "webhooks = true",
        "webhook = true",
        "capabilities.webhook",
        "unknown capability",
    ),
    (
        "wrong-type",
        "max_requests = 50000",
        'max_requests = "50000"',
        "limits.max_requests",
        "expected int, got str",
    ),
    (
        "role-mapped-to-unknown-status",
        'expired = "expired"',
        'expired = "timed_out"',
        "lifecycle.roles.expired",
        "unknown status 'timed_out'",
    ),
    (
        "min-requests-above-max",
        "min_requests = { value = 1,",
        "min_requests = { value = 60000,",
        "limits.min_requests",
        "60000 exceeds max_requests 50000",
    ),
    (
        "cancel-without-cancellable-statuses",
        'cancellable = ["validating", "in_progress", "finalizing"]',
        "cancellable = []",
        "lifecycle.cancellable",
        "capability cancel needs cancellable statuses",
    ),
    (
        "invalid-toml",
        "[limits]\n",
        "[limits\n",
        "(file)",
        "is not valid TOML",
    ),
    (
        "mixed-endpoints-against-url-match",
        "mixed_endpoints = false",
        "mixed_endpoints = true",
        "line_rules.mixed_endpoints",
        "contradicts url_must_match_endpoint",
    ),
    (
        "expiry-capability-without-expiry",
        "enabled = true",
        "enabled = false",
        "capabilities.expiry",
        "contradicts expiry.enabled = false",
    ),
    (
        "expiry-from-a-status-without-the-edge",
        'from_roles = ["validating", "in_progress", "finalizing"]',
        'from_roles = ["cancelling"]',
        "expiry.from_roles",
        "is not a transition",
    ),
    (
        "files-capability-against-files-api",
        "files_api = true",
        "files_api = false",
        "capabilities.files_api",
        "must equal files.api",
    ),
    (
        "object-storage-without-storage-table",
        'location = "files_api"',
        'location = "object_storage"',
        "storage",
        "needs a [storage] table",
    ),
    (
        "default-window-not-a-window",
        'create_required = ["input_file_id", "endpoint", "completion_window"]',
        'create_required = ["input_file_id", "endpoint", "completion_window"]\ndefault_window = "48h"',
        "batches.default_window",
        "'48h' is not a key of [windows]",
    ),
    (
        "webhooks-table-without-capability",
        "webhooks = true",
        "webhooks = false",
        "capabilities.webhooks",
        "contradicts the [webhooks] table",
    ),
    (
        "webhook-event-for-a-non-terminal-role",
        'expired = "batch.expired"',
        'in_progress = "batch.in_progress"',
        "webhooks.events.in_progress",
        "'in_progress' is not a terminal role",
    ),
    (
        "webhook-max-attempts-zero",
        "max_attempts = { value = 5,",
        "max_attempts = { value = 0,",
        "webhooks.max_attempts",
        "must be >= 1",
    ),
    (
        "webhook-backoff-shorter-than-the-retries",
        "backoff_seconds = { value = [1, 2, 4, 8],",
        "backoff_seconds = { value = [1, 2],",
        "webhooks.backoff_seconds",
        "gives 2 delays; max_attempts = 5 needs 4",
    ),
    (
        "webhook-backoff-not-a-number",
        "backoff_seconds = { value = [1, 2, 4, 8],",
        'backoff_seconds = { value = [1, "2", 4, 8],',
        "webhooks.backoff_seconds",
        "item 1 must be a number of seconds",
    ),
    (
        "webhook-header-not-a-token",
        'delivery_header = { value = "webhook-id",',
        'delivery_header = { value = "webhook id",',
        "webhooks.delivery_header",
        "not a valid HTTP header name",
    ),
    (
        "openai-error-without-type",
        'type = "rate_limit_error"\n',
        "",
        "errors.rate_limited.type",
        "is required but missing",
    ),
    (
        "never-entered-but-reachable",
        "cancelling_max_seconds = {",
        'never_entered = ["finalizing"]\ncancelling_max_seconds = {',
        "lifecycle.never_entered",
        "names statuses the graph reaches from 'validating': ['finalizing']",
    ),
    (
        "never-entered-unknown-status",
        "cancelling_max_seconds = {",
        'never_entered = ["archived"]\ncancelling_max_seconds = {',
        "lifecycle.never_entered",
        "unknown status 'archived'",
    ),
    (
        "failed-error-file-without-files-api",
        'location = "files_api"',
        'location = "results_url"\nfailed_error_file = true',
        "output.failed_error_file",
        "needs location = 'files_api'",
    ),
    (
        "unknown-dialect",
        'dialect = "openai"',
        'dialect = "openia"',
        "profile.dialect",
        "unknown dialect 'openia'",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "fragment"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_profile_is_refused_naming_file_and_key(
    tmp_path: Path, old: str, new: str, key: str, fragment: str
) -> None:
    assert OPENAI_TEXT.count(old) == 1, f"the edit must hit exactly one place in openai.toml: {old!r}"
    path = tmp_path / "openai.toml"
    path.write_text(OPENAI_TEXT.replace(old, new), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    error = info.value
    assert error.file == str(path)
    assert error.key == key
    assert fragment in error.problem
    assert str(path) in str(error) and f"[{key}]" in str(error)


def test_profile_name_must_match_its_file(tmp_path: Path) -> None:
    path = tmp_path / "renamed.toml"
    path.write_text(OPENAI_TEXT, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.key == "profile.name"
    assert str(path) in str(info.value)


def test_an_unedited_copy_loads(tmp_path: Path) -> None:
    path = tmp_path / "openai.toml"
    path.write_text(OPENAI_TEXT, encoding="utf-8")
    assert load_profile(path).lifecycle == load_profile("openai").lifecycle


# --- provider facts the sources disagree on --------------------------------------------------


def test_scaleway_records_both_namings_with_distinct_sources() -> None:
    profile = load_profile("scaleway")
    storage = profile.storage
    assert storage is not None
    assert storage.input_reference == "object_url"
    assert storage.output_key == "{dir}{stem}_output.jsonl"
    assert storage.error_key == "{dir}{stem}_error.jsonl"
    assert storage.alternative_output_keys == ("{dir}{stem}-output.jsonl",)
    assert storage.alternative_error_keys == ("{dir}{stem}-error.jsonl",)
    for current, alternative in (
        ("storage.output_key", "storage.alternative_output_keys"),
        ("storage.error_key", "storage.alternative_error_keys"),
    ):
        how_to, reference = profile.fact(current), profile.fact(alternative)
        assert how_to.source != reference.source
        assert "[scw-howto]" in how_to.source and "[scw-api]" in reference.source
        assert how_to.verified and reference.verified
    assert not profile.files.api and not profile.has("files_api")
    assert profile.output.location == "object_storage"
    assert profile.http.route("create_file") is None
    assert profile.ids.batch == ""


def test_ovhcloud_windows_are_24_48_72_hours_with_48_by_default() -> None:
    profile = load_profile("ovhcloud")
    assert dict(profile.windows) == {"24h": 86400, "48h": 172800, "72h": 259200}
    assert profile.batches.default_window == "48h"
    assert "24" in profile.fact("windows.24h").note  # the blog's 24 h maximum is recorded
    assert profile.http.default_base_url == "https://oai.endpoints.kepler.ai.cloud.ovh.net/v1"


def test_truefoundry_bedrock_needs_100_requests_and_the_base_does_not() -> None:
    base = load_profile("truefoundry")
    bedrock = load_profile("truefoundry+bedrock")
    assert bedrock.limits.min_requests == 100
    assert base.limits.min_requests < 100
    assert "minimum 100 records" in bedrock.fact("limits.min_requests").source
    assert {v.header for v in base.variants} == {"x-tfy-provider-name"}
    assert {"bedrock", "vertex", "azure"} <= {v.name for v in base.variants}
    azure = load_profile("truefoundry+azure")
    assert "/chat/completions" in azure.endpoints and not azure.line_rules.url_must_match_endpoint


def test_truefoundry_bedrock_and_vertex_never_enter_finalizing_or_expired() -> None:
    """[tfy] Batch Status Reference: finalizing and expired are '(OpenAI / Azure OpenAI)' only:
    behind Bedrock and Vertex no edge leads to them and no role maps to them; the OpenAI and
    Azure backends keep them. Every backend's failed batch names an error file."""
    for variant in ("bedrock", "vertex"):
        profile = load_profile(f"truefoundry+{variant}")
        life = profile.lifecycle
        assert life.never_entered == {"finalizing", "expired"}
        assert {"finalizing", "expired"} <= set(life.statuses)
        assert life.status("finalizing") is None and life.status("expired") is None
        assert life.transitions["in_progress"] == ("completed", "failed", "cancelling")
        assert "OpenAI / Azure OpenAI" in profile.fact("lifecycle.never_entered").source
    for name in ("truefoundry", "truefoundry+azure"):
        profile = load_profile(name)
        assert not profile.lifecycle.never_entered and profile.lifecycle.status("finalizing") == "finalizing"
    for name in ("truefoundry", *(f"truefoundry+{v.name}" for v in load_profile("truefoundry").variants)):
        assert load_profile(name).output.failed_error_file
    assert "error_file_id" in load_profile("truefoundry").fact("output.failed_error_file").source
    assert not load_profile("openai").output.failed_error_file


def test_azure_openai_facts() -> None:
    profile = load_profile("azure-openai")
    assert profile.output.empty_error_file is True
    assert load_profile("openai").output.empty_error_file is False
    assert profile.http.auth_header == "api-key" and profile.http.auth_scheme == ""
    assert profile.http.route("create_batch") == ("POST", "/openai/v1/batches")
    assert profile.http.route("create_file") == ("POST", "/openai/v1/files")
    assert "/chat/completions" in profile.endpoints
    assert not profile.expiry.enabled and not profile.has("expiry")
    assert "expired" in profile.lifecycle.statuses and "expired" in _reachable(profile)
    assert profile.limits.max_requests == 100000
    assert "50,000" in profile.fact("limits.max_requests").note
    codes = {entry.code for entry in profile.validation.values()}
    assert {"too_many_tasks", "url_mismatch", "empty_batch", "model_mismatch", "empty_file"} <= codes


def test_scaigrid_native_dialect() -> None:
    profile = load_profile("scaigrid")
    assert profile.dialect == "scaigrid"
    assert profile.lifecycle.statuses == ("pending", "processing", "completed", "failed", "cancelled")
    assert dict(profile.lifecycle.roles) == {
        "validating": "pending",
        "in_progress": "processing",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
    }
    assert profile.http.route("create_batch") == ("POST", "/v1/inference/batch")
    assert profile.http.route("cancel_batch") == ("POST", "/v1/inference/batch/{batch_id}/cancel")
    assert profile.line_rules.mixed_endpoints and not profile.line_rules.url_must_match_endpoint
    assert dict(profile.windows) == {"24h": 86400, "4h": 14400, "1h": 3600}
    assert profile.batches.default_window == "24h"
    assert profile.output.location == "results_url" and profile.output.line_format == "scaigrid"
    assert profile.limits.inline_base64_max_bytes > 0 and profile.limits.max_concurrent_batches == 10
    assert profile.has("webhooks") and not profile.has("files_api")
    assert profile.errors["quota_exceeded"].code == "QUOTA_EXCEEDED"


def test_scaigrid_routes_compat_and_timestamps() -> None:
    profile = load_profile("scaigrid")
    assert profile.http.route("batch_results") == ("GET", "/v1/inference/batch/{batch_id}/results")
    assert not profile.fact("http.operations.batch_results").verified
    assert profile.fact("http.operations.create_batch").verified
    assert dict(profile.lifecycle.timestamps) == {"pending": "created_at"}
    assert profile.endpoints == ("/v1/inference/chat", "/v1/inference/embed")
    assert profile.limits.max_upload_bytes == 0
    compat = profile.compat
    assert compat is not None
    assert (compat.openai_base_path, compat.openai_profile) == ("/oai/v1", "openai")
    assert compat.reference("file-abc") == "scaigrid://file/file-abc"
    assert load_profile(compat.openai_profile).dialect == "openai"
    assert "What's next" in profile.fact("compat.openai_base_path").source
    assert profile.fact("compat.file_reference").verified
    assert not profile.fact("compat.openai_profile").verified
    assert all(load_profile(name).compat is None for name in NAMES if name != "scaigrid")


def test_scaigrid_webhooks() -> None:
    profile = load_profile("scaigrid")
    hooks = profile.webhooks
    assert hooks is not None
    assert hooks.subscribe_field == "webhook_url"
    assert dict(hooks.events) == {
        "completed": "batch.completed",
        "failed": "batch.failed",
        "cancelled": "batch.cancelled",
    }
    assert hooks.event_type("expired") is None
    assert (hooks.event_header, hooks.delivery_header) == ("X-ScaiGrid-Event", "X-ScaiGrid-Delivery")
    assert hooks.max_attempts == 5 and hooks.backoff_seconds == (1.0, 2.0, 4.0, 8.0)
    for key in ("subscribe_field", "events.completed", "max_attempts", "backoff_seconds"):
        prov = profile.fact(f"webhooks.{key}")
        assert not prov.verified and "samples were not captured" in prov.source


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_webhook_capability_comes_with_its_rules(name: str) -> None:
    profile = load_profile(name)
    assert profile.has("webhooks") == (profile.webhooks is not None)
    if profile.webhooks is not None:
        for role in profile.webhooks.events:
            assert profile.lifecycle.status(role) in profile.lifecycle.terminal
        assert len(profile.webhooks.backoff_seconds) >= profile.webhooks.max_attempts - 1


# Every ScaiGrid error: (name, HTTP status, code, param with its template fields filled).
SCAIGRID_ERRORS = [
    ("unauthorized", 401, "UNAUTHORIZED", None),
    ("missing_auth", 401, "UNAUTHORIZED", None),
    ("missing_parameter", 400, "INVALID_REQUEST", "<param>"),
    ("invalid_completion_window", 400, "INVALID_REQUEST", "endpoint_completion_window"),
    ("invalid_value", 400, "INVALID_REQUEST", "<param>"),
    ("invalid_json_body", 400, "INVALID_REQUEST", None),
    ("file_too_large", 429, "QUOTA_EXCEEDED", None),
    ("batch_not_found", 404, "NOT_FOUND", "batch_id"),
    ("cancel_terminal", 409, "CONFLICT", None),
    ("not_found_route", 404, "NOT_FOUND", None),
    ("method_not_allowed", 405, "METHOD_NOT_ALLOWED", None),
    ("rate_limited", 429, "RATE_LIMITED", None),
    ("server_error", 500, "INTERNAL_ERROR", None),
    ("quota_exceeded", 429, "QUOTA_EXCEEDED", None),
    ("invalid_input_url", 400, "INVALID_REQUEST", "input_file_url"),
    ("invalid_base64", 400, "INVALID_REQUEST", "input_file_base64"),
    ("invalid_webhook_url", 400, "INVALID_REQUEST", "webhook_url"),
    ("results_not_ready", 404, "NOT_FOUND", "batch_id"),
    ("inline_too_large", 429, "QUOTA_EXCEEDED", "input_file_base64"),
    ("conflicting_input", 400, "INVALID_REQUEST", None),
]


@pytest.mark.parametrize(("name", "status", "code", "param"), SCAIGRID_ERRORS, ids=[e[0] for e in SCAIGRID_ERRORS])
def test_scaigrid_error_catalogue(name: str, status: int, code: str, param: str | None) -> None:
    spec = load_profile("scaigrid").errors[name]
    rendered = spec.render(**_template_fields(spec.message, spec.param, spec.code))
    assert (rendered.status, rendered.code, rendered.param) == (status, code, param)
    # ScaiGrid's envelope is {code, message, param}: no error type.
    assert spec.type is None and rendered.type is None


def test_scaigrid_error_templates_name_their_fields() -> None:
    errors = load_profile("scaigrid").errors
    expected = {
        "invalid_input_url": {"value", "reason"},
        "invalid_webhook_url": {"value", "reason"},
        "results_not_ready": {"id", "status"},
        "inline_too_large": {"size", "max"},
    }
    for name, fields in expected.items():
        assert set(_template_fields(errors[name].message)) == fields, name
    message = errors["quota_exceeded"].render(limit="concurrent batches", max=10).message
    assert message == "Quota exceeded: concurrent batches is limited to 10."


def test_scaigrid_validation_codes_are_upper_case() -> None:
    profile = load_profile("scaigrid")
    codes = {name: entry.code for name, entry in profile.validation.items()}
    assert all(code == code.upper() for code in codes.values())
    assert codes["invalid_json_line"] == "INVALID_JSON_LINE"
    assert codes["missing_field"] == "MISSING_REQUIRED_PARAMETER"
    assert codes["duplicate_custom_id"] == "DUPLICATE_CUSTOM_ID"
    assert codes["invalid_url"] == "INVALID_URL"
    assert codes["input_file_not_found"] == "INPUT_FILE_NOT_FOUND"
    assert codes["too_many_requests"] == "QUOTA_EXCEEDED"
    assert profile.validation["input_file_not_found"].param == "input_file_url"
    verified = {name for name in profile.validation if profile.fact(f"validation.{name}.code").verified}
    assert verified == {"too_many_requests"}


def test_openai_errors_keep_their_type() -> None:
    for spec in load_profile("openai").errors.values():
        assert spec.type and spec.render().type == spec.type


SCAIGRID_TEXT = (PROFILES_DIR / "scaigrid.toml").read_text(encoding="utf-8")
_SCAIGRID_WEBHOOKS = SCAIGRID_TEXT[SCAIGRID_TEXT.index("[webhooks]\n") : SCAIGRID_TEXT.index("# HTTP errors")]

# (test id, text in scaigrid.toml, replacement, key named by the error, fragment of the problem)
SCAIGRID_BROKEN = [
    (
        "webhooks-capability-without-table",
        _SCAIGRID_WEBHOOKS,
        "",
        "webhooks",
        "capabilities.webhooks = true needs a [webhooks] table",
    ),
    (
        "webhook-event-for-a-role-without-status",
        'cancelled = "batch.cancelled"\n',
        'cancelled = "batch.cancelled"\nexpired = "batch.expired"\n',
        "webhooks.events.expired",
        "role 'expired' has no status in lifecycle.roles",
    ),
    (
        "webhook-event-type-twice",
        'failed = "batch.failed"',
        'failed = "batch.completed"',
        "webhooks.events.failed",
        "already given to another role",
    ),
    (
        "compat-profile-unknown",
        'openai_profile = { value = "openai",',
        'openai_profile = { value = "open-ai",',
        "compat.openai_profile",
        "names no bundled profile 'open-ai'",
    ),
    (
        "compat-profile-itself",
        'openai_profile = { value = "openai",',
        'openai_profile = { value = "scaigrid",',
        "compat.openai_profile",
        "must name another profile",
    ),
    (
        "compat-base-path-trailing-slash",
        'openai_base_path = "/oai/v1"',
        'openai_base_path = "/oai/v1/"',
        "compat.openai_base_path",
        "must start with '/' and not end with one",
    ),
    (
        "compat-file-reference-without-file-id",
        'file_reference = { value = "scaigrid://file/{file_id}",',
        'file_reference = { value = "scaigrid://file/{id}",',
        "compat.file_reference",
        "template over {file_id} alone",
    ),
    (
        "error-with-a-type",
        'code = "RATE_LIMITED"\n',
        'code = "RATE_LIMITED"\ntype = "rate_limit_error"\n',
        "errors.rate_limited.type",
        "has no `type`",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"), [b[1:] for b in SCAIGRID_BROKEN], ids=[b[0] for b in SCAIGRID_BROKEN]
)
def test_broken_scaigrid_profile_is_refused_naming_file_and_key(
    tmp_path: Path, old: str, new: str, key: str, fragment: str
) -> None:
    assert SCAIGRID_TEXT.count(old) == 1, f"the edit must hit exactly one place in scaigrid.toml: {old!r}"
    path = tmp_path / "scaigrid.toml"
    path.write_text(SCAIGRID_TEXT.replace(old, new), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    error = info.value
    assert (error.file, error.key) == (str(path), key)
    assert fragment in error.problem


def test_scaigrid_list_pages_like_openai_and_says_it_is_inferred() -> None:
    profile = load_profile("scaigrid")
    assert profile.has("pagination") and not profile.fact("capabilities.pagination").verified
    batches = profile.batches
    assert (batches.list_default_limit, batches.list_max_limit, batches.list_order) == (20, 100, "desc")
    assert profile.fact("http.operations.list_batches").verified
    assert "limit, after" in profile.fact("http.operations.list_batches").source
