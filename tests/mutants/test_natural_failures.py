"""Failures without admin routes: the suite's error-file checks run against a target it
cannot control.

The emulator is served with its admin routes left out (no `/_emulator`, so no fault rule
can make a line fail), and the suite runs against it as against a real provider
(`--target-url ... --no-target-controls`), and in-process with `--no-target-controls`, which
holds the in-process emulator to the same terms. Its failing lines come from bodies the
endpoint itself rejects (the profile's `[rejected_requests]`). With the mutation that writes
HTTP-error records into the output file the suite must fail, naming the records check;
without it, it must pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator import mutations_for
from emulator._mutants import run_mutant
from tests.emulator._support import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-natural-failures-0001"
KEY_ENV = "BATCHCONF_NATURAL_KEY"
MUTATION = "http_error_in_output_file"

# The emulator served without admin routes, with a mutation switched on from Python (the
# admin route that would switch it on is exactly what is left out).
_SERVE = """
import sys
import uvicorn
from emulator import Emulator

port, key, mutation = int(sys.argv[1]), sys.argv[2], sys.argv[3]
emu = Emulator("openai", api_keys=(key,), progression="per_poll", seed=5, admin=False)
if mutation:
    emu.mutations.enable(mutation)
uvicorn.run(emu.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
"""


def _wait_until_served(proc: subprocess.Popen[bytes], root: str, log: Path, timeout: float = 30.0) -> None:
    """Poll the provider's own list route (the admin routes are off) until it answers 200."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if probe.get(f"{root}/v1/batches", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"the server at {root} did not answer within {timeout:g} s")


def _serve(mutation: str | None, workdir: Path) -> Iterator[str]:
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port), KEY, mutation or ""],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_until_served(proc, root, log)
        yield root
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]


@pytest.fixture
def served_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The openai emulator served on 127.0.0.1 without admin routes."""
    yield from _serve(None, tmp_path_factory.mktemp("serve"))


@pytest.fixture
def served_mutated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same, with HTTP-error records written into the output file."""
    yield from _serve(MUTATION, tmp_path_factory.mktemp("serve"))


def _run_suite(root: str, tmp_path: Path) -> tuple[int, list[dict[str, Any]], str]:
    """The records checks of the suite against `root`, as against a provider without controls."""
    results = tmp_path / "results.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            "--profile",
            "openai",
            "--target-url",
            root,
            "--no-target-controls",
            "--api-key-env",
            KEY_ENV,
            "--poll-interval",
            "0",
            "--results",
            str(results),
            "-k",
            "test_records",
        ],
        cwd=ROOT,
        env={**os.environ, KEY_ENV: KEY},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()] if results.exists() else []
    return done.returncode, lines, done.stdout + done.stderr


def _outcomes(lines: list[dict[str, Any]], test: str) -> dict[str, str]:
    return {line["nodeid"]: line["outcome"] for line in lines if f"::{test}" in line["nodeid"]}


def test_the_target_has_no_admin_routes(served_plain: str) -> None:
    """The served emulator answers no admin route: nothing but the requests themselves can
    make a line fail."""
    response = httpx.get(f"{served_plain}/_emulator/info", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert response.status_code == 404


def test_rejected_lines_pass_the_records_checks_without_controls(served_plain: str, tmp_path: Path) -> None:
    """Without the mutation the records checks pass (exit 0) with no admin route, and the
    checks that need failing lines ran (passed, not skipped or deselected)."""
    code, lines, output = _run_suite(served_plain, tmp_path)
    assert code == 0, output[-4000:]
    assert set(_outcomes(lines, "test_http_failures_go_to_the_error_file").values()) == {"passed"}, output[-2000:]
    assert set(_outcomes(lines, "test_no_output_file_when_nothing_succeeded").values()) == {"passed"}
    counts = _outcomes(lines, "test_line_counts_equal_request_counts")
    assert {nodeid.rsplit("[", 1)[1] for nodeid in counts} == {"all_succeed]", "mixed_results]", "all_fail]"}
    assert set(counts.values()) == {"passed"}


def test_http_errors_in_the_output_file_fail_the_run_without_controls(served_mutated: str, tmp_path: Path) -> None:
    """With HTTP-error records written into the output file the suite fails (exit 1) with no
    admin route, and the records check of the mixed batch names the misplaced lines."""
    code, lines, output = _run_suite(served_mutated, tmp_path)
    assert code == 1, output[-4000:]
    placement = [
        line
        for line in lines
        if "::test_http_failures_go_to_the_error_file" in line["nodeid"] and line["outcome"] == "failed"
    ]
    assert placement, output[-4000:]
    assert (
        "records-placement" in placement[0]["message"] and "failing lines in the output file" in placement[0]["message"]
    )
    validated = _outcomes(lines, "test_records_validate")
    assert validated["conformance/suite/test_records.py::test_records_validate[mixed_results]"] == "failed"
    assert validated["conformance/suite/test_records.py::test_records_validate[all_succeed]"] == "passed"


def test_request_id_missing_is_a_mutation_where_the_profile_requires_one() -> None:
    """`request_id_missing` exists for the profiles that require response.request_id
    (openai) and not for those whose records may omit it (OVHcloud's example, ScaiGrid's
    records)."""
    assert "request_id_missing" in mutations_for("openai")
    assert "request_id_missing" not in mutations_for("ovhcloud")
    assert "request_id_missing" not in mutations_for("scaigrid")


def test_the_suite_catches_a_missing_request_id() -> None:
    """With response.request_id dropped from every record, the suite fails and the records
    checks name it."""
    result = run_mutant("request_id_missing", profile="openai", stop_at_first=False)
    assert result.caught, result.output_tail
    assert "conformance/suite/test_records.py::test_records_validate[all_succeed]" in result.catchers
    assert "conformance/suite/test_records.py::test_records_validate[mixed_results]" in result.catchers


@pytest.mark.parametrize("mutation", [None, MUTATION])
def test_in_process_without_controls_the_records_checks_still_judge(mutation: str | None, tmp_path: Path) -> None:
    """`--no-target-controls` in-process: no admin route makes a line fail, yet the records
    checks run on naturally failing lines, pass on the emulator and catch the mutation."""
    results = tmp_path / "results.jsonl"
    args = ["--no-target-controls", "--strict", "-k", "records", "--results", str(results)]
    if mutation is not None:
        args += ["--emulator-mutation", mutation]
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "check", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    ran = {line["test"]: line["outcome"] for line in lines if "http_failures_go_to_the_error_file" in line["test"]}
    if mutation is None:
        assert done.returncode == 0, done.stdout[-3000:]
        assert ran and set(ran.values()) == {"passed"}, ran
    else:
        assert done.returncode == 1, done.stdout[-3000:]
        assert "failed" in ran.values(), ran
        assert "records-placement" in done.stdout
