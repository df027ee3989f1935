"""A URL target: an emulator served on a real socket, reached like any provider."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import FakeSuite, ServedEmulator

pytest_plugins = ["pytester"]

COUNTED = """
import pathlib

import pytest
from conformance.scenarios import Submitted, scenario


@scenario("counted", capability="lifecycle", requests=2)
def counted(ctx):
    calls = pathlib.Path("builds.txt")
    calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
    ids = ctx.custom_ids(2)
    batch = ctx.create_batch(ctx.upload_jsonl([ctx.chat_line(i) for i in ids]))
    return Submitted(batch["id"], ids, batch)


@pytest.mark.capability("records")
@pytest.mark.scenarios("counted")
def test_reads(finished):
    done = finished("counted")
    assert done.final["status"] == "completed"
    assert len(done.output_lines) == 2
    pathlib.Path("resumed.txt").write_text(str(done.resumed))
"""


def _url_args(served: ServedEmulator, *extra: str) -> list[str]:
    return ["--target-url", served.base_url, "--poll-interval", "0", *extra]


def test_the_key_comes_from_the_named_variable_and_never_shows(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_PROVIDER_KEY", fake_key)
    fake_suite.write(
        "test_k",
        """
import os
import logging
import pytest

@pytest.mark.capability("auth")
def test_uses_and_leaks_the_key(api, bc_target):
    assert bc_target.kind == "url" and bc_target.api_key_env == "MY_PROVIDER_KEY"
    assert api.list_batches().status == 200
    key = os.environ["MY_PROVIDER_KEY"]
    print(key)
    logging.getLogger("x").error("key=%s", key)
    assert {"key": key, "padding": "p" * 400} == {}
""",
    )
    result = fake_suite.run(
        *_url_args(served, "--api-key-env", "MY_PROVIDER_KEY", "--junitxml=j.xml", "--results", "r.jsonl", "-rA")
    )
    result.assert_outcomes(failed=1)
    secret = fake_key.split("-", 2)[-1]
    texts = [
        result.stdout.str(),
        result.stderr.str(),
        (fake_suite.path / "j.xml").read_text(),
        (fake_suite.path / "r.jsonl").read_text(),
    ]
    for text in texts:
        assert fake_key not in text
        assert not [secret[i : i + 10] for i in range(len(secret) - 9) if secret[i : i + 10] in text]
    assert "<redacted $MY_PROVIDER_KEY>" in result.stdout.str()


def test_a_second_principal_comes_from_its_variable(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCONF_API_KEY", fake_key)
    fake_suite.write(
        "test_iso",
        """
import pytest

@pytest.mark.capability("isolation")
def test_two(api, other_api, bc_target):
    assert bc_target.second_key
    assert other_api.list_batches().status == 200
""",
    )
    fake_suite.run(*_url_args(served), "-rs").assert_outcomes(skipped=1)
    assert "no second principal: set BATCHCONF_SECOND_API_KEY" in fake_suite.run(*_url_args(served), "-rs").stdout.str()
    monkeypatch.setenv("BATCHCONF_SECOND_API_KEY", "sk-FAKEKEY2-second-principal-9876543210zyxwvutsrqponmlkjihgfe")
    fake_suite.run(*_url_args(served)).assert_outcomes(passed=1)


def test_a_state_file_lets_a_later_run_resume_instead_of_submitting(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCONF_API_KEY", fake_key)
    fake_suite.write("test_counted", COUNTED)
    args = _url_args(served, "--state-file", "state/run.json")

    first = fake_suite.run(*args)
    first.assert_outcomes(passed=2)
    assert "batchconf: submitting 1 scenario(s), 2 request(s): counted" in first.stdout.str()
    state = json.loads((fake_suite.path / "state" / "run.json").read_text())
    assert state["target"] == served.base_url and state["profile"] == "openai"
    batch_id = state["scenarios"]["counted"]["batch_id"]
    assert (fake_suite.path / "resumed.txt").read_text() == "False"

    second = fake_suite.run(*args)
    second.assert_outcomes(passed=2)
    assert "batchconf: resuming 1 scenario(s) from" in second.stdout.str()
    assert "batchconf: submitting" not in second.stdout.str()
    assert batch_id in second.stdout.str()
    assert (fake_suite.path / "builds.txt").read_text() == "x"
    assert (fake_suite.path / "resumed.txt").read_text() == "True"


def test_a_state_file_of_another_target_is_refused(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCONF_API_KEY", fake_key)
    fake_suite.write("test_counted", COUNTED)
    (fake_suite.path / "state.json").write_text(
        json.dumps({"version": 1, "target": "https://elsewhere/v1", "profile": "openai", "scenarios": {}})
    )
    result = fake_suite.run(*_url_args(served, "--state-file", "state.json"))
    assert result.ret == 2
    assert "was written for target 'https://elsewhere/v1'" in result.stdout.str() + result.stderr.str()
    assert not (fake_suite.path / "builds.txt").exists()


def test_a_url_target_has_a_default_budget_and_poll_interval(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCONF_API_KEY", fake_key)
    fake_suite.write("test_counted", COUNTED)
    result = fake_suite.run("--target-url", served.base_url, "--collect-only")
    result.stdout.fnmatch_lines(
        [
            f"batchconf *: target {served.base_url}, profile openai (OpenAI), seed 0",
            "batchconf: controls auto (probe GET /_emulator/info), budget 500 requests, poll interval 10s, *",
        ]
    )


def test_a_batch_still_running_when_the_wait_runs_out_is_pending_and_resumable(
    fake_suite: FakeSuite, served: ServedEmulator, fake_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL target's batch that outlives its wait is no verdict: the run says which batch is
    pending, records it, exits 75 and a second run with the state file resumes it."""
    import dataclasses

    monkeypatch.setenv("BATCHCONF_API_KEY", fake_key)
    fake_suite.write("test_counted", COUNTED)
    before = served.emulator.timing
    served.emulator.timing = dataclasses.replace(before, progression="manual")
    try:
        first = fake_suite.run(*_url_args(served, "--wait-timeout", "terminal=0.3", "-rs"))
    finally:
        served.emulator.timing = before
    out = first.stdout.str()
    assert first.ret == 75, out[-2000:]
    assert "1 skipped, 1 blocked in" in out  # the scenario's check (pending) and its test
    assert "pending (exit status 75): counted (batch_" in out
    assert "--state-file " in out and "batchconf-state.json" in out
    state = json.loads((fake_suite.path / "batchconf-state.json").read_text())
    batch_id = state["scenarios"]["counted"]["batch_id"]

    second = fake_suite.run(*_url_args(served, "--state-file", "batchconf-state.json"))
    second.assert_outcomes(passed=2)
    assert "batchconf: resuming 1 scenario(s)" in second.stdout.str() and batch_id in second.stdout.str()
    assert (fake_suite.path / "builds.txt").read_text() == "x"
