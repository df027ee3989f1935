"""The real suite, `pytest --pyargs conformance`, against the in-process emulator.

Run in a subprocess from the project's root, as `batchconf check` runs it: the emulator
implements the openai profile, so the suite must find it conformant, and every report must
be written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServedEmulator

ROOT = Path(__file__).resolve().parents[2]


def test_the_emulator_is_conformant_to_the_openai_profile(tmp_path: Path) -> None:
    results, junit = tmp_path / "results.jsonl", tmp_path / "junit.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance",
            "--profile",
            "openai",
            "--seed",
            "3",
            "--results",
            str(results),
            f"--junitxml={junit}",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "target emulator (in-process), profile openai (OpenAI), seed 3" in done.stdout
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert lines, "no result lines"
    assert all(line["capability"] for line in lines)
    assert {line["outcome"] for line in lines} <= {"passed", "skipped", "xfailed", "deselected"}
    assert junit.read_text().startswith("<?xml")


@pytest.mark.parametrize(
    ("profile", "own_check"),
    [
        ("scaleway", "test_storage_layout.py::"),
        ("truefoundry", "test_gateways.py::"),
        ("scaigrid", "test_scaigrid.py::"),
    ],
)
def test_other_profiles_select_their_own_checks(profile: str, own_check: str) -> None:
    """Selection for another profile succeeds (exit 0) and keeps the checks of that
    profile's own dialect or storage, and the scenario checks they read."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "--profile", profile, "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert any(own_check in line for line in collected), done.stdout[-3000:]
    assert any(line.startswith("batchconf::scenario[") for line in collected), done.stdout[-3000:]


def test_check_all_writes_one_matrix(tmp_path: Path) -> None:
    """`batchconf check-all` runs the suite per profile and merges the runs into one matrix:
    a row per profile, the reports of each, exit 0 when all are conformant."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator.cli",
            "check-all",
            "--out",
            str(tmp_path),
            "--profile",
            "scaigrid",
            "--profile",
            "truefoundry+bedrock",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    matrix = (tmp_path / "matrix.md").read_text(encoding="utf-8")
    assert "| scaigrid (emulator) |" in matrix and "| truefoundry+bedrock (emulator) |" in matrix
    for stem in ("scaigrid", "truefoundry_bedrock"):
        assert (tmp_path / f"junit-{stem}.xml").is_file()
        assert (tmp_path / f"results-{stem}.jsonl").stat().st_size > 0
    assert (tmp_path / "matrix.html").is_file()


@pytest.mark.parametrize("strict", [False, True])
def test_a_failure_on_an_unverified_fact_is_a_deviation(tmp_path: Path, strict: bool) -> None:
    """ScaiGrid's refusal of a cancel (CONFLICT, 409) is inferred: against an emulator that
    accepts the cancel, the checks resting only on that fact are deviations (xfailed, naming
    the fact), and the run passes; with --strict they fail the run."""
    results = tmp_path / "results.jsonl"
    args = ["--profile", "scaigrid", "--emulator-mutation", "cancel_completed_accepted", "--results", str(results)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-rx", *args]
        + (["--batchconf-strict"] if strict else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    outcomes = [json.loads(line)["outcome"] for line in results.read_text(encoding="utf-8").splitlines()]
    if strict:
        assert done.returncode == 1 and "failed" in outcomes, done.stdout[-2000:]
    else:
        assert done.returncode == 0, done.stdout[-3000:]
        assert "failed" not in outcomes and "xfailed" in outcomes, sorted(set(outcomes))
        assert "deviation: rests only on the unverified fact errors.cancel_terminal" in done.stdout


def test_a_target_whose_batches_never_finish_still_gets_its_auth_verdicts(
    served: ServedEmulator, fake_key: str, tmp_path: Path
) -> None:
    """Authentication needs no finished batch: against a target whose batches stay in
    `validating`, the auth checks still run and pass (with ids nobody holds), and the run
    reports the batch as pending rather than failing anything."""
    import dataclasses
    import os

    before = served.emulator.timing
    served.emulator.timing = dataclasses.replace(before, progression="manual")
    results = tmp_path / "results.jsonl"
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "--pyargs", "conformance", "-q", "-p", "no:cacheprovider"),
                *("--target-url", served.base_url, "--poll-interval", "0.05", "--wait-timeout", "terminal=1"),
                *("--no-target-controls", "-k", "test_auth", "--results", str(results)),
            ],
            cwd=tmp_path,
            env={**os.environ, "BATCHCONF_API_KEY": fake_key},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        served.emulator.timing = before
    assert done.returncode == 75, done.stdout[-4000:] + done.stderr[-2000:]
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    auth = [line for line in lines if line["capability"] == "auth" and line["outcome"] != "deselected"]
    passed = [line["test"] for line in auth if line["outcome"] == "passed"]
    assert len(passed) >= 10, auth
    assert {"test_request_without_key_is_refused", "test_request_with_wrong_key_is_refused"} <= set(passed)
    assert not [line for line in auth if line["outcome"] in ("failed", "error")], auth
