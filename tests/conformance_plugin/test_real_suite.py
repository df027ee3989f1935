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
    pass

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
    assert "scaigrid (emulator)" in matrix and "truefoundry+bedrock (emulator)" in matrix
    for stem in ("scaigrid", "truefoundry_bedrock"):
        assert (tmp_path / f"junit-{stem}.xml").is_file()
        assert (tmp_path / f"results-{stem}.jsonl").stat().st_size > 0
    assert (tmp_path / "matrix.html").is_file()


@pytest.mark.parametrize("strict", [False, True])
def test_a_failure_on_an_unverified_fact_is_a_deviation(tmp_path: Path, strict: bool) -> None:
    """ScaiGrid's refusal of a cancel (CONFLICT, 409) is inferred: against an emulator that
    accepts the cancel, the checks resting only on that fact are deviations, named with the
    fact and its source in every report (terminal, results, JUnit, matrix), and the run
    passes; with --strict they fail it."""
    results, junit = tmp_path / "results.jsonl", tmp_path / "junit.xml"
    args = ["--profile", "scaigrid", "--emulator-mutation", "cancel_completed_accepted", "--results", str(results)]
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "check", "-q", *args, f"--junitxml={junit}"]
        + (["--strict"] if strict else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    outcomes = [line["outcome"] for line in lines]
    if strict:
        assert done.returncode == 1 and "failed" in outcomes and "deviation" not in outcomes, done.stdout[-2000:]
        return
    assert done.returncode == 0, done.stdout[-3000:]
    assert "failed" not in outcomes and "error" not in outcomes, sorted(set(outcomes))
    deviations = [line for line in lines if line["outcome"] == "deviation"]
    assert deviations and all("errors.cancel_terminal" in line["message"] for line in deviations)
    assert all("source:" in line["message"] for line in deviations)
    # The terminal: its own count, and a line per deviation naming the fact.
    assert f"{len(deviations)} deviated" in done.stdout
    assert "rests only on errors.cancel_terminal" in done.stdout
    # JUnit: a skip carrying batchconf's outcome, not a failure.
    xml = junit.read_text(encoding="utf-8")
    assert xml.count('name="batchconf_outcome" value="deviation"') == len(deviations)
    assert "<failure" not in xml
    # The matrix: the cancel capability reads DEVIATION and lists the checks.
    matrix = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "matrix", str(results)], capture_output=True, text=True, cwd=ROOT
    )
    assert matrix.returncode == 0, matrix.stderr
    assert "DEVIATION" in matrix.stdout
    assert deviations[0]["test"] in matrix.stdout


@pytest.mark.parametrize("strict", [False, True])
def test_a_violation_of_a_verified_fact_fails_strict_or_not(tmp_path: Path, strict: bool) -> None:
    """A lost output line breaks a verified rule (exactly once): exit 1 with or without
    --strict, reported as a failure, never as a deviation."""
    results = tmp_path / "results.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "check", "-q", "--emulator-mutation", "drop_output_line"]
        + ["--results", str(results), "-k", "records"]
        + (["--strict"] if strict else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    failed = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    failed = [line for line in failed if line["outcome"] == "failed"]
    assert any("exactly-once" in line["message"] for line in failed), failed
