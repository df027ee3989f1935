"""Selection by dialect and by applicability, and the webhook receiver the plugin runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FakeSuite

pytest_plugins = ["pytester"]

SUITE = """
import pytest


def _needs_results_url(profile):
    if profile.output.location != "results_url":
        return "its results are not behind a results URL"
    return None


@pytest.mark.capability("records")
@pytest.mark.dialect("scaigrid")
def test_native_only():
    pass


@pytest.mark.capability("records")
@pytest.mark.dialect("openai", "scaigrid")
def test_both():
    pass


@pytest.mark.capability("records")
@pytest.mark.applies.with_args(_needs_results_url)
def test_results_url():
    pass


@pytest.mark.capability("webhooks")
def test_hooks(webhook_receiver):
    assert webhook_receiver.url.startswith("http://127.0.0.1:")
"""


def test_dialect_and_applies_markers_deselect_with_the_reason(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("-v", "--profile", "openai", "--results", "r.jsonl", "-k", "not hooks")
    result.assert_outcomes(passed=1, deselected=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "batchconf: deselected 1: a check of the scaigrid dialect; profile 'openai' speaks the 'openai' dialect",
            "batchconf: deselected 1: does not apply to profile 'openai': its results are not behind a results URL",
        ]
    )
    lines = [json.loads(line) for line in (fake_suite.path / "r.jsonl").read_text().splitlines()]
    kinds = {line["nodeid"].rsplit("::", 1)[-1]: line.get("reason_kind") for line in lines}
    assert kinds["test_native_only"] == "dialect" and kinds["test_results_url"] == "applies"


def test_the_native_dialect_runs_its_own_tests(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("-v", "--profile", "scaigrid")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["batchconf: webhook receiver listening at http://127.0.0.1:*/hook"])


def test_webhook_tests_need_a_target_on_loopback(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run(
        "--collect-only",
        "-q",
        "--profile",
        "scaigrid",
        "--target-url",
        "http://203.0.113.7/v1",
        "--no-target-controls",
        "--api-key-env",
        "PATH",
    )
    assert result.ret == 0
    out = result.stdout.str()
    assert "test_suite.py::test_hooks" not in out and "test_suite.py::test_native_only" in out
    assert "the suite's receiver listens on 127.0.0.1, and the target host '203.0.113.7' is not on loopback" in out


def test_malformed_markers_are_harness_errors(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_bad",
        """
import pytest

@pytest.mark.capability("records")
@pytest.mark.dialect(3)
def test_x():
    pass

@pytest.mark.capability("records")
@pytest.mark.applies.with_args("not callable")
def test_y():
    pass
""",
    )
    result = fake_suite.run()
    assert result.ret == 2
    err = result.stdout.str() + result.stderr.str()
    assert "test_bad.py::test_x: dialect marker takes dialect names" in err
    assert "test_bad.py::test_y: applies marker takes predicates" in err


NATIVE_SCENARIO = '''
import pytest
from conformance.scenarios import Submitted, scenario


@scenario("native_two", capability="records", requests=2)
def native_two(ctx):
    """Two chat lines, inline, subscribed to the run's receiver when one runs."""
    ids = ctx.custom_ids(2)
    created = ctx.submit([ctx.chat_line(i) for i in ids], webhook_url=ctx.webhook_url)
    return Submitted(batch_id=created["id"], input_custom_ids=ids, created=created)


@pytest.mark.capability("records")
@pytest.mark.scenarios("native_two")
def test_reads_native(finished):
    done = finished("native_two")
    assert done.final["status"] == "completed"
    assert done.created["input_file_url"] is None and done.created["webhook_url"] is None
    assert sorted(r["custom_id"] for r in done.output_lines) == sorted(done.input_custom_ids)
    assert all(r["status"] == "ok" for r in done.output_lines) and done.error_lines == ()
    assert set(done.raw_results) == {"results_url"} and done.raw_output == done.raw_results["results_url"]
'''


def test_scenarios_submit_and_fetch_through_the_dialect(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_native", NATIVE_SCENARIO)
    result = fake_suite.run("-v", "--profile", "scaigrid")
    result.assert_outcomes(passed=2)
    assert "webhook receiver" not in result.stdout.str()  # no test of the webhooks capability
