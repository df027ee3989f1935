"""Selection by capability and controls, known deviations, and the exit statuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from schemas import load_profile

if TYPE_CHECKING:
    from conftest import FakeSuite, ServedEmulator

pytest_plugins = ["pytester"]

SUITE = """
import pytest

@pytest.mark.capability("lifecycle")
def test_always_on():
    pass

@pytest.mark.capability("storage_layout")
def test_not_offered_by_openai():
    pass

@pytest.mark.capability("files")
def test_files():
    pass

@pytest.mark.capability("lifecycle")
@pytest.mark.needs_control
def test_steers(control):
    assert control.info()["profile"] == "openai"
"""


def test_tests_of_capabilities_the_profile_lacks_are_deselected_with_the_reason(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("-v")
    result.assert_outcomes(passed=3, deselected=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["batchconf: deselected 1: profile 'openai' does not offer capability 'storage_layout' (capabilities.*)"]
    )


def test_collect_only_shows_what_runs_for_another_profile(fake_suite: FakeSuite) -> None:
    # Scaleway has no Files API but a storage layout.
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("--collect-only", "-q", "--profile", "scaleway")
    assert result.ret == 0
    out = result.stdout.str()
    assert "test_suite.py::test_not_offered_by_openai" in out
    assert "test_suite.py::test_files" not in out
    assert "profile 'scaleway' does not offer capability 'files' (capabilities.files_api is not true)" in out


def test_needs_control_is_deselected_on_a_target_without_controls(
    fake_suite: FakeSuite, served: ServedEmulator
) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run(
        "--collect-only", "-q", "--target-url", served.base_url, "--no-target-controls", "--api-key-env", "PATH"
    )
    assert result.ret == 0
    assert "test_suite.py::test_steers" not in result.stdout.str()
    assert "needs the emulator's admin routes (/_emulator), which the target does not answer" in result.stdout.str()


def test_a_url_target_that_answers_the_admin_routes_is_probed_as_having_controls(
    fake_suite: FakeSuite, served: ServedEmulator
) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("--collect-only", "-q", "--target-url", served.base_url, "--api-key-env", "PATH")
    assert "test_suite.py::test_steers" in result.stdout.str()


def test_unknown_capability_is_a_harness_error(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_bad",
        """
import pytest

@pytest.mark.capability("teleport")
def test_x():
    pass

@pytest.mark.capability()
def test_y():
    pass
""",
    )
    result = fake_suite.run()
    assert result.ret == 2
    err = result.stdout.str() + result.stderr.str()
    assert "test_bad.py::test_x: unknown capability 'teleport' (known: auth, cancel, create" in err
    assert "test_bad.py::test_y: capability marker takes exactly one name" in err


def test_unknown_scenario_is_a_harness_error(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_bad",
        """
import pytest

@pytest.mark.capability("records")
@pytest.mark.scenarios("no_such_scenario")
def test_x():
    pass
""",
    )
    result = fake_suite.run()
    assert result.ret == 2
    assert "declares unknown scenario 'no_such_scenario'" in result.stdout.str() + result.stderr.str()


def test_no_tests_selected_is_an_error(fake_suite: FakeSuite) -> None:
    fake_suite.write("test_suite", SUITE)
    result = fake_suite.run("-k", "not_offered")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*harness error: no tests selected (4 deselected; see the reasons above)*"])


def test_nothing_collected_in_an_explicit_conformance_run_is_an_error(fake_suite: FakeSuite) -> None:
    assert fake_suite.run("--profile", "openai").ret == 2


def test_a_failing_check_exits_1_and_passing_ones_0(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_x",
        """
import pytest

@pytest.mark.capability("create")
def test_ok():
    pass

@pytest.mark.capability("create")
def test_broken():
    assert False, "the target broke the contract"
