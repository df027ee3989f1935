"""When the plugin engages, what it adds to every run, and its report header."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import FakeSuite

pytest_plugins = ["pytester"]

PLAIN = """
def test_plain():
    assert True
"""

MARKED = """
import pytest

@pytest.mark.capability("create")
def test_marked():
    assert True
"""


def test_options_are_in_one_group_with_their_contract(fake_suite: FakeSuite) -> None:
    result = fake_suite.run("--help")
    out = result.stdout.str()
    assert "batchconf conformance suite:" in out
    for option in (
        "--target-url=URL",
        "--profile=NAME",
        "--api-key-env=VAR",
        "--second-api-key-env=VAR",
        "--seed=N",
        "--results=FILE",
        "--state-file=FILE",
        "--max-requests=N",
        "--wait-timeout=NAME=SECONDS",
        "--poll-interval=SECONDS",
        "--target-controls",
        "--no-target-controls",
    ):
        assert option in out, option


def test_markers_are_registered_with_their_meaning(fake_suite: FakeSuite) -> None:
    out = fake_suite.run("--markers").stdout.str()
    assert "@pytest.mark.capability(name):" in out
    assert "@pytest.mark.scenarios(*names):" in out
    assert "@pytest.mark.needs_control:" in out


def test_an_unrelated_run_is_left_alone(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_plain", PLAIN)
    result = fake_suite.run()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert "batchconf" not in result.stdout.str().replace("batchconf-", "")


def test_an_unrelated_empty_run_keeps_pytest_exit_status(fake_suite: FakeSuite) -> None:
    assert fake_suite.run().ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_an_unrelated_run_ignores_a_broken_batchconf_environment(
    fake_suite: FakeSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCONF_PROFILE", "no-such-profile")
    fake_suite.write("test_plain", PLAIN)
    assert fake_suite.run().ret == 0


def test_a_capability_marker_engages_the_plugin_and_the_header_follows_collection(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_marked", MARKED)
    result = fake_suite.run("--collect-only")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "collected 1 item",
            "batchconf *: target emulator (in-process), profile openai (OpenAI), seed 0",
            "batchconf: controls yes, budget unlimited, poll interval 0s, timeouts request=30s, terminal=30s*",
        ]
    )


def test_an_option_engages_the_plugin_and_the_header_names_everything(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_marked", MARKED)
    result = fake_suite.run("--seed", "7", "--max-requests", "40", "--wait-timeout", "terminal=9")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "batchconf [0-9]*: target emulator (in-process), profile openai (OpenAI), seed 7",
            "batchconf: controls yes, budget 40 requests, poll interval 0s, timeouts *terminal=9s*",
            "rootdir: *",
        ]
    )


def test_collect_only_builds_no_target_and_submits_nothing(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_scen",
        """
import pytest
from conformance.scenarios import scenario

@scenario("never", capability="lifecycle", requests=1)
def never(ctx):
    raise AssertionError("a scenario was submitted during --collect-only")

@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios("never")
def test_uses(finished):
    pass
""",
    )
    result = fake_suite.run("--collect-only", "-q")
    assert result.ret == 0
    assert "submitting" not in result.stdout.str()


def test_loading_the_plugin_imports_nothing_heavy(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_light",
        """
import sys

def test_light():
    loaded = [m for m in ("emulator", "schemas", "conformance._config", "conformance.scenarios") if m in sys.modules]
    assert loaded == []
    assert "conformance.plugin" in sys.modules
""",
    )
    result = fake_suite.pytester.runpytest_subprocess(*fake_suite.plugin_args)
    result.assert_outcomes(passed=1)


def test_the_package_re_exports_the_scenario_api_lazily() -> None:
    import conformance
    from conformance import scenarios

    assert conformance.scenario is scenarios.scenario
    assert conformance.Finished is scenarios.Finished
    assert conformance.__version__
    with pytest.raises(AttributeError):
        _ = conformance.nothing_here
