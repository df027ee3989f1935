"""`--observe FILE`: deviations become a reviewed profile overlay, and inferred facts verified ones."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from conformance._checks import combine
from conformance._contract import NOT_OBSERVED, ContractViolation
from conformance._observe import observe
from schemas import load_profile

if TYPE_CHECKING:
    from conftest import ServedEmulator

ROOT = Path(__file__).resolve().parents[2]

# A wrong guess, marked unverified, on top of the openai profile: the served emulator (plain
# openai) answers param "id" where this overlay expects "batch_id".
GUESS = """extends = "openai"
source = "a test overlay: a wrong guess"
verified = false

[errors.batch_not_found]
param = { value = "batch_id", source = "a guess", verified = false }
"""


def _deviation(fact: str | None, observed: object) -> ContractViolation:
    exc = ContractViolation("error-param:x", "differs", inferred=f"{fact} (source: a guess)")
    exc.fact, exc.observed = fact, observed
    return exc


def test_each_fact_is_proposed_once_with_its_observed_value_and_source() -> None:
    found = observe(
        [_deviation("errors.a.param", "id"), _deviation("errors.a.param", "id"), _deviation("errors.b.code", None)],
        target_name="acme",
        day=date(2026, 11, 28),
    )
    assert found.facts == [
        ("errors.a.param", "id", "observed on acme, 2026-11-28"),
        ("errors.b.code", None, "observed on acme, 2026-11-28"),
    ]
    assert found.left_out == []


def test_no_single_value_or_two_values_are_left_to_a_person() -> None:
    found = observe(
        [_deviation("errors.a.status", NOT_OBSERVED), _deviation("x.y", 1), _deviation("x.y", 2)],
        target_name="acme",
    )
    assert found.facts == []
    assert any("no single observed value" in why for why in found.left_out)
    assert any("observed both 1 and 2" in why for why in found.left_out)


def test_the_inferred_parts_of_a_combined_violation_are_observed() -> None:
    verified = ContractViolation("exactly-once", "lost a line")
    found = observe([combine([verified, _deviation("errors.a.param", "id")])], target_name="acme")
    assert [fact[0] for fact in found.facts] == ["errors.a.param"]


def test_an_observed_overlay_turns_a_deviation_into_a_pass(
    served: ServedEmulator, fake_key: str, tmp_path: Path
) -> None:
    """A run held to an inferred fact the target does not follow deviates and writes the
    observation; the same run held to that overlay passes, the fact now verified."""
    (tmp_path / "guess.toml").write_text(GUESS, encoding="utf-8")
    env = {**os.environ, "BATCHCONF_API_KEY": fake_key}
    base = [sys.executable, "-m", "emulator.cli", "check", "-q", "-p", "no:cacheprovider", "--target-url"]
    args = [served.base_url, "--poll-interval", "0.05", "-k", "unknown_batch", "--target-name", "served-openai"]

    first = subprocess.run(
        [*base, *args, "--profile", "./guess.toml", "--observe", "observed.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stdout[-3000:]
    assert "2 deviated" in first.stdout  # retrieve and cancel of an unknown batch
    written = (tmp_path / "observed.toml").read_text(encoding="utf-8")
    assert "guess.toml" in written.splitlines()[3]  # extends what the run was held to
    assert 'param = { value = "id", source = "observed on served-openai, ' in written

    profile = load_profile(tmp_path / "observed.toml")
    assert profile.fact("errors.batch_not_found.param").verified
    second = subprocess.run(
        [*base, *args, "--profile", "./observed.toml", "--strict"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stdout[-3000:]
    assert "deviated" not in second.stdout and "2 passed" in second.stdout
