"""Profile overlays: a file that `extends` a profile, and the writer of such files.

An overlay restates facts of its base, each with its own provenance, and loads with
`load_profile(path)` (what `--profile ./overlay.toml` calls). `overlay_text` writes one from
observed values; a round trip turns an unverified fact into a verified one with the observed
value, the observed null included (written "", the profiles' spelling of an absent value).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from schemas import ProfileError, UnknownProfileError, load_profile, overlay_text

SOURCE = "observed on fake-openai (http://127.0.0.1:9/v1), 2026-11-20"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_turns_inferred_facts_into_verified_observations(tmp_path: Path) -> None:
    base = load_profile("openai")
    assert base.errors["batch_not_found"].param == "id"
    assert not base.fact("errors.batch_not_found.param").verified
    text = overlay_text(
        "openai",
        [
            ("errors.batch_not_found.param", None, SOURCE),
            ("validation.custom_id_invalid.code", "missing_required_parameter", SOURCE),
            ("errors.batch_not_found.status", 404, SOURCE),
            ("lifecycle.cancel_idempotent", ["cancelled"], SOURCE),
        ],
    )
    assert tomllib.loads(text)["extends"] == "openai"
    profile = load_profile(_write(tmp_path / "observed.toml", text))
    assert profile.name == "openai" and profile.dialect == "openai"
    assert profile.overlays == (tmp_path / "observed.toml",)
    assert profile.errors["batch_not_found"].param is None
    param = profile.fact("errors.batch_not_found.param")
    assert param.verified and param.source == SOURCE and "null" in param.note
    assert profile.validation["custom_id_invalid"].code == "missing_required_parameter"
    assert profile.fact("validation.custom_id_invalid.code").verified
    assert profile.lifecycle.cancel_idempotent == frozenset({"cancelled"})
    # Facts the overlay does not restate keep the base's value and provenance.
    message = profile.fact("errors.batch_not_found.message")
    assert message == base.fact("errors.batch_not_found.message") and not message.verified
    assert profile.errors["batch_not_found"].message == base.errors["batch_not_found"].message
    assert profile.fact("validation.custom_id_invalid.param") == base.fact("validation.custom_id_invalid.param")
    assert profile.limits == base.limits


def test_overlay_loads_by_relative_path_as_the_profile_option_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "overlay.toml", overlay_text("openai", [("batches.list_order", "asc", SOURCE)]))
    monkeypatch.chdir(tmp_path)
    profile = load_profile("./overlay.toml")
    assert profile.batches.list_order == "asc"
    assert profile.fact("batches.list_order").source == SOURCE


def test_table_and_file_provenance_apply_to_the_overlays_facts_only(tmp_path: Path) -> None:
    text = """
extends = "openai"
source = "the file's source"
verified = true

[output]
empty_error_file = true

[errors.batch_not_found]
source = "the table's source"
verified = false
code = "not_found"
param = { value = "batch_id", source = "inline", verified = true }
"""
    profile = load_profile(_write(tmp_path / "provenance.toml", text))
    assert profile.fact("output.empty_error_file").source == "the file's source"
    assert profile.fact("output.empty_output_file") == load_profile("openai").fact("output.empty_output_file")
    code = profile.fact("errors.batch_not_found.code")
    assert (code.source, code.verified) == ("the table's source", False)
    assert profile.fact("errors.batch_not_found.param").source == "inline"
    assert profile.fact("errors.batch_not_found.status") == load_profile("openai").fact("errors.batch_not_found.status")


def test_overlay_of_a_variant_and_of_an_overlay(tmp_path: Path) -> None:
    variant = load_profile("truefoundry+bedrock")
    first = _write(
        tmp_path / "first.toml", overlay_text("truefoundry+bedrock", [("batches.list_order", "asc", SOURCE)])
    )
    profile = load_profile(first)
    assert (profile.name, profile.variant) == ("truefoundry", "bedrock")
    assert profile.http.required_headers == variant.http.required_headers
    assert profile.limits.min_requests == variant.limits.min_requests
    (tmp_path / "sub").mkdir()
    second = _write(tmp_path / "sub" / "second.toml", overlay_text("../first.toml", [("output.usage", False, "2nd")]))
    chained = load_profile(second)
    assert chained.overlays == (first, second)
    assert (chained.batches.list_order, chained.output.usage, chained.variant) == ("asc", False, "bedrock")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('extends = "nope"\n', "extends", "names no profile 'nope'"),
        ("extends = 3\n", "extends", "must name a profile"),
        ('extends = "openai"\n[batches]\nlist_order = "asc"\n', "batches.list_order", "must state its `source`"),
        ('extends = "openai"\nsource = "s"\nverified = true\n[batches]\nlist_ordr = "asc"\n', "batches.list_ordr", ""),
        ('extends = "loop.toml"\n', "extends", "a cycle"),
    ],
    ids=["unknown-base", "not-a-name", "fact-without-source", "typo", "cycle"],
)
def test_broken_overlays_are_refused_naming_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = _write(tmp_path / "loop.toml", text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_overlay_of_an_unknown_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownProfileError, match="no variant 'nope'"):
        load_profile(
            _write(tmp_path / "v.toml", overlay_text("truefoundry+nope", [("batches.list_order", "asc", "s")]))
        )


def test_writer_quotes_keys_and_values_and_merges_repeated_observations() -> None:
    text = overlay_text(
        "openai",
        [
            ("windows.48h", 172800, "a"),
            ('http.required_headers.x "odd" key', 'say "hi"\n\\', "b"),
            ("errors.batch_not_found.param", None, "c"),
            ("errors.batch_not_found.param", None, "d"),
            ("limits.ratio", 0.5, "e"),
            ("models.catalogue", ["a", None], "f"),
        ],
    )
    data = tomllib.loads(text)
    assert data["windows"]["48h"]["value"] == 172800
    assert data["http"]["required_headers"]['x "odd" key']["value"] == 'say "hi"\n\\'
    param = data["errors"]["batch_not_found"]["param"]
    assert param == {"value": "", "source": "c; d", "verified": True, "note": param["note"]}
    assert data["limits"]["ratio"]["value"] == 0.5
    assert data["models"]["catalogue"]["value"] == ["a", ""]


@pytest.mark.parametrize(
    "facts",
    [
        [("errors.batch_not_found.param", None, "a"), ("errors.batch_not_found.param", "id", "b")],
        [("errors.batch_not_found", "x", "a"), ("errors.batch_not_found.param", "id", "b")],
        [("errors..param", "x", "a")],
        [("extends", "x", "a")],
        [("limits.max_requests", object(), "a")],
    ],
    ids=["conflicting-values", "fact-and-table", "empty-segment", "reserved-key", "not-a-toml-value"],
)
def test_writer_refuses_what_it_cannot_write_faithfully(facts: list[tuple[str, object, str]]) -> None:
    with pytest.raises((ValueError, TypeError)):
        overlay_text("openai", facts)
