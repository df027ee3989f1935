"""The strategies generate what they say: valid files the profile accepts, and broken files
whose single breakage is where the expected error says, with the catalogue's code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from conformance import strategies as strat
from schemas import load_profile
from schemas._validation import validate

PROFILE = load_profile("openai")
FAST = settings(max_examples=40, deadline=None, database=None)


def _lines(content: bytes) -> list[bytes]:
    return [line for line in content.split(b"\n") if line]


@FAST
@given(strat.valid_batches(PROFILE))
def test_valid_batches_satisfy_every_line_rule(batch: strat.GeneratedBatch) -> None:
    lines = [json.loads(line) for line in _lines(batch.content)]
    assert len(lines) == batch.requests >= max(1, PROFILE.limits.min_requests)
    ids = [line["custom_id"] for line in lines]
    assert ids == list(batch.custom_ids) and len(set(ids)) == len(ids)
    assert {line["body"]["model"] for line in lines} == {batch.model}
    for line in lines:
        validate("openai/input_line", line)
        assert line["url"] == batch.endpoint and line["method"] in PROFILE.line_rules.methods
        assert line["custom_id"] and "stream" not in line["body"]
    assert batch.breakage is None and batch.expected == ()
    batch.content.decode("utf-8")  # no lone surrogate made it in


def _broken_line(batch: strat.GeneratedBatch) -> tuple[int, Any]:
    (expected,) = batch.expected
    assert expected.line is not None
    raw = _lines(batch.content)[expected.line - 1]
    try:
        return expected.line, json.loads(raw)
    except ValueError:
        return expected.line, None


@FAST
@given(strat.broken_batches(PROFILE))
def test_broken_batches_break_exactly_the_named_line(batch: strat.GeneratedBatch) -> None:
    assert batch.breakage in strat.BREAKAGES
    (expected,) = batch.expected
    assert expected.code == PROFILE.validation[strat.BREAKAGES[batch.breakage].validation].code
    number, line = _broken_line(batch)
    raw_lines = _lines(batch.content)
    for index, raw in enumerate(raw_lines, start=1):
        if index != number:
            validate("openai/input_line", json.loads(raw))
    if batch.breakage == "invalid_json":
        assert line is None and number >= 2  # line 1 stays JSON (files.check_first_line_is_json)
    elif batch.breakage == "duplicate_custom_id":
        earlier = [json.loads(raw)["custom_id"] for raw in raw_lines[: number - 1]]
        assert line["custom_id"] in earlier
    elif batch.breakage.startswith("missing_") and batch.breakage != "missing_model":
        assert batch.breakage.removeprefix("missing_") not in line
        assert expected.param == batch.breakage.removeprefix("missing_")
    elif batch.breakage == "stream_true":
        assert line["body"]["stream"] is True
    elif batch.breakage == "mixed_models":
        assert number >= 2 and line["body"]["model"] != batch.model


@settings(max_examples=60, deadline=None, database=None)
@given(st.data())
def test_every_breakage_is_generated(data: st.DataObject) -> None:
    """Each named breakage can be drawn on its own."""
    name = data.draw(st.sampled_from(strat.applicable_breakages(PROFILE)))
    batch = data.draw(strat.broken_batches(PROFILE, kinds=[name]))
    assert batch.breakage == name


def test_build_broken_many_puts_each_breakage_on_its_own_line() -> None:
    names = strat.applicable_breakages(PROFILE)
    batch = strat.build_broken_many(PROFILE, names, prefix="p")
    assert [e.line for e in batch.expected] == list(range(2, len(names) + 2))
    assert len(_lines(batch.content)) == len(names) + 2
    validate("openai/input_line", json.loads(_lines(batch.content)[0]))
    validate("openai/input_line", json.loads(_lines(batch.content)[-1]))


def test_build_many_is_valid_jsonl() -> None:
    batch = strat.build_many(PROFILE, 1000, prefix="m")
    lines = _lines(batch.content)
    assert len(lines) == 1000 and len(batch.custom_ids) == 1000
    validate("openai/input_line", json.loads(lines[-1]))
    assert strat.build_many(PROFILE, 0).content == b""


def test_unknown_breakage_is_named() -> None:
    with pytest.raises(KeyError, match="known"):
        strat.build_broken(PROFILE, "no_such_breakage")
    with pytest.raises(ValueError, match="known"):
        strat.broken_batches(PROFILE, kinds=["no_such_breakage"])


def test_settings_profiles_and_the_cap() -> None:
    assert set(strat.SETTINGS) == {"dev", "ci", "nightly"}
    assert strat.settings_for("nightly", "emulator").max_examples == strat.SETTINGS["nightly"].max_examples
    capped = strat.settings_for("nightly", "url")
    assert capped.max_examples == strat.NON_EMULATOR_MAX_EXAMPLES
    assert Phase.shrink not in capped.phases
    with pytest.raises(ValueError, match="dev"):
        strat.settings_for("weekly", "emulator")
    settings.get_profile("batchconf-ci")  # registered, namespaced
