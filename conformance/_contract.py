"""The vocabulary every check speaks: a violation, the citation of a profile fact, a schema check.

Kept apart from `conformance.invariants` so that the dialect adapters (`conformance.dialects`),
which the invariants use, can raise the same violations without importing the invariants.
Everything here is re-exported by `conformance.invariants`.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from schemas import Profile
from schemas._validation import SchemaValidationError, validate

__all__ = [
    "NOT_OBSERVED",
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


# How much of a received or expected value a message quotes, and how a longer one is cut:
# its head and its tail, so that both ends of a long JSON body stay readable.
_QUOTE_LIMIT: Final = 4000
_QUOTE_TAIL: Final = 1000


class _Unobserved(enum.Enum):
    NOT_OBSERVED = "NOT_OBSERVED"

    def __repr__(self) -> str:
        return "NOT_OBSERVED"


#: `ContractViolation.observed` when the check has no single value of the target to offer
#: for its fact (the target showed nothing, or several things, or something that is not a
#: value of that fact). Distinct from None, which a target can show (a null `param`).
NOT_OBSERVED: Final = _Unobserved.NOT_OBSERVED


class ContractViolation(AssertionError):
    """The target broke the contract. `check` names the rule; the message explains.

    `inferred` names the profile fact the check rests on when that fact is marked unverified
    and nothing verified backs the check: such a failure is a deviation from what we only
    inferred, not evidence of a broken contract (reported, not failing, unless the run is
    strict about facts).

    For such a deviation `fact` is the dotted profile key the check cites
    (`errors.batch_not_found.param`; a table's key where the check rests on a whole table)
    and `observed` the value the target showed for it, JSON-serialisable (None for a null),
    or `NOT_OBSERVED` when the check has no single value to offer: what a profile overlay
    would record as the observed fact (`schemas.overlay_text`). Both are unset (None,
    `NOT_OBSERVED`) otherwise.
    """

    def __init__(
        self,
        check: str,
        message: str,
        *,
        inferred: str | None = None,
        fact: str | None = None,
        observed: object = NOT_OBSERVED,
    ) -> None:
        self.check = check
        self.inferred = inferred
        self.fact = fact
        self.observed = observed
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
    observed: object = NOT_OBSERVED,
) -> ContractViolation:
    """A ContractViolation saying what was received, what was expected and where that is said.

    `key` is the profile fact the check rests on. When that fact is unverified (and no
    `source` backs the check), the violation is a deviation: it carries the fact and
    `observed`, the value the target showed for that fact (pass it where the fact is one
    value: a code, a type, a param, a status, a name pattern; None is a null).

    Pass as `received` the part of the answer the check is about; a long value is cut in
    the middle, keeping its head and tail.
    """
    where = []
    if profile is not None and key is not None:
        where.append(cite(profile, key))
    if source is not None:
        where.append(source)
    said = "; ".join(where) if where else "the contract"
    inferred = None
    fact = None
    if profile is not None and key is not None and source is None:
        found = _provenance(profile, key)
        if found is not None and not found.verified:
            inferred = f"{key} (source: {found.source})"
            fact = key
    return ContractViolation(
        check,
        f"{what}\n  received: {_short(received)}\n  expected: {_short(expected)}\n  contract: {said}",
        inferred=inferred,
        fact=fact,
        observed=observed if fact is not None else NOT_OBSERVED,
    )


def _short(value: object, limit: int = _QUOTE_LIMIT) -> str:
    """`value` quoted, cut in the middle when longer than `limit` (head and tail kept)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    tail = min(_QUOTE_TAIL, limit // 4)
    head = limit - tail
    return f"{text[:head]} … [{len(text) - head - tail} of {len(text)} chars cut] … {text[-tail:]}"


# -- Schemas ---------------------------------------------------------------------------------


def schema_name(profile: Profile, kind: str) -> str:
    """The JSON Schema of wire object `kind` ('batch', 'file', 'error', ...) in the profile's dialect."""
    return f"{profile.dialect}/{kind}"


def check_schema(profile: Profile, kind: str, instance: object, where: str) -> None:
    """`instance` validates against the dialect's schema `kind`, or ContractViolation.

    The violation quotes the part of `instance` the broken rule judged, and cites the
    rule's own source (its `$comment` in the schema) and where the rule sits.
    """
    name = schema_name(profile, kind)
    try:
        validate(name, instance)
    except SchemaValidationError as exc:
        first = exc.violations[0]
        doc, _, pointer = (first.rule or f"{name}#").partition("#")
        location = f"schemas/json/{doc}.schema.json#{pointer}"
        raise violation(
            f"schema:{kind}",
            f"{where} does not validate against JSON Schema {name!r}: {exc}",
            received=f"{first.path} = {_short(repr(first.received), _QUOTE_LIMIT // 2)}",
            expected=f"{first.path} satisfying the schema's {first.validator!r} rule",
            source=f"{first.source} ({location})" if first.source else location,
        ) from None
