"""Reports: the results file, JUnit, and the key never appearing in any output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import FakeSuite

pytest_plugins = ["pytester"]

LEAKY = """
import logging
import os
import sys

import pytest

log = logging.getLogger("leaky")


def _key(api):
    # The test under test writes the key where only the outer test reads it.
    (Path := __import__("pathlib").Path)("key.txt").write_text(api.api_key)
    return api.api_key


@pytest.mark.capability("auth")
def test_leaks_the_key_everywhere(api):
    key = _key(api)
    print("stdout:", key)
    print("stderr:", key, file=sys.stderr)
    log.warning("log: %s", key)
    assert api.list_batches().status == 200
    assert key == "something else", f"message: {key}"


@pytest.mark.capability("auth")
def test_leaks_a_truncated_key(api):
    key = _key(api)
    long = "x" * 300 + key + "y" * 300
    assert long == "z"


@pytest.mark.capability("auth")
def test_leaks_in_an_exception(api):
    raise RuntimeError(f"boom {_key(api)}")


@pytest.mark.capability("auth")
@pytest.mark.xfail(reason="xfail", strict=True)
def test_leaks_in_a_passing_test_output(api):
    print("passing output:", _key(api))
    assert False
"""


def _fragments(key: str, size: int = 10) -> list[str]:
    return [key[i : i + size] for i in range(len(key) - size + 1)]


def _assert_no_key(key: str, *texts: str) -> None:
    secret = key.rsplit("-", 1)[-1]  # the random part: its public prefix may appear anywhere
    for text in texts:
        assert key not in text
        leaked = [f for f in _fragments(secret) if f in text]
        assert not leaked, f"fragments of the key leaked: {leaked[:3]}"


def test_the_key_appears_nowhere_in_stdout_junit_or_results(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_leaky", LEAKY)
    result = fake_suite.run(
        "-rA",
        "-vv",
        "--junitxml=junit.xml",
        "-o",
        "junit_logging=all",
        "--results",
        "results.jsonl",
        "-o",
        "log_cli=true",
        "--log-cli-level=WARNING",
        "--full-trace",
    )
    result.assert_outcomes(failed=3, xfailed=1)
    key = (fake_suite.path / "key.txt").read_text()
    assert key.startswith("sk-emu-")
    stdout, stderr = result.stdout.str(), result.stderr.str()
    junit = (fake_suite.path / "junit.xml").read_text()
    results = (fake_suite.path / "results.jsonl").read_text()
    _assert_no_key(key, stdout, stderr, junit, results)
    # The redaction is visible where the key was.
    assert "message: <redacted $emulator key 1>" in stdout
    assert "stdout: <redacted $emulator key 1>" in stdout
    assert "log: <redacted $emulator key 1>" in stdout
    assert "boom &lt;redacted $emulator key 1&gt;" in junit
    assert '<property name="batchconf_profile" value="openai"' in junit
    assert '<property name="batchconf_target" value="emulator (in-process)"' in junit
    assert "<redacted $emulator key 1>" in results


def test_results_have_one_line_per_check_with_its_context(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_r",
        """
import pytest

@pytest.mark.capability("create")
def test_pass():
    pass

@pytest.mark.capability("create")
def test_fail():
    assert 1 == 2, "the contract says 2"

@pytest.mark.capability("cancel")
def test_skip():
    pytest.skip("not today")

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

@pytest.mark.capability("create")
def test_error(broken):
    pass

@pytest.mark.capability("storage_layout")
def test_deselected():
    pass

@pytest.mark.capability("create")
def test_by_keyword():
    pass
""",
    )
    result = fake_suite.run("--results", "out/results.jsonl", "--seed", "5", "-k", "not by_keyword")
    assert result.ret == 1
    lines = [json.loads(x) for x in (fake_suite.path / "out" / "results.jsonl").read_text().splitlines()]
    by_test = {line["test"]: line for line in lines}
    assert {k: by_test[k]["outcome"] for k in by_test} == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_error": "error",
        "test_deselected": "deselected",
        "test_by_keyword": "deselected",
    }
    first = by_test["test_fail"]
    assert first["nodeid"] == "test_r.py::test_fail"
    assert first["capability"] == "create"
    assert (first["profile"], first["target"], first["target_kind"], first["seed"]) == (
        "openai",
        "emulator (in-process)",
        "emulator",
        5,
    )
    assert first["harness"]
    assert "the contract says 2" in first["message"]
    assert first["duration"] >= 0
    assert by_test["test_skip"]["message"] == "not today"
    assert "fixture broke" in by_test["test_error"]["message"]
    assert by_test["test_deselected"]["reason_kind"] == "capability"
    assert by_test["test_by_keyword"]["reason_kind"] == "option"
    assert f"results: {fake_suite.path / 'out' / 'results.jsonl'} (6 lines)" in result.stdout.str()


def test_the_matrix_reads_what_the_plugin_writes(fake_suite: FakeSuite, tmp_path: Path) -> None:
    from conformance import matrix

    fake_suite.write(
        "test_m",
        """
import pytest

@pytest.mark.capability("create")
def test_pass():
    pass

@pytest.mark.capability("storage_layout")
def test_deselected():
    pass
""",
    )
    assert fake_suite.run("--results", "r.jsonl").ret == 0
    out = tmp_path / "m.md"
    assert matrix.main([str(fake_suite.path / "r.jsonl"), "--md", str(out)]) == 0
    assert "| openai (emulator) | PASS 1/1 | N/A not offered | PASS 1/1 |" in out.read_text()


@pytest.mark.parametrize("capture", ["fd", "sys"])
def test_fixture_clients_of_the_emulator(fake_suite: FakeSuite, capture: str) -> None:
    fake_suite.write(
        "test_f",
        """
import pytest

@pytest.mark.capability("isolation")
def test_principals(api, other_api, anon_api, bad_key_api, bc_target, bc_profile, bc_config):
    assert bc_target.kind == "emulator" and bc_target.controls and bc_target.second_key
    assert bc_target.base_url == bc_target.root_url + "/v1"
    assert bc_profile.name == "openai" and bc_config.seed == 0
    assert api.api_key != other_api.api_key
    assert api.list_batches().status == 200
    assert other_api.list_batches().status == 200
    assert anon_api.list_batches().status == 401
    assert bad_key_api.list_batches().status == 401
    assert "sk-" not in repr(bc_target)

@pytest.mark.capability("lifecycle")
def test_waiter(api, waiter, control):
    assert waiter.poll_interval == 0
    assert control.info()["profile"] == "openai"
""",
    )
    fake_suite.run(f"--capture={capture}").assert_outcomes(passed=2)


BUCKET_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYBUCKETSECRET"


def test_the_buckets_secret_key_is_redacted_for_object_storage_profiles(
    fake_suite: FakeSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object-storage run reads the bucket's credentials from the AWS variables: the
    secret access key is scrubbed like the API key."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BUCKET_SECRET)
    # The literal, not os.environ: the in-process emulator's moto store replaces the AWS
    # variables with its own dummies while it runs.
    fake_suite.write(
        "test_bucket",
        f"""
import pytest


@pytest.mark.capability("create")
def test_leaks_the_bucket_secret():
    assert False, "secret: {BUCKET_SECRET}"
""",
    )
    result = fake_suite.run("--profile", "scaleway", "--results", "results.jsonl")
    result.assert_outcomes(failed=1)
    stdout = result.stdout.str()
    assert "secret: <redacted $AWS_SECRET_ACCESS_KEY>" in stdout
    _assert_no_key(BUCKET_SECRET, stdout, (fake_suite.path / "results.jsonl").read_text())
