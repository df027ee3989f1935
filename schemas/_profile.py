"""Provider profiles: one TOML file per provider, loaded into typed, checked objects.

A profile states what a provider's batch API promises: its dialect, paths and auth, the
status graph, windows, endpoints, limits, line rules, where results go, its capabilities and
its error catalogue, each fact with its source. The emulator implements a profile and the
conformance suite holds a target to one; neither hard-codes a provider fact.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._facts import FactTable, ProfileError, Provenance
from ._overlay import apply_overlay

__all__ = [
    "ROLES",
    "BatchRules",
    "CompatRules",
    "Deviation",
    "ErrorSpec",
    "ExpiryRules",
    "FileRules",
    "HttpSurface",
    "IdPrefixes",
    "Lifecycle",
    "Limits",
    "LineError",
    "LineRules",
    "ModelRules",
    "OutputRules",
    "Profile",
    "RejectedRequest",
    "RenderedError",
    "StorageRules",
    "UnknownProfileError",
    "Variant",
    "WebhookRules",
    "load_profile",
    "profile_names",
]

#: The canonical lifecycle roles (OpenAI's vocabulary). A dialect maps each role it has to a
#: native status name; the engine speaks roles, the wire speaks native names.
ROLES: tuple[str, ...] = (
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)
_TERMINAL_ROLES = frozenset({"completed", "failed", "expired", "cancelled"})
_ENFORCEMENT_STAGES = frozenset({"upload", "create", "validation"})
_DIALECTS = frozenset({"openai", "scaigrid"})
# Dialects whose error envelope carries a `type` (OpenAI's {message, type, param, code});
# ScaiGrid's envelope is {code, message, param}, so its catalogue must not state one.
_DIALECTS_WITH_ERROR_TYPE = frozenset({"openai"})
_OUTPUT_LOCATIONS = frozenset({"files_api", "object_storage", "results_url"})
_INPUT_REFERENCES = frozenset({"files_api", "object_url", "url_or_base64"})
_HTTP_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH"})
# An HTTP header name is an RFC 9110 token; anything else could not be sent on the wire.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CAPABILITIES = frozenset(
    {
        "files_api",
        "cancel",
        "expiry",
        "metadata",
        "pagination",
        "webhooks",
        "output_expires_after",
        "usage",
        "auth",
        "isolation",
        "file_delete",
        "storage_layout",
    }
)


class UnknownProfileError(KeyError):
    """No profile has the requested name; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RenderedError:
    """An error ready for a dialect's envelope (`type` is None where the envelope has none)."""

    status: int
    type: str | None
    code: str | None
    param: str | None
    message: str


@dataclass(frozen=True)
class ErrorSpec:
    """One HTTP error of the dialect's catalogue; `code`, `param` and `message` are templates.

    `type` is None for dialects whose envelope has no error type (ScaiGrid).
    """

    name: str
    status: int
    type: str | None
    code: str | None
    param: str | None
    message: str

    def render(self, **fields: object) -> RenderedError:
        """Fill the templates; a missing field is left visible as `{name}`."""
        values = _SafeFields(fields)
        return RenderedError(
            status=self.status,
            type=self.type,
            code=self.code.format_map(values) if self.code else None,
            param=self.param.format_map(values) if self.param else None,
            message=self.message.format_map(values),
        )


@dataclass(frozen=True)
class LineError:
    """One batch-level validation error (an entry of a failed batch's `errors`)."""

    name: str
    code: str
    param: str | None
    line: bool
    message: str

    def render(self, **fields: object) -> tuple[str, str, str | None]:
        """(code, message, param) with the templates filled."""
        values = _SafeFields(fields)
        param = self.param.format_map(values) if self.param else None
        return self.code, self.message.format_map(values), param


@dataclass(frozen=True)
class RejectedRequest:
    """A request body an endpoint rejects when a batch line runs (`[rejected_requests]`).

    The body whose `field` is an empty array is answered HTTP `status` with the dialect's
    error envelope: `type` (None where the envelope has none), `code` and `param` (None for
    null) and `message`. The suite makes lines fail with it on any target, without admin
    routes; the emulator's mock backend answers it so.
    """

    endpoint: str
    field: str
    status: int
    type: str | None
    code: str | None
    param: str | None
    message: str

    def body(self, model: str) -> dict[str, Any]:
        """The rejected request body for `model`."""
        return {"model": model, self.field: []}

    def key(self, fact: str) -> str:
        """The dotted profile key of one of its facts (`status`, `param`, ...), for citations."""
        return f"rejected_requests.{self.endpoint}.{fact}"


