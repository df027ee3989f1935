"""Batch input JSONL, valid and broken, generated from a profile: the one module of strategies.

- `valid_batches(profile, ...)`: files every line of which the profile accepts: unique,
  arbitrary-unicode custom_ids, bodies of varied shape and size for the batch's endpoint,
  varied JSON spellings (key order, escaping, whitespace, trailing newline).
- `broken_batches(profile, ...)`: a valid file with exactly one named breakage (`BREAKAGES`),
  together with the `errors.data` entry the profile says validation must report for it.
- `build_valid` / `build_broken`: the same files, deterministic, for scenarios.

Settings: `SETTINGS` holds the dev, ci and nightly profiles (also registered with
Hypothesis as `batchconf-dev`, `batchconf-ci`, `batchconf-nightly`); `settings_for` applies the
hard cap for targets other than the emulator (a few examples and no shrinking: every
example is a batch someone may pay for).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from schemas import Profile

from .dialects import default_endpoint
from .invariants import ExpectedLineError

__all__ = [
    "BREAKAGES",
    "DEFAULT_MODEL",
    "DEFAULT_OTHER_MODEL",
    "NON_EMULATOR_MAX_EXAMPLES",
    "SETTINGS",
    "Breakage",
    "GeneratedBatch",
    "applicable_breakages",
    "body_for",
    "broken_batches",
    "build_broken",
    "build_broken_many",
    "build_many",
    "build_valid",
    "custom_ids",
    "default_endpoint",
    "encode_lines",
    "register_profiles",
    "settings_for",
    "valid_batches",
]

_NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
#: The model named in generated bodies (the emulator's mock answers any name).
DEFAULT_MODEL = "gpt-4o-mini"  # only where no profile is at hand; generators use profile.models
#: A second model, for files that mix models.
DEFAULT_OTHER_MODEL = "gpt-4.1-mini"
#: At most this many generated batches per property test against a target that is not the emulator.
NON_EMULATOR_MAX_EXAMPLES = 3

_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.data_too_large)


def _profile_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=_SUPPRESSED)


#: The suite's Hypothesis settings profiles, by short name.
SETTINGS: dict[str, settings] = {
    "dev": _profile_settings(10),
    "ci": _profile_settings(30),
    "nightly": _profile_settings(300),
}
#: Largest number of lines of a generated file, per settings profile.
MAX_LINES = {"dev": 8, "ci": 12, "nightly": 40}


def register_profiles() -> None:
    """Register `SETTINGS` with Hypothesis as `batchconf-<name>` (idempotent; namespaced so a
    project's own `ci` profile is never overwritten)."""
    for name, value in SETTINGS.items():
        settings.register_profile(f"batchconf-{name}", value)


def settings_for(name: str, target_kind: str) -> settings:
    """The settings of profile `name` (dev, ci, nightly) for a target of `target_kind`
    ('emulator' or 'url'): other targets get at most `NON_EMULATOR_MAX_EXAMPLES` examples
    and no shrinking."""
    if name not in SETTINGS:
        raise ValueError(f"unknown Hypothesis settings profile {name!r}; known: {sorted(SETTINGS)}")
    base = SETTINGS[name]
    if target_kind == "emulator":
        return base
    return settings(
        base,
        max_examples=min(base.max_examples, NON_EMULATOR_MAX_EXAMPLES),
        phases=(Phase.explicit, Phase.generate),
    )


register_profiles()


# -- What a generated file is ----------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedBatch:
    """A batch input file and what the contract says about it.

    `custom_ids` are the ids of the lines (valid files: every line's, in file order);
    `breakage` names what is wrong (None for a valid file) and `expected` the `errors.data`
    entries validation must report.
    """

    endpoint: str
    model: str
    lines: tuple[Any, ...]
    content: bytes
    custom_ids: tuple[str, ...]
    breakage: str | None = None
    expected: tuple[ExpectedLineError, ...] = ()

    @property
    def requests(self) -> int:
        """Number of lines."""
        return len(self.lines)


@dataclass(frozen=True)
class Breakage:
    """One way to break a valid file: the profile rule it breaks and how.

    `applies(profile)` says whether the profile forbids it; `apply(lines, index, profile,
    other_model)` breaks line `index` (0-based) in place and returns the ExpectedLineError.
    `min_index` is the first line it may hit (a duplicate needs an earlier line).
    """

    name: str
    validation: str
    applies: Callable[[Profile], bool]
    apply: Callable[[list[Any], int, Profile, str], ExpectedLineError]
    min_index: int = 0
    raw: bool = field(default=False)


def body_for(endpoint: str, model: str, text: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A minimal valid request body for `endpoint` carrying `text`."""
    if endpoint.endswith("/embeddings") or endpoint.endswith("/embed"):
        body: dict[str, Any] = {"model": model, "input": text or "x"}
    elif endpoint.endswith("/completions") and not endpoint.endswith("chat/completions"):
        body = {"model": model, "prompt": text}
    elif endpoint.endswith("/responses"):
        body = {"model": model, "input": text}
    elif endpoint.endswith("/moderations"):
        body = {"model": model, "input": text or "x"}
    else:
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(extra or {})
    return body


def _line(custom_id: str, endpoint: str, body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def encode_lines(lines: Sequence[Any], *, ensure_ascii: bool = False, trailing_newline: bool = True) -> bytes:
    """JSONL bytes of `lines` (a `str` item is written as is: a deliberately broken line)."""
    out = [
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=ensure_ascii, separators=(",", ":"))
        for line in lines
    ]
    text = "\n".join(out) + ("\n" if trailing_newline and out else "")
    return text.encode("utf-8")


def _ids(lines: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(line["custom_id"]) for line in lines if isinstance(line, dict) and "custom_id" in line)


# -- Breakages ---------------------------------------------------------------------------------


def _has(name: str) -> Callable[[Profile], bool]:
    return lambda profile: name in profile.validation


def _invalid_json(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    text = json.dumps(lines[i], ensure_ascii=False)
    lines[i] = text[: max(1, len(text) // 2)]  # a cut-off object never parses
    return ExpectedLineError.of(profile, "invalid_json_line", i + 1)


def _missing(field_name: str) -> Callable[[list[Any], int, Profile, str], ExpectedLineError]:
    def apply(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
        del lines[i][field_name]
        return ExpectedLineError.of(profile, "missing_field", i + 1, param=field_name)

    return apply


def _duplicate(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["custom_id"] = lines[0]["custom_id"]
    return ExpectedLineError.of(profile, "duplicate_custom_id", i + 1, value=lines[0]["custom_id"])


def _wrong_url(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    current = lines[i]["url"]
    lines[i]["url"] = next((e for e in profile.endpoints if e != current), current + "/not-the-endpoint")
    return ExpectedLineError.of(profile, "invalid_url", i + 1, value=lines[i]["url"])


def _unknown_url(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["url"] = lines[i]["url"].rstrip("/") + "/batchconf-no-such-endpoint"
    return ExpectedLineError.of(profile, "invalid_url", i + 1, value=lines[i]["url"])


def _other_url(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    current = lines[i]["url"]
    urls = [e for e in profile.endpoints if e != current]
    lines[i]["url"] = next((e for e in urls if e.startswith("/v1/")), urls[0] if urls else current + "/other")
    return ExpectedLineError.of(profile, "invalid_url", i + 1, value=lines[i]["url"])


def _stream(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["body"]["stream"] = True
    return ExpectedLineError.of(profile, "streaming_unsupported", i + 1)


def _mixed(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["body"]["model"] = other
    return ExpectedLineError.of(profile, "mixed_models", i + 1, value=other)


def _method(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["method"] = "GET" if "GET" not in profile.line_rules.methods else "PATCH"
    return ExpectedLineError.of(profile, "invalid_method", i + 1, value=lines[i]["method"])


def _no_model(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    del lines[i]["body"]["model"]
    return ExpectedLineError.of(profile, "missing_model", i + 1)


def _body_not_object(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["body"] = "not an object"
    return ExpectedLineError.of(profile, "invalid_body", i + 1)


def _empty_id(lines: list[Any], i: int, profile: Profile, other: str) -> ExpectedLineError:
    lines[i]["custom_id"] = ""
    return ExpectedLineError.of(profile, "custom_id_invalid", i + 1)


def _required(name: str) -> Callable[[Profile], bool]:
    return lambda p: name in p.line_rules.required_fields and "missing_field" in p.validation


_ALL: tuple[Breakage, ...] = (
    Breakage("invalid_json", "invalid_json_line", _has("invalid_json_line"), _invalid_json, raw=True),
    Breakage("missing_custom_id", "missing_field", _required("custom_id"), _missing("custom_id")),
    Breakage("missing_method", "missing_field", _required("method"), _missing("method")),
    Breakage("missing_url", "missing_field", _required("url"), _missing("url")),
    Breakage("missing_body", "missing_field", _required("body"), _missing("body")),
    Breakage(
        "duplicate_custom_id",
        "duplicate_custom_id",
        lambda p: p.line_rules.custom_id_unique and "duplicate_custom_id" in p.validation,
        _duplicate,
        min_index=1,
    ),
    Breakage(
        "wrong_url",
        "invalid_url",
        lambda p: p.line_rules.url_must_match_endpoint and "invalid_url" in p.validation,
        _wrong_url,
    ),
    Breakage(
        "unknown_url",
        "invalid_url",
        lambda p: p.line_rules.mixed_endpoints and "invalid_url" in p.validation,
        _unknown_url,
    ),
    # Where a line's url need not equal the batch endpoint (Azure's /chat/completions form)
    # the lines must still share one url.
    Breakage(
        "url_differs",
        "invalid_url",
        lambda p: (
            not p.line_rules.url_must_match_endpoint
            and not p.line_rules.mixed_endpoints
            and "invalid_url" in p.validation
        ),
        _other_url,
        min_index=1,
    ),
    Breakage(
        "stream_true",
        "streaming_unsupported",
        lambda p: not p.line_rules.stream_allowed and "streaming_unsupported" in p.validation,
        _stream,
    ),
    Breakage(
        "mixed_models",
        "mixed_models",
        lambda p: p.line_rules.one_model_per_file and "mixed_models" in p.validation,
        _mixed,
        min_index=1,
    ),
    Breakage(
        "invalid_method",
        "invalid_method",
        lambda p: "invalid_method" in p.validation and "method" in p.line_rules.required_fields,
        _method,
    ),
    Breakage(
        "missing_model",
        "missing_model",
        lambda p: p.line_rules.model_required and "missing_model" in p.validation,
        _no_model,
    ),
    Breakage("body_not_object", "invalid_body", _has("invalid_body"), _body_not_object),
    Breakage("empty_custom_id", "custom_id_invalid", _has("custom_id_invalid"), _empty_id),
)
#: Every named breakage, in a stable order.
BREAKAGES: dict[str, Breakage] = {b.name: b for b in _ALL}


def applicable_breakages(profile: Profile) -> tuple[str, ...]:
    """The breakages the profile forbids (the others are not errors there)."""
    return tuple(b.name for b in _ALL if b.applies(profile))


def _first_breakable(breakage: Breakage, profile: Profile) -> int:
    # A file whose first line is not JSON is refused at upload by some providers
    # (files.check_first_line_is_json): keep line 1 parseable.
    if breakage.raw and profile.files.check_first_line_is_json:
        return max(1, breakage.min_index)
    return breakage.min_index


# -- Deterministic builders (scenarios) -------------------------------------------------------


def batch_size(profile: Profile, n: int) -> int:
    """`n`, raised to the profile's minimum number of requests per batch (Bedrock: 100), so
    a scenario is valid wherever it runs."""
    return max(n, profile.limits.min_requests)


def build_valid(
    profile: Profile,
    n: int,
    *,
    prefix: str = "req",
    model: str | None = None,
    endpoint: str | None = None,
    extra: Callable[[int], dict[str, Any] | None] | None = None,
) -> GeneratedBatch:
    """`n` valid lines with custom_ids `{prefix}-{i}`; `extra(i)` adds body keys to line i."""
    model = model or profile.models.default
    ep = endpoint or default_endpoint(profile)
    lines = [
        _line(f"{prefix}-{i}", ep, body_for(ep, model, f"line {i} of {prefix}", extra(i) if extra else None))
        for i in range(n)
    ]
    return GeneratedBatch(ep, model, tuple(lines), encode_lines(lines), _ids(lines))


def build_broken(
    profile: Profile,
    breakage: str,
    *,
    n: int = 3,
    line: int = 2,
    prefix: str = "broken",
    model: str | None = None,
    other_model: str | None = None,
) -> GeneratedBatch:
    """`n` lines, line `line` (1-based) broken by `breakage` (KeyError names the known ones)."""
    model = model or profile.models.default
    other_model = other_model or profile.models.other
    if breakage not in BREAKAGES:
        raise KeyError(f"unknown breakage {breakage!r}; known: {sorted(BREAKAGES)}")
    spec = BREAKAGES[breakage]
    index = max(line - 1, _first_breakable(spec, profile))
    if index >= n:
        raise ValueError(f"breakage {breakage!r} needs at least {index + 1} lines, got n={n}")
    valid = build_valid(profile, n, prefix=prefix, model=model)
    lines = json.loads(json.dumps(list(valid.lines)))
    expected = spec.apply(lines, index, profile, other_model)
    return replace(
        valid,
        lines=tuple(lines),
        content=encode_lines(lines),
        custom_ids=_ids(lines),
        breakage=breakage,
        expected=(expected,),
    )


def build_broken_many(
    profile: Profile,
    breakages: Sequence[str],
    *,
    prefix: str = "broken",
    model: str | None = None,
    other_model: str | None = None,
) -> GeneratedBatch:
    """One file breaking each of `breakages` on its own line (lines 2..k+1, in order), between
    a valid first line (the reference for model and custom_id rules) and a valid last line.

    `expected` holds one entry per breakage, in line order."""
    model = model or profile.models.default
    other_model = other_model or profile.models.other
    unknown = [b for b in breakages if b not in BREAKAGES]
    if unknown:
        raise KeyError(f"unknown breakages {unknown}; known: {sorted(BREAKAGES)}")
    valid = build_valid(profile, len(breakages) + 2, prefix=prefix, model=model)
    lines = json.loads(json.dumps(list(valid.lines)))
    expected = tuple(
        BREAKAGES[name].apply(lines, index, profile, other_model) for index, name in enumerate(breakages, start=1)
    )
    return replace(
        valid,
        lines=tuple(lines),
        content=encode_lines(lines),
        custom_ids=_ids(lines),
        breakage=",".join(breakages),
        expected=expected,
    )


def build_many(profile: Profile, n: int, *, prefix: str = "many", model: str | None = None) -> GeneratedBatch:
    """`n` small valid lines, fast (for limit tests: tens of thousands of lines). `lines`
    is left empty to spare the memory; `custom_ids` are `{prefix}-{i}`."""
    model = model or profile.models.default
    endpoint = default_endpoint(profile)
    body = json.dumps(body_for(endpoint, model, "hi"), separators=(",", ":"))
    head = '{"custom_id":'
    tail = f',"method":"POST","url":{json.dumps(endpoint)},"body":{body}}}\n'
    ids = tuple(f"{prefix}-{i}" for i in range(n))
    content = "".join(head + json.dumps(cid) + tail for cid in ids).encode("utf-8")
    return GeneratedBatch(endpoint, model, (), content, ids)


# -- Strategies ----------------------------------------------------------------------------------


def custom_ids(profile: Profile, max_size: int = 40) -> st.SearchStrategy[str]:
    """Non-empty unicode custom_ids (no lone surrogates: they cannot be UTF-8 encoded),
    within the profile's length limit."""
    limit = profile.line_rules.custom_id_max_chars
    size = min(max_size, limit) if limit else max_size
    return st.text(st.characters(exclude_categories=_NO_SURROGATES), min_size=1, max_size=size)


def _repeat(word: str, times: int) -> str:
    return " ".join([word] * times)


def _texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.text(st.characters(exclude_categories=_NO_SURROGATES), max_size=400),
        st.builds(_repeat, st.text("abcdefgh ", min_size=1, max_size=8), st.integers(1, 300)),
    )


def _extras(endpoint: str) -> st.SearchStrategy[dict[str, Any]]:
    if not endpoint.endswith("chat/completions"):
        return st.just({})
    return st.fixed_dictionaries(
        {},
        optional={
            "max_tokens": st.integers(1, 64),
            "temperature": st.floats(0, 2, allow_nan=False, allow_infinity=False),
            "n": st.just(1),
            "stop": st.lists(st.text(min_size=1, max_size=4), max_size=2),
        },
    )


@st.composite
def _valid(
    draw: st.DrawFn, profile: Profile, model: str, endpoint: str | None, min_lines: int, max_lines: int
) -> GeneratedBatch:
    ep = endpoint or default_endpoint(profile)
    ids = draw(st.lists(custom_ids(profile), min_size=min_lines, max_size=max_lines, unique=True))
    lines = []
    for cid in ids:
        body = body_for(ep, model, draw(_texts()), draw(_extras(ep)))
        line = _line(cid, ep, body)
        if draw(st.booleans()):  # key order must not matter
            line = dict(reversed(list(line.items())))
        lines.append(line)
    content = encode_lines(lines, ensure_ascii=draw(st.booleans()), trailing_newline=draw(st.booleans()))
    return GeneratedBatch(ep, model, tuple(lines), content, tuple(ids))


def valid_batches(
    profile: Profile,
    *,
    model: str | None = None,
    endpoint: str | None = None,
    max_lines: int = 8,
) -> st.SearchStrategy[GeneratedBatch]:
    """Files the profile accepts: 1..max_lines lines (at least the profile's minimum), unique
    unicode custom_ids, varied bodies and sizes, varied JSON spelling."""
    model = model or profile.models.default
    low = max(1, profile.limits.min_requests)
    high = max(low, max_lines)
    if profile.limits.max_requests:
        high = min(high, profile.limits.max_requests)
    return _valid(profile, model, endpoint, low, high)


@st.composite
def _broken(
    draw: st.DrawFn, profile: Profile, names: tuple[str, ...], model: str, other_model: str, max_lines: int
) -> GeneratedBatch:
    name = draw(st.sampled_from(names))
    spec = BREAKAGES[name]
    first = _first_breakable(spec, profile)
    low = max(first + 1, profile.limits.min_requests, 2)
    valid = draw(_valid(profile, model, None, low, max(low, max_lines)))
    index = draw(st.integers(first, len(valid.lines) - 1))
    lines = json.loads(json.dumps(list(valid.lines)))
    expected = spec.apply(lines, index, profile, other_model)
    content = encode_lines(lines, ensure_ascii=draw(st.booleans()), trailing_newline=draw(st.booleans()))
    return replace(
        valid, lines=tuple(lines), content=content, custom_ids=_ids(lines), breakage=name, expected=(expected,)
    )


def broken_batches(
    profile: Profile,
    *,
    kinds: Sequence[str] | None = None,
    model: str | None = None,
    other_model: str | None = None,
    max_lines: int = 8,
) -> st.SearchStrategy[GeneratedBatch]:
    """A valid file with exactly one named breakage on one line, and the errors.data entry
    (code, 1-based line, param) the profile's validation catalogue says it produces.

    `kinds` limits the breakages (default: every one the profile forbids)."""
    model = model or profile.models.default
    other_model = other_model or profile.models.other
    names = tuple(kinds) if kinds is not None else applicable_breakages(profile)
    unknown = [k for k in names if k not in BREAKAGES]
    if unknown or not names:
        raise ValueError(f"unknown or no breakages {unknown or names!r}; known: {sorted(BREAKAGES)}")
    return _broken(profile, names, model, other_model, max_lines)