""",
    )
    assert fake_suite.run("-k", "test_ok").ret == 0
    assert fake_suite.run().ret == 1


def _profile_with_deviations(folder: Path, *checks: str) -> Path:
    """A copy of the openai profile (same name, so a path) with known deviations."""
    text = load_profile("openai").path.read_text(encoding="utf-8")
    for check in checks:
        text += (
            f'\n[[deviations]]\ncheck = "{check}"\nreason = "the provider answers 500 here"\n'
            'source = "observed in a test"\nverified = false\n'
        )
    path = folder / "profiles" / "openai.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def test_known_deviations_are_strict_xfails(fake_suite: FakeSuite) -> None:
    profile = _profile_with_deviations(fake_suite.path, "test_deviates", "test_x.py::test_fixed", "test_gone")
    fake_suite.write(
        "test_x",
        """
import pytest

@pytest.mark.capability("create")
def test_deviates():
    assert False

@pytest.mark.capability("create")
def test_fixed():
    pass
""",
    )
    result = fake_suite.run("--profile", str(profile), "-rxX", "--results", "r.jsonl")
    result.assert_outcomes(xfailed=1, failed=1)
    assert result.ret == 1
    out = result.stdout.str()
    assert "known deviation of openai: the provider answers 500 here (source: observed in a test)" in out
    assert "[XPASS(strict)]" in out
    assert "profile deviation 'test_gone' matches no collected test" in out
    outcomes = re.findall(r'"outcome": "(\w+)"', (fake_suite.path / "r.jsonl").read_text())
    assert sorted(outcomes) == ["xfailed", "xpassed"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--profile", "bogus"], {}, "profile = 'bogus' (from --profile): expected one of the known profiles: "),
        ([], {"BATCHCONF_PROFILE": "bogus"}, "profile = 'bogus' (from env BATCHCONF_PROFILE)"),
        (["--max-requests", "-1"], {}, "max_requests = '-1' (from --max-requests): expected a positive integer"),
        (["--wait-timeout", "nap=3"], {}, "timeouts.nap = '3' (from --wait-timeout): expected a timeout name"),
        (["--target-url", "ftp://x/v1"], {}, "target_url = 'ftp://x/v1' (from --target-url)"),
        (["--poll-interval", "soon"], {}, "poll_interval = 'soon' (from --poll-interval)"),
        (
            ["--target-url", "http://127.0.0.1:9/v1"],
            {},
            "api_key_env = 'BATCHCONF_API_KEY' (from default): expected the environment variable BATCHCONF_API_KEY",
        ),
    ],
)
def test_configuration_errors_exit_2_naming_key_value_and_expectation(
    fake_suite: FakeSuite, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake_suite.write("test_x", 'import pytest\n\n@pytest.mark.capability("create")\ndef test_x():\n    pass\n')
    result = fake_suite.run(*args)
    assert result.ret == 2
    assert f"batchconf: invalid configuration: {message}" in result.stdout.str() + result.stderr.str()


def test_the_cli_wins_over_env_and_files(fake_suite: FakeSuite, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_suite.path / "pyproject.toml").write_text('[tool.batchconf]\nprofile = "bogus"\nseed = 3\n')
    monkeypatch.setenv("BATCHCONF_PROFILE", "also-bogus")
    fake_suite.write("test_x", 'import pytest\n\n@pytest.mark.capability("create")\ndef test_x():\n    pass\n')
    result = fake_suite.run("--profile", "openai", "--collect-only")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["batchconf *: target emulator (in-process), profile openai (OpenAI), seed 3"])


def test_a_bad_pyproject_value_names_the_file(fake_suite: FakeSuite) -> None:
    (fake_suite.path / "pyproject.toml").write_text("[tool.batchconf]\nseed = -4\n")
    fake_suite.write("test_x", 'import pytest\n\n@pytest.mark.capability("create")\ndef test_x():\n    pass\n')
    result = fake_suite.run()
    assert result.ret == 2
    assert "seed = -4 (from " in result.stdout.str() + result.stderr.str()
    assert "pyproject.toml [tool.batchconf]): expected an integer >= 0" in result.stdout.str() + result.stderr.str()
