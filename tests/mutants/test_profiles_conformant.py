"""Every profile the emulator serves is one it conforms to: the suite passes in-process.

A profile change that the emulator does not follow (or a suite check that does not hold
for a dialect) shows up here, named by profile.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator._mutants import run_mutant
from schemas import load_profile, profile_names

#: The (dialect, output location) pairs the emulator serves: the OpenAI dialect with the Files
#: API and on object storage (Scaleway), ScaiGrid's native one with its results URL.
SERVED_SHAPES = {("openai", "files_api"), ("openai", "object_storage"), ("scaigrid", "results_url")}


def _served() -> list[str]:
    names: list[str] = []
    for name in profile_names():
        profile = load_profile(name)
        if (profile.dialect, profile.output.location) not in SERVED_SHAPES:
            continue
        names.append(name)
        names.extend(f"{name}+{v.name}" for v in profile.variants)
    return names


SERVED = _served()


def test_served_profiles_include_the_openai_family_scaleway_and_scaigrid() -> None:
    """The OpenAI-dialect profiles with a Files API, Scaleway's on object storage and
    ScaiGrid's native dialect are all served (and so all checked below)."""
    assert {
        "openai",
        "azure-openai",
        "ovhcloud",
        "truefoundry",
        "truefoundry+bedrock",
        "scaleway",
        "scaigrid",
    } <= set(SERVED)


@pytest.mark.parametrize("profile", [p for p in SERVED if p != "openai"])
def test_emulator_conforms_to_profile(profile: str) -> None:
    """The whole suite passes against the in-process emulator of `profile` (openai runs in
    test_mutation_score's baseline)."""
    result = run_mutant(None, profile=profile, stop_at_first=False)
    assert result.exit_code == 0 and not result.catchers, f"{profile}: {result.catchers}\n{result.output_tail}"
    assert result.tests_run > 100


def test_limit_checks_run_against_a_small_limits_profile(tmp_path: Path) -> None:
    """With the openai profile's byte and request limits shrunk, the suite's limit checks (which
    skip at 200 MiB) really run against the emulator, and pass."""
    text = load_profile("openai").path.read_text(encoding="utf-8")
    small = (
        text.replace('name = "openai"', 'name = "small"')
        .replace("max_requests = 50000", "max_requests = 40")
        .replace("max_input_bytes = { value = 209715200,", "max_input_bytes = { value = 20000,")
    )
    assert small.count("40") and "20000," in small
    path = tmp_path / "small.toml"
    path.write_text(small, encoding="utf-8")
    result = run_mutant(None, profile=str(path), stop_at_first=False, extra_args=["-k", "too_many or too_few"])
    assert result.exit_code == 0 and not result.catchers, result.output_tail
    assert result.tests_run >= 4 and result.skipped == 0, result.output_tail


@pytest.mark.parametrize("mutation", ["output_naming_hyphen", "presigned_url_accepted", "bucket_policy_ignored"])
def test_object_storage_mutations_are_caught(mutation: str) -> None:
    """The suite fails against Scaleway's emulator with an object-storage violation on: results
    named `-output` where the profile declares `_output`, a pre-signed input URL accepted, a
    bucket policy without the batch principal ignored (the whole catalogue: `batchconf
    mutants --profile scaleway`)."""
    result = run_mutant(mutation, profile="scaleway")
    assert result.caught, f"{mutation} survived (exit {result.exit_code}):\n{result.output_tail}"
    assert all(c.startswith("conformance/suite/test_") for c in result.catchers), result.catchers
