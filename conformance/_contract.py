"""The vocabulary every check speaks: a violation, the citation of a profile fact, a schema check.

Kept apart from `conformance.invariants` so that the dialect adapters (`conformance.dialects`),
which the invariants use, can raise the same violations without importing the invariants.
Everything here is re-exported by `conformance.invariants`.
"""

from __future__ import annotations

from typing import Any

from schemas import Profile
from schemas._validation import SchemaValidationError, validate

__all__ = [
    "SPEC_COUNTS",
    "SPEC_ENVELOPE",
    "SPEC_EXACTLY_ONCE",
    "SPEC_LIST",
    "SPEC_RECORDS",
    "ContractViolation",
    "check_schema",
    "cite",
    "schema_name",
    "violation",
]

# Sources of rules that are not one profile fact but the shared contract of every dialect.
SPEC_COUNTS = "openai-batch-spec.md §3.2 (completed = output lines, failed = error lines); peers.md §0.2, §D"
SPEC_EXACTLY_ONCE = "peers.md §0.2, §C.6, §D: every input custom_id exactly once across output + error files"
SPEC_RECORDS = "openai-batch-spec.md §3.2: successes in the output file, failures in the error file"
SPEC_ENVELOPE = "openai-batch-spec.md §6: the error envelope {error: {message, type, param, code}}"
SPEC_LIST = "openai-batch-spec.md §5: list pages carry object, data, has_more, first_id, last_id"


class ContractViolation(AssertionError):
    """The target broke the contract. `check` names the rule; the message explains.

    `inferred` names the profile fact the check rests on when that fact is marked unverified
    and nothing verified backs the check: such a failure is a deviation from what we only
    inferred, not evidence of a broken contract (reported, not failing, unless the run is
    strict about facts).
    """

    def __init__(self, check: str, message: str, *, inferred: str | None = None) -> None:
        self.check = check
        self.inferred = inferred
        super().__init__(f"[{check}] {message}")


# -- Citing the contract ---------------------------------------------------------------------


def _provenance(profile: Profile, key: str) -> Any:
    provenance = profile.provenance
    found = provenance.get(key)
    if found is None:
        found = next((p for k, p in provenance.items() if k.startswith(key + ".")), None)
    probe = key
    while found is None and "." in probe:
        probe = probe.rsplit(".", 1)[0]
        found = provenance.get(probe) or next((p for k, p in provenance.items() if k.startswith(probe + ".")), None)
    return found


def cite(profile: Profile, key: str) -> str:
    """`profile 'openai', fact `key` (source: ...; verified)` for a dotted fact key.

    A key naming a table (`errors.batch_not_found`) cites its first fact; an unknown key
    cites its closest known parent.
    """
    found = _provenance(profile, key)
    where = f"profile {profile.name!r}" + (f" (variant {profile.variant!r})" if profile.variant else "")
    if found is None:
        return f"{where}, fact `{key}`"
    state = "verified" if found.verified else "UNVERIFIED"
    note = f"; note: {found.note}" if found.note else ""
    return f"{where}, fact `{key}` (source: {found.source}; {state}{note})"


def violation(
    check: str,
    what: str,
    *,
    received: object,
    expected: object,
    profile: Profile | None = None,
    key: str | None = None,
    source: str | None = None,
) -> ContractViolation:
    """A ContractViolation saying what was received, what was expected and where that is said."""
    where = []
    if profile is not None and key is not None:
        where.append(cite(profile, key))
    if source is not None:
        where.append(source)
    said = "; ".join(where) if where else "the contract"
    inferred = None
    if profile is not None and key is not None and source is None:
        found = _provenance(profile, key)
        if found is not None and not found.verified:
            inferred = f"{key} (source: {found.source})"
    return ContractViolation(
        check,
        f"{what}\n  received: {_short(received)}\n  expected: {_short(expected)}\n  contract: {said}",
        inferred=inferred,
    )


def _short(value: object, limit: int = 600) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


# -- Schemas ---------------------------------------------------------------------------------


def schema_name(profile: Profile, kind: str) -> str:
    """The JSON Schema of wire object `kind` ('batch', 'file', 'error', ...) in the profile's dialect."""
    return f"{profile.dialect}/{kind}"


def check_schema(profile: Profile, kind: str, instance: object, where: str) -> None:
    """`instance` validates against the dialect's schema `kind`, or ContractViolation."""
    name = schema_name(profile, kind)
    try:
        validate(name, instance)
    except SchemaValidationError as exc:
        raise violation(
            f"schema:{kind}",
            f"{where} does not validate against JSON Schema {name!r}: {exc}",
            received=instance,
            expected=f"an instance of {name}",
            source=f"schemas/json/{name}.schema.json",
        ) from None