class _SafeFields(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class HttpSurface:
    """Base path, auth and the route of each operation.

    `base_path_aliases` are other base paths the same routes answer under: Azure's older
    `/openai` form (which then needs the `alias_required_query` parameter, `api-version`), or
    Scaleway's `/{project_id}/v1`, whose project scopes what a key sees.

    `required_headers` must be on every provider request (a gateway's provider selector);
    the values are what clients send by default (a variant's own value for a variant).
    """

    default_base_url: str
    base_path: str
    auth_header: str
    auth_scheme: str
    project_header: str
    request_id_header: str
    operations: Mapping[str, tuple[str, str]]
    query_params: Mapping[str, str]
    base_path_aliases: tuple[str, ...] = ()
    alias_required_query: str = ""
    required_headers: Mapping[str, str] = field(default_factory=dict)

    def route(self, operation: str) -> tuple[str, str] | None:
        """(METHOD, full path template) of an operation, or None if the dialect lacks it."""
        op = self.operations.get(operation)
        if op is None:
            return None
        return op[0], self.base_path + op[1]


@dataclass(frozen=True)
class IdPrefixes:
    """Prefixes of generated ids ('' when the provider uses bare UUIDs)."""

    batch: str
    file: str
    output_line: str
    request: str


@dataclass(frozen=True)
class Lifecycle:
    """The status enum, its transition graph and the role each status plays.

    `never_entered` are statuses of the enum a batch of this profile never enters (a
    gateway's shared enum, some of whose statuses only some backends show): no edge leads
    to them and no role maps to them.
    """

    statuses: tuple[str, ...]
    initial: str
    terminal: frozenset[str]
    cancellable: frozenset[str]
    cancel_idempotent: frozenset[str]
    cancelling_max_seconds: int
    transitions: Mapping[str, tuple[str, ...]]
    roles: Mapping[str, str]
    timestamps: Mapping[str, str]
    never_entered: frozenset[str] = frozenset()

    def status(self, role: str) -> str | None:
        """The native status playing `role`, or None if the dialect has no such step."""
        return self.roles.get(role)

    def role(self, status: str) -> str | None:
        """The canonical role of a native status."""
        for role, native in self.roles.items():
            if native == status:
                return role
        return None

    def allows(self, src: str, dst: str) -> bool:
        """Whether `src -> dst` is an edge of the graph (staying put is always allowed)."""
        return src == dst or dst in self.transitions.get(src, ())

    def first_illegal_step(self, observed: Iterable[str]) -> tuple[str, str] | None:
        """The first step of an observed status sequence that is not an edge, or None."""
        prev: str | None = None
        for status in observed:
            if prev is None:
                if status not in self.statuses:
                    return ("(start)", status)
            elif not self.allows(prev, status):
                return (prev, status)
            prev = status
        return None


@dataclass(frozen=True)
class Limits:
    """Size and count limits, and where each is enforced ('upload', 'create', 'validation')."""

    max_requests: int
    max_input_bytes: int
    max_upload_bytes: int
    min_requests: int
    max_embedding_inputs: int
    metadata_max_pairs: int
    metadata_key_max_chars: int
    metadata_value_max_chars: int
    max_concurrent_batches: int
    inline_base64_max_bytes: int
    enforced_at: Mapping[str, str]


@dataclass(frozen=True)
class LineRules:
    """What each input line must look like and how lines relate to each other."""

    required_fields: tuple[str, ...]
    methods: tuple[str, ...]
    url_must_match_endpoint: bool
    mixed_endpoints: bool
    one_model_per_file: bool
    model_required: bool
    stream_allowed: bool
    custom_id_unique: bool
    custom_id_max_chars: int


@dataclass(frozen=True)
class FileRules:
    """The Files API (absent for object-storage dialects: `api` false)."""

    api: bool
    upload_purposes: tuple[str, ...]
    batch_purpose: str
    output_purpose: str
    upload_status: str
    batch_file_extension: str
    check_first_line_is_json: bool
    default_expiry_seconds: int
    expiry_seconds_min: int
    expiry_seconds_max: int
    not_downloadable_purposes: tuple[str, ...]
    list_default_limit: int
    list_max_limit: int
    list_default_order: str
    require_jsonl_extension: bool = False


@dataclass(frozen=True)
class BatchRules:
    """Create and list rules for batches.

    `default_window` is the completion window a create request gets when it names none
    ('' when the window is required or the provider states no default).
    """

    list_default_limit: int
    list_max_limit: int
    list_order: str
    create_required: tuple[str, ...]
    missing_input_file: str
    default_window: str = ""


@dataclass(frozen=True)
class OutputRules:
    """Where results go, how they are named, and what unfinished lines become.

    `failed_error_file`: a batch that failed (validation, a missing input) names an error
    file holding its errors, one failure line each, beside its batch-level `errors`.
    """

    location: str
    empty_output_file: bool
    empty_error_file: bool
    ordered: bool
    output_filename: str
    error_filename: str
    ids_at_terminal: bool
    usage: bool
    line_format: str
    unfinished_on_expiry: str
    unfinished_on_cancel: str
    expired_code: str
    expired_message: str
    cancelled_code: str
    cancelled_message: str
    failed_error_file: bool = False
    request_id_required: bool = False


@dataclass(frozen=True)
class StorageRules:
    """Object-storage dialects: how the input is referenced and where results are written.

    `output_key` / `error_key` are templates over `{dir}` (the input's folder, with a
    trailing slash or empty), `{filename}` (the input's name), `{stem}` (its name without
    extension) and `{batch_id}`. `alternative_keys` are other namings a document gives.

    `object_urls` are the provider's own URL forms of an object (templates over `{bucket}`,
    `{region}` and `{key}`), `presigned_urls` whether a URL with a query string (a pre-signed
    URL) is accepted, and `batch_principal` / `principal_actions` what a bucket policy must
    allow when the bucket has one ('' / () when the provider states no such rule).
    """

    input_reference: str
    output_key: str
    error_key: str
    alternative_output_keys: tuple[str, ...]
    alternative_error_keys: tuple[str, ...]
    object_urls: tuple[str, ...] = ()
    presigned_urls: bool = True
    batch_principal: str = ""
    principal_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpiryRules:
    """What happens when the completion window passes."""

    enabled: bool
    enters: str
    from_roles: tuple[str, ...]


@dataclass(frozen=True)
class ModelRules:
    """Model names the provider's own documents use: what generated requests ask for.

    `other` is a second model, for mixed-model checks. A run may override both (a real
    account's deployment names) without touching the profile. `catalogue` lists the models
    a provider serves when it refuses others line by line (empty: any model is served).
    """

    default: str
    other: str
    catalogue: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deviation:
    """A known deviation of a real provider from its own contract: a strict xfail."""

    check: str
    reason: str
    source: str


@dataclass(frozen=True)
class Variant:
    """A named overlay selected by a request header (a gateway routing to a backend)."""

    name: str
    header: str
    value: str


@dataclass(frozen=True)
class CompatRules:
    """A provider's OpenAI-compatible surface beside its native API, over the same store.

    `openai_base_path` is where the compatible Files and Batches routes sit (e.g. `/oai/v1`);
    their contract is the bundled profile `openai_profile` at that base path (its limits too).
    `file_reference` is how the native API names a file uploaded there: a template over
    `{file_id}`, e.g. `scaigrid://file/{file_id}`.
    """

    openai_base_path: str = "/oai/v1"
    openai_profile: str = "openai"
    file_reference: str = "scaigrid://file/{file_id}"

    def reference(self, file_id: str) -> str:
        """The native reference of an uploaded file."""
        return self.file_reference.format(file_id=file_id)


@dataclass(frozen=True)
class WebhookRules:
    """Who is told when a batch ends, and how the provider delivers the notification.

    `subscribe_field` is the create-body field naming the receiver's URL ('' when receivers
    are configured outside the batch API). `events` maps each terminal role that is
    announced to its event type. `event_header` / `delivery_header` carry the event type and
    the delivery (event) id ('' when the provider sends no such header). A delivery is tried
    at most `max_attempts` times in all; `backoff_seconds[i]` is the wait before retry i+1.
    """

    subscribe_field: str
    events: Mapping[str, str]
    event_header: str
    delivery_header: str
    max_attempts: int
    backoff_seconds: tuple[float, ...]

    def event_type(self, role: str) -> str | None:
        """The event type announcing that a batch entered terminal `role`, or None."""
        return self.events.get(role)


@dataclass(frozen=True)
class Profile:
    """A provider's batch contract, loaded from `schemas/profiles/<name>.toml`.

    A profile loaded from an overlay (a file that `extends` another) has its base's `name`,
    `dialect` and `variant`, its `path` is the overlay's, and `overlays` lists the overlay
    files applied, base first.
    """

    name: str
    display_name: str
    dialect: str
    description: str
    http: HttpSurface
    ids: IdPrefixes
    lifecycle: Lifecycle
    windows: Mapping[str, int]
    endpoints: tuple[str, ...]
    limits: Limits
    line_rules: LineRules
    files: FileRules
    batches: BatchRules
    output: OutputRules
    storage: StorageRules | None
    expiry: ExpiryRules
    models: ModelRules
    capabilities: Mapping[str, bool]
    errors: Mapping[str, ErrorSpec]
    validation: Mapping[str, LineError]
    deviations: tuple[Deviation, ...]
    variants: tuple[Variant, ...]
    provenance: Mapping[str, Provenance]
    path: Path
    variant: str | None = None
    compat: CompatRules | None = None
    webhooks: WebhookRules | None = None
    rejected_requests: Mapping[str, RejectedRequest] = field(default_factory=lambda: MappingProxyType({}))
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    overlays: tuple[Path, ...] = ()

    def has(self, capability: str) -> bool:
        """Whether the provider declares `capability`."""
        return self.capabilities.get(capability, False)

    def error(self, name: str, **fields: object) -> RenderedError:
        """Render catalogue error `name` (KeyError if the profile lacks it: a harness bug)."""
        return self.errors[name].render(**fields)

    def fact(self, key: str) -> Provenance:
        """The provenance of a dotted fact key, e.g. 'limits.max_requests'."""
        return self.provenance[key]

    def with_variant(self, name: str) -> Profile:
        """This profile with overlay `name` applied."""
        return _load_file(self.path, variant=name)


def _ints(table: FactTable, name: str) -> int:
    value = table.get(name, int)
    if value < 0:
        raise table.error(name, f"must be >= 0, got {value}")
    return value


def _str_or_none(value: str) -> str | None:
    return value or None


def _check_template(table: FactTable, name: str, template: str) -> None:
    try:
        list(string.Formatter().parse(template))
    except ValueError as exc:
        raise table.error(name, f"malformed template {template!r}: {exc}") from None


_FIELD = re.compile(r"{(\w+)}")


def _headers(t: FactTable) -> dict[str, str]:
    table = t.table("required_headers", required=False)
    if table is None:
        return {}
    out = {name: table.get(name, str) for name in table.names()}
    table.done()
    return out


def _parse_http(t: FactTable) -> HttpSurface:
    ops_table = t.table("operations")
    assert ops_table is not None
    operations: dict[str, tuple[str, str]] = {}
    for op in ops_table.names():
        spec = ops_table.get(op, str)
        method, _, path = spec.partition(" ")
        if method not in _HTTP_METHODS or not path.startswith("/"):
            raise ops_table.error(op, f"expected 'METHOD /path', got {spec!r}")
        operations[op] = (method, path)
    ops_table.done()
    qp = t.table("query_params", required=False)
    query: dict[str, str] = {}
    if qp is not None:
        query = {k: qp.get(k, str) for k in qp.names()}
        qp.done()
    base_path = t.get("base_path", str)
    if base_path and (not base_path.startswith("/") or base_path.endswith("/")):
        raise t.error("base_path", f"must start with '/' and not end with one, got {base_path!r}")
    http = HttpSurface(
        default_base_url=t.get("default_base_url", str),
        base_path=base_path,
        auth_header=t.get("auth_header", str),
        auth_scheme=t.get("auth_scheme", str, ""),
        project_header=t.get("project_header", str, ""),
        request_id_header=t.get("request_id_header", str, "x-request-id"),
        operations=MappingProxyType(operations),
        query_params=MappingProxyType(query),
        base_path_aliases=t.strings("base_path_aliases", ()),
        alias_required_query=t.get("alias_required_query", str, ""),
        required_headers=MappingProxyType(_headers(t)),
    )
    for alias in http.base_path_aliases:
        if not alias.startswith("/") or alias.endswith("/") or alias == base_path:
            raise t.error(
                "base_path_aliases", f"{alias!r} must start with '/', not end with one, and differ from base_path"
            )
        if set(_FIELD.findall(alias)) - {"project_id"}:
            raise t.error(
                "base_path_aliases", f"{alias!r}: the only path parameter an alias may have is {{project_id}}"
            )
    t.done()
    return http


def _parse_lifecycle(t: FactTable) -> Lifecycle:
    statuses = t.strings("statuses")
    if len(set(statuses)) != len(statuses):
        raise t.error("statuses", f"lists a status twice: {list(statuses)}")
    known = set(statuses)

    def subset(name: str, values: Iterable[str]) -> None:
        for v in values:
            if v not in known:
                raise t.error(name, f"names unknown status {v!r} (statuses: {list(statuses)})")

    initial = t.get("initial", str)
    subset("initial", [initial])
    terminal = frozenset(t.strings("terminal"))
    subset("terminal", terminal)
    cancellable = frozenset(t.strings("cancellable", ()))
    subset("cancellable", cancellable)
    idempotent = frozenset(t.strings("cancel_idempotent", ()))
    subset("cancel_idempotent", idempotent)
    cancelling_max = _ints(t, "cancelling_max_seconds") if t.has("cancelling_max_seconds") else 0
    never_entered = frozenset(t.strings("never_entered", ()))
    subset("never_entered", never_entered)
    if initial in never_entered:
        raise t.error("never_entered", f"names the initial status {initial!r}")

    tr = t.table("transitions")
    assert tr is not None
    transitions: dict[str, tuple[str, ...]] = {}
    for src in tr.names():
        if src not in known:
            raise tr.error(src, f"transition from unknown status {src!r} (statuses: {list(statuses)})")
        targets = tr.strings(src)
        for dst in targets:
            if dst not in known:
                raise tr.error(src, f"transition to unknown status {dst!r} (statuses: {list(statuses)})")
        if src in terminal and targets:
            raise tr.error(src, f"terminal status {src!r} has outgoing transitions {list(targets)}")
        transitions[src] = targets
    tr.done()
    for status in statuses:
        if status not in transitions:
            raise t.error(f"transitions.{status}", "every status needs an entry (use [] for terminal ones)")
        if status not in terminal and not transitions[status]:
            raise t.error(f"transitions.{status}", f"non-terminal status {status!r} has no way out")
    if initial in terminal:
        raise t.error("initial", f"initial status {initial!r} is terminal")
    reachable = {initial}
    frontier = [initial]
    while frontier:
        for dst in transitions[frontier.pop()]:
            if dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    unreachable = [s for s in statuses if s not in reachable and s not in never_entered]
    if unreachable:
        raise t.error("transitions", f"statuses unreachable from {initial!r}: {unreachable}")
    entered = sorted(never_entered & reachable)
    if entered:
        raise t.error("never_entered", f"names statuses the graph reaches from {initial!r}: {entered}")
    if cancellable & terminal:
        raise t.error("cancellable", f"terminal statuses cannot be cancellable: {sorted(cancellable & terminal)}")

    rt = t.table("roles")
    assert rt is not None
    roles: dict[str, str] = {}
    for role in rt.names():
        if role not in ROLES:
            raise rt.error(role, f"unknown role (roles: {list(ROLES)})")
        native = rt.get(role, str)
        if native not in known:
            raise rt.error(role, f"maps to unknown status {native!r}")
        if (role in _TERMINAL_ROLES) != (native in terminal):
            raise rt.error(role, f"role {role!r} and status {native!r} disagree on being terminal")
        if native in never_entered:
            continue  # no batch of this profile plays that role
        roles[role] = native
    rt.done()
    for role in ("validating", "completed"):
        if role not in roles:
            raise t.error(f"roles.{role}", "every dialect needs this role")
    if roles["validating"] != initial:
        raise t.error("roles.validating", f"must be the initial status {initial!r}")

    ts = t.table("timestamps", required=False)
    timestamps: dict[str, str] = {}
    if ts is not None:
        for status in ts.names():
            if status not in known:
                raise ts.error(status, f"timestamp for unknown status {status!r}")
            timestamps[status] = ts.get(status, str)
        ts.done()
    life = Lifecycle(
        statuses=statuses,
        initial=initial,
        terminal=terminal,
        cancellable=cancellable,
        cancel_idempotent=idempotent,
        cancelling_max_seconds=cancelling_max,
        transitions=MappingProxyType(transitions),
        roles=MappingProxyType(roles),
        timestamps=MappingProxyType(timestamps),
        never_entered=never_entered,
    )
    t.done()
    return life


def _parse_errors(t: FactTable, *, typed: bool) -> dict[str, ErrorSpec]:
    """The catalogue; `typed`: the dialect's envelope has an error `type`, so each entry needs one."""
    errors: dict[str, ErrorSpec] = {}
    for name in t.names():
        e = t.table(name)
        assert e is not None
        status = e.get("status", int)
        if not 400 <= status <= 599:
            raise e.error("status", f"an error status must be 4xx or 5xx, got {status}")
        message = e.get("message", str)
        param = e.get("param", str, "")
        code = e.get("code", str, "")
        for key, tmpl in (("message", message), ("param", param), ("code", code)):
            _check_template(e, key, tmpl)
        if typed:
            kind: str | None = e.get("type", str)
        elif e.has("type"):
            raise e.error("type", "this dialect's error envelope has no `type`; remove it")
        else:
            kind = None
        errors[name] = ErrorSpec(name, status, kind, _str_or_none(code), _str_or_none(param), message)
        e.done()
    t.done()
    return errors


def _bundled_dialect(name: str) -> str | None:
    """The dialect a bundled profile declares, read without loading it (no recursion)."""
    path = _profiles_dir() / f"{name}.toml"
    if not path.is_file():
        return None
    try:
        dialect = tomllib.loads(path.read_text(encoding="utf-8")).get("profile", {}).get("dialect")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return dialect if isinstance(dialect, str) else None


def _parse_compat(t: FactTable, own_name: str) -> CompatRules:
    base_path = t.get("openai_base_path", str, CompatRules.openai_base_path)
    if not base_path.startswith("/") or base_path.endswith("/"):
        raise t.error("openai_base_path", f"must start with '/' and not end with one, got {base_path!r}")
    target = t.get("openai_profile", str, CompatRules.openai_profile)
    if target == own_name:
        raise t.error("openai_profile", "must name another profile, not this one")
    dialect = _bundled_dialect(target)
    if dialect is None:
        raise t.error("openai_profile", f"names no bundled profile {target!r} (known: {list(profile_names())})")
    if dialect != "openai":
        raise t.error("openai_profile", f"profile {target!r} has dialect {dialect!r}, not 'openai'")
    reference = t.get("file_reference", str, CompatRules.file_reference)
    _check_template(t, "file_reference", reference)
    names = {f for _, f, _, _ in string.Formatter().parse(reference) if f is not None}
    if names != {"file_id"}:
        raise t.error("file_reference", f"must be a template over {{file_id}} alone, got {reference!r}")
    t.done()
    return CompatRules(openai_base_path=base_path, openai_profile=target, file_reference=reference)


def _parse_webhooks(t: FactTable, lifecycle: Lifecycle) -> WebhookRules:
    subscribe_field = t.get("subscribe_field", str)
    headers = {name: t.get(name, str) for name in ("event_header", "delivery_header")}
    for name, header in headers.items():
        if header and not _HEADER_NAME.fullmatch(header):
            raise t.error(name, f"is not a valid HTTP header name: {header!r}")
    max_attempts = t.get("max_attempts", int)
    if max_attempts < 1:
        raise t.error("max_attempts", f"must be >= 1 (the first delivery counts), got {max_attempts}")
    backoff: list[float] = []
    for i, delay in enumerate(t.get("backoff_seconds", list)):
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise t.error("backoff_seconds", f"item {i} must be a number of seconds >= 0, got {delay!r}")
        backoff.append(float(delay))
    if len(backoff) < max_attempts - 1:
        raise t.error(
            "backoff_seconds",
            f"gives {len(backoff)} delays; max_attempts = {max_attempts} needs {max_attempts - 1} (one per retry)",
        )

    et = t.table("events")
    assert et is not None
    events: dict[str, str] = {}
    for role in et.names():
        if role not in _TERMINAL_ROLES:
            raise et.error(role, f"{role!r} is not a terminal role (terminal roles: {sorted(_TERMINAL_ROLES)})")
        if role not in lifecycle.roles:
            raise et.error(role, f"role {role!r} has no status in lifecycle.roles")
        event = et.get(role, str)
        if not event:
            raise et.error(role, "needs a non-empty event type")
        if event in events.values():
            raise et.error(role, f"event type {event!r} is already given to another role")
        events[role] = event
    if not events:
        raise t.error("events", "needs at least one terminal role and its event type")
    et.done()
    t.done()
    return WebhookRules(
        subscribe_field=subscribe_field,
        events=MappingProxyType(events),
        event_header=headers["event_header"],
        delivery_header=headers["delivery_header"],
        max_attempts=max_attempts,
        backoff_seconds=tuple(backoff),
    )


def _parse_validation(t: FactTable) -> dict[str, LineError]:
    out: dict[str, LineError] = {}
    for name in t.names():
        e = t.table(name)
        assert e is not None
        message = e.get("message", str)
        param = e.get("param", str, "")
        _check_template(e, "message", message)
        _check_template(e, "param", param)
        out[name] = LineError(name, e.get("code", str), _str_or_none(param), e.get("line", bool), message)
        e.done()
    t.done()
    return out


def _parse_rejected(t: FactTable, *, typed: bool) -> dict[str, RejectedRequest]:
    """`[rejected_requests]`: one sub-table per endpoint (a line's url)."""
    out: dict[str, RejectedRequest] = {}
    for endpoint in t.names():
        e = t.table(endpoint)
        assert e is not None
        if not endpoint.startswith("/") or "." in endpoint:
            raise t.error(endpoint, "expected an endpoint path such as '/v1/chat/completions'")
        empty = e.get("empty_field", str)
        if not empty:
            raise e.error("empty_field", "names the body field sent as an empty array; must not be empty")
        status = e.get("status", int)
        if not 400 <= status <= 599:
            raise e.error("status", f"a rejection is an HTTP error status (4xx or 5xx), got {status}")
        if typed:
            kind: str | None = e.get("type", str)
        elif e.has("type"):
            raise e.error("type", "this dialect's error envelope has no `type`; remove it")
        else:
            kind = None
        out[endpoint] = RejectedRequest(
            endpoint,
            empty,
            status,
            kind,
            _str_or_none(e.get("code", str, "")),
            _str_or_none(e.get("param", str, "")),
            e.get("message", str),
        )
        e.done()
    t.done()
    return out


def _parse(raw: Mapping[str, Any], path: Path, variant: str | None, *, stem: str | None = None) -> Profile:
    """The profile in `raw`, read from `path`; its name must be `stem` (default: the file's)."""
    provenance: dict[str, Provenance] = {}
    root = FactTable(
        {**raw, "source": "-", "verified": False},
        file=path,
        key="",
        provenance=provenance,
    )

    def section(name: str, required: bool = True) -> FactTable | None:
        return root.table(name, required=required)

    def need(name: str) -> FactTable:
        t = section(name)
        assert t is not None
        return t

    p = need("profile")
    name = p.get("name", str)
    expected_name = stem or path.stem
    if name != expected_name:
        raise p.error("name", f"must equal the file name {expected_name!r}, got {name!r}")
    dialect = p.get("dialect", str)
    if dialect not in _DIALECTS:
        raise p.error("dialect", f"unknown dialect {dialect!r} (known: {sorted(_DIALECTS)})")
    display_name = p.get("display_name", str)
    description = p.get("description", str)
    p.done()

    http = _parse_http(need("http"))
    it = need("ids")
    ids = IdPrefixes(it.get("batch", str), it.get("file", str), it.get("output_line", str), it.get("request", str))
    it.done()
    lifecycle = _parse_lifecycle(need("lifecycle"))

    wt = need("windows")
    windows = {w: _ints(wt, w) for w in wt.names()}
    if not windows or not all(windows.values()):
        raise wt.error("*", "needs at least one window, each a positive number of seconds")
    wt.done()

    et = need("endpoints")
    endpoints = et.strings("allowed")
    for ep in endpoints:
        if not ep.startswith("/"):
            raise et.error("allowed", f"endpoint {ep!r} must start with '/'")
    et.done()

    lt = need("limits")
    enforced_t = lt.table("enforced_at")
    assert enforced_t is not None
    enforced: dict[str, str] = {}
    for key in enforced_t.names():
        stage = enforced_t.get(key, str)
        if stage not in _ENFORCEMENT_STAGES:
            raise enforced_t.error(key, f"unknown stage {stage!r} (known: {sorted(_ENFORCEMENT_STAGES)})")
        enforced[key] = stage
    enforced_t.done()
    limits = Limits(
        max_requests=_ints(lt, "max_requests"),
        max_input_bytes=_ints(lt, "max_input_bytes"),
        max_upload_bytes=_ints(lt, "max_upload_bytes"),
        min_requests=_ints(lt, "min_requests"),
        max_embedding_inputs=_ints(lt, "max_embedding_inputs"),
        metadata_max_pairs=_ints(lt, "metadata_max_pairs"),
        metadata_key_max_chars=_ints(lt, "metadata_key_max_chars"),
        metadata_value_max_chars=_ints(lt, "metadata_value_max_chars"),
        max_concurrent_batches=_ints(lt, "max_concurrent_batches"),
        inline_base64_max_bytes=_ints(lt, "inline_base64_max_bytes"),
        enforced_at=MappingProxyType(enforced),
    )
    for key in enforced:
        if not hasattr(limits, key):
            raise enforced_t.error(key, "names no limit of this table")
    if limits.max_requests and limits.min_requests > limits.max_requests:
        raise lt.error("min_requests", f"{limits.min_requests} exceeds max_requests {limits.max_requests}")
    lt.done()

    rt = need("line_rules")
    line_rules = LineRules(
        required_fields=rt.strings("required_fields"),
        methods=rt.strings("methods"),
        url_must_match_endpoint=rt.get("url_must_match_endpoint", bool),
        mixed_endpoints=rt.get("mixed_endpoints", bool),
        one_model_per_file=rt.get("one_model_per_file", bool),
        model_required=rt.get("model_required", bool),
        stream_allowed=rt.get("stream_allowed", bool),
        custom_id_unique=rt.get("custom_id_unique", bool),
        custom_id_max_chars=_ints(rt, "custom_id_max_chars"),
    )
    if line_rules.mixed_endpoints and line_rules.url_must_match_endpoint:
        raise rt.error("mixed_endpoints", "contradicts url_must_match_endpoint = true")
    rt.done()

    ft = need("files")
    files = FileRules(
        api=ft.get("api", bool),
        upload_purposes=ft.strings("upload_purposes"),
        batch_purpose=ft.get("batch_purpose", str),
        output_purpose=ft.get("output_purpose", str),
        upload_status=ft.get("upload_status", str),
        batch_file_extension=ft.get("batch_file_extension", str),
        check_first_line_is_json=ft.get("check_first_line_is_json", bool),
        default_expiry_seconds=_ints(ft, "default_expiry_seconds"),
        expiry_seconds_min=_ints(ft, "expiry_seconds_min"),
        expiry_seconds_max=_ints(ft, "expiry_seconds_max"),
        not_downloadable_purposes=ft.strings("not_downloadable_purposes"),
        list_default_limit=_ints(ft, "list_default_limit"),
        list_max_limit=_ints(ft, "list_max_limit"),
        list_default_order=ft.get("list_default_order", str),
        require_jsonl_extension=ft.get("require_jsonl_extension", bool, False),
    )
    if files.require_jsonl_extension and not files.batch_file_extension:
        raise ft.error("require_jsonl_extension", "needs a batch_file_extension to require")
    if files.api and files.batch_purpose not in files.upload_purposes:
        raise ft.error("batch_purpose", f"{files.batch_purpose!r} is not among upload_purposes")
    ft.done()

    bt = need("batches")
    batches = BatchRules(
        list_default_limit=_ints(bt, "list_default_limit"),
        list_max_limit=_ints(bt, "list_max_limit"),
        list_order=bt.get("list_order", str),
        create_required=bt.strings("create_required"),
        missing_input_file=bt.get("missing_input_file", str),
        default_window=bt.get("default_window", str, ""),
    )
    if batches.default_window and batches.default_window not in windows:
        raise bt.error("default_window", f"{batches.default_window!r} is not a key of [windows] {sorted(windows)}")
    if batches.list_default_limit > batches.list_max_limit:
        raise bt.error("list_default_limit", "exceeds list_max_limit")
    if batches.missing_input_file not in ("fail_batch", "reject_create"):
        raise bt.error("missing_input_file", "expected 'fail_batch' or 'reject_create'")
    bt.done()

    ot = need("output")
    output = OutputRules(
        location=ot.get("location", str),
        empty_output_file=ot.get("empty_output_file", bool),
        empty_error_file=ot.get("empty_error_file", bool),
        ordered=ot.get("ordered", bool),
        output_filename=ot.get("output_filename", str),
        error_filename=ot.get("error_filename", str),
        ids_at_terminal=ot.get("ids_at_terminal", bool),
        usage=ot.get("usage", bool),
        line_format=ot.get("line_format", str),
        unfinished_on_expiry=ot.get("unfinished_on_expiry", str),
        unfinished_on_cancel=ot.get("unfinished_on_cancel", str),
        expired_code=ot.get("expired_code", str),
        expired_message=ot.get("expired_message", str),
        cancelled_code=ot.get("cancelled_code", str),
        cancelled_message=ot.get("cancelled_message", str),
        failed_error_file=ot.get("failed_error_file", bool, False),
        request_id_required=ot.get("request_id_required", bool, False),
    )
    if output.request_id_required and output.line_format != "openai":
        raise ot.error("request_id_required", "response.request_id belongs to line_format = 'openai' records")
    if output.failed_error_file and output.location != "files_api":
        raise ot.error("failed_error_file", "an error file of a failed batch needs location = 'files_api'")
    if output.location not in _OUTPUT_LOCATIONS:
        raise ot.error("location", f"unknown location {output.location!r} (known: {sorted(_OUTPUT_LOCATIONS)})")
    for key in ("unfinished_on_expiry", "unfinished_on_cancel"):
        if getattr(output, key) not in ("error_file", "dropped"):
            raise ot.error(key, "expected 'error_file' or 'dropped'")
    ot.done()

    st = section("storage", required=False)
    storage = None
    if st is not None:
        storage = StorageRules(
            input_reference=st.get("input_reference", str),
            output_key=st.get("output_key", str),
            error_key=st.get("error_key", str),
            alternative_output_keys=st.strings("alternative_output_keys", ()),
            alternative_error_keys=st.strings("alternative_error_keys", ()),
            object_urls=st.strings("object_urls", ()),
            presigned_urls=st.get("presigned_urls", bool, True),
            batch_principal=st.get("batch_principal", str, ""),
            principal_actions=st.strings("principal_actions", ()),
        )
        for template in storage.object_urls:
            if "{bucket}" not in template or "{key}" not in template:
                raise st.error("object_urls", f"{template!r} must name {{bucket}} and {{key}}")
        if storage.input_reference not in _INPUT_REFERENCES:
            raise st.error("input_reference", f"unknown kind (known: {sorted(_INPUT_REFERENCES)})")
        st.done()
    if output.location == "object_storage" and storage is None:
        raise ProfileError(path, "storage", "output.location = 'object_storage' needs a [storage] table")

    xt = need("expiry")
    expiry = ExpiryRules(xt.get("enabled", bool), xt.get("enters", str), xt.strings("from_roles"))
    if expiry.enabled:
        if expiry.enters not in lifecycle.roles:
            raise xt.error("enters", f"role {expiry.enters!r} has no status in lifecycle.roles")
        for role in expiry.from_roles:
            if role not in lifecycle.roles:
                raise xt.error("from_roles", f"role {role!r} has no status in lifecycle.roles")
            src, dst = lifecycle.roles[role], lifecycle.roles[expiry.enters]
            if not lifecycle.allows(src, dst):
                raise xt.error("from_roles", f"expiry from {src!r} to {dst!r} is not a transition")
    xt.done()

    mt = need("models")
    models = ModelRules(mt.get("default", str), mt.get("other", str), mt.strings("catalogue", ()))
    if not models.default or models.default == models.other:
        raise mt.error("other", "needs two different, non-empty model names")
    if models.catalogue and not {models.default, models.other} <= set(models.catalogue):
        raise mt.error("catalogue", "must include the default and the other model")
    mt.done()

    ct = need("capabilities")
    capabilities: dict[str, bool] = {}
    for cap in ct.names():
        if cap not in _CAPABILITIES:
            raise ct.error(cap, f"unknown capability (known: {sorted(_CAPABILITIES)})")
        capabilities[cap] = ct.get(cap, bool)
    ct.done()
    if capabilities.get("cancel"):
        if not lifecycle.cancellable:
            raise ProfileError(path, "lifecycle.cancellable", "capability cancel needs cancellable statuses")
        target = lifecycle.status("cancelling") or lifecycle.status("cancelled")
        if target is None:
            raise ProfileError(path, "lifecycle.roles", "capability cancel needs a cancelling or cancelled role")
        for status in lifecycle.cancellable:
            if not lifecycle.allows(status, target):
                raise ProfileError(
                    path, f"lifecycle.transitions.{status}", f"cancellable but has no edge to {target!r}"
                )
    if capabilities.get("expiry") and not expiry.enabled:
        raise ProfileError(path, "capabilities.expiry", "contradicts expiry.enabled = false")
    if capabilities.get("files_api") != files.api:
        raise ProfileError(path, "capabilities.files_api", "must equal files.api")

    compat_t = section("compat", required=False)
    compat = _parse_compat(compat_t, name) if compat_t is not None else None
    webhooks_t = section("webhooks", required=False)
    webhooks = _parse_webhooks(webhooks_t, lifecycle) if webhooks_t is not None else None
    # The capability promises notifications; without the table nobody knows how they look.
    if capabilities.get("webhooks") and webhooks is None:
        raise ProfileError(path, "webhooks", "capabilities.webhooks = true needs a [webhooks] table")
    if webhooks is not None and not capabilities.get("webhooks"):
        raise ProfileError(path, "capabilities.webhooks", "contradicts the [webhooks] table (set it true)")

    errors = _parse_errors(need("errors"), typed=dialect in _DIALECTS_WITH_ERROR_TYPE)
    validation = _parse_validation(need("validation"))
    rejected_t = section("rejected_requests", required=False)
    rejected = _parse_rejected(rejected_t, typed=dialect in _DIALECTS_WITH_ERROR_TYPE) if rejected_t is not None else {}

    deviations: list[Deviation] = []
    for i, d in enumerate(raw.get("deviations", [])):
        dt = FactTable(d, file=path, key=f"deviations[{i}]", provenance=provenance)
        deviations.append(Deviation(dt.get("check", str), dt.get("reason", str), dt.provenance.source))
        dt.done()
    root.get("deviations", list, [])
    variants: list[Variant] = []
    for i, v in enumerate(raw.get("variants", [])):
        vt = FactTable(v, file=path, key=f"variants[{i}]", provenance=provenance)
        variants.append(Variant(vt.get("name", str), vt.get("header", str), vt.get("value", str)))
        vt.table("overrides")
        vt.done()
    root.get("variants", list, [])
    root.done()

    if variant is not None:
        # A variant is chosen by its header: clients of it send the variant's value.
        chosen = next((v for v in variants if v.name == variant), None)
        if chosen is not None and chosen.header:
            headers = {**http.required_headers, chosen.header: chosen.value}
            http = dataclasses.replace(http, required_headers=MappingProxyType(headers))
    return Profile(
        name=name,
        display_name=display_name,
        dialect=dialect,
        description=description,
        http=http,
        ids=ids,
        lifecycle=lifecycle,
        windows=MappingProxyType(windows),
        endpoints=endpoints,
        limits=limits,
        line_rules=line_rules,
        files=files,
        batches=batches,
        output=output,
        storage=storage,
        expiry=expiry,
        models=models,
        capabilities=MappingProxyType(capabilities),
        errors=MappingProxyType(errors),
        validation=MappingProxyType(validation),
        deviations=tuple(deviations),
        variants=tuple(variants),
        provenance=MappingProxyType(provenance),
        path=path,
        variant=variant,
        compat=compat,
        webhooks=webhooks,
        rejected_requests=MappingProxyType(rejected),
        raw=MappingProxyType(dict(raw)),
    )


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and "value" not in value:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, "(file)", f"is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ProfileError(path, "(file)", f"cannot be read: {exc.strerror}") from None


def _load_file(path: Path, variant: str | None = None) -> Profile:
    raw = _read(path)
    if "extends" in raw:
        merged, stem, chosen, overlays = _resolve_overlay(path, raw, variant, frozenset({path.resolve()}))
        return dataclasses.replace(_parse(merged, path, chosen, stem=stem), overlays=overlays)
    base = _parse(raw, path, None)
    if variant is None:
        return base
    for i, v in enumerate(raw.get("variants", [])):
        if v.get("name") == variant:
            merged = _merge(raw, v["overrides"])
            # The overlay's facts inherit the overlay's provenance unless they state their own.
            prof = _parse(merged, path, variant)
            return prof
        del i
    known = [v.name for v in base.variants]
    raise UnknownProfileError(f"profile {base.name!r} has no variant {variant!r} (known: {known})")


def _resolve_overlay(
    path: Path, raw: Mapping[str, Any], variant: str | None, seen: frozenset[Path]
) -> tuple[dict[str, Any], str, str | None, tuple[Path, ...]]:
    """An overlay's base raw profile (its variant applied) with the overlay on top: (raw,
    the base's name, the variant, the overlay files applied, base first)."""
    extends = raw.get("extends")
    if not isinstance(extends, str) or not extends.strip():
        raise ProfileError(path, "extends", "must name a profile ('openai', 'truefoundry+bedrock') or a profile file")
    base_path, base_variant = _base_of(extends.strip(), path)
    if variant is not None and base_variant is not None and variant != base_variant:
        raise ProfileError(path, "extends", f"names variant {base_variant!r}; variant {variant!r} was asked for")
    chosen = variant or base_variant
    if base_path.resolve() in seen:
        raise ProfileError(path, "extends", f"{extends!r} leads back to an overlay already applied (a cycle)")
    base_raw = _read(base_path)
    overlays: tuple[Path, ...] = ()
    if "extends" in base_raw:
        base_raw, stem, chosen, overlays = _resolve_overlay(base_path, base_raw, chosen, seen | {base_path.resolve()})
    else:
        stem = base_path.stem
        _parse(base_raw, base_path, None)  # the base holds on its own
        if chosen is not None:
            base_raw = _with_variant(base_raw, base_path, chosen)
    own = {key: value for key, value in raw.items() if key != "extends"}
    return apply_overlay(base_raw, own, path), stem, chosen, (*overlays, path)


def _base_of(extends: str, overlay: Path) -> tuple[Path, str | None]:
    """The file and variant an overlay's `extends` names: a bundled profile (optionally
    `name+variant`) or a profile file, relative to the overlay."""
    target, variant = extends, None
    head, plus, tail = extends.rpartition("+")
    if plus and head and tail and "/" not in tail and not tail.endswith(".toml"):
        target, variant = head, tail
    if target.endswith(".toml") or "/" in target:
        candidate = Path(target)
        return Path(os.path.normpath(candidate if candidate.is_absolute() else overlay.parent / candidate)), variant
    bundled = _profiles_dir() / f"{target}.toml"
    if not bundled.is_file():
        raise ProfileError(overlay, "extends", f"names no profile {target!r} (known: {', '.join(profile_names())})")
    return bundled, variant


def _with_variant(raw: dict[str, Any], path: Path, variant: str) -> dict[str, Any]:
    for v in raw.get("variants", []):
        if v.get("name") == variant:
            return _merge(raw, v["overrides"])
    known = [v.get("name") for v in raw.get("variants", [])]
    raise UnknownProfileError(f"profile {path.stem!r} has no variant {variant!r} (known: {known})")


def _profiles_dir() -> Path:
    return Path(str(resources.files("schemas") / "profiles"))


def profile_names() -> tuple[str, ...]:
    """The names of the bundled provider profiles, sorted."""
    return tuple(sorted(p.stem for p in _profiles_dir().glob("*.toml")))


@functools.lru_cache(maxsize=64)
def _load_cached(key: str, variant: str | None) -> Profile:
    path = Path(key)
    if path.suffix == ".toml":
        return _load_file(path, variant)
    candidate = _profiles_dir() / f"{key}.toml"
    if not candidate.is_file():
        raise UnknownProfileError(f"unknown profile {key!r}; known profiles: {', '.join(profile_names())}")
    return _load_file(candidate, variant)


def load_profile(name: str | Path, variant: str | None = None) -> Profile:
    """Load a bundled profile by name (e.g. 'openai'), or any profile file by path.

    `name` may carry a variant as 'truefoundry+bedrock'. A file with a top-level `extends`
    is an overlay: it loads on top of the profile it names (see `schemas._overlay`). An
    unknown name raises `UnknownProfileError` listing the known names; a malformed or
    self-contradicting file raises `ProfileError` naming the file and the key.
    """
    key = str(name)
    if variant is None and "+" in key and not key.endswith(".toml"):
        key, variant = key.split("+", 1)
    return _load_cached(key, variant)
