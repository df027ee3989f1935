"""Scenarios: submitted up front, polled together, failures confined to their tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import FakeSuite

pytest_plugins = ["pytester"]

SCENARIOS = '''
from typing import TYPE_CHECKING

import pytest
from conformance.scenarios import Submitted, scenario

SUBMITTED = []


def _submit(ctx, n):
    SUBMITTED.append(ctx.name)
    ids = ctx.custom_ids(n)
    file_id = ctx.upload_jsonl([ctx.chat_line(i) for i in ids])
    batch = ctx.create_batch(file_id)
    return Submitted(batch_id=batch["id"], input_custom_ids=ids, created=batch)


@scenario("three", capability="lifecycle", requests=3)
def three(ctx):
    """Three lines that all succeed."""
    return _submit(ctx, 3)


@scenario("two", capability="records", requests=2)
def two(ctx):
    return _submit(ctx, 2)


@scenario("cancelled_one", capability="cancel", requests=1)
def cancelled_one(ctx):
    return _submit(ctx, 1)


@scenario("storage_only", capability="storage_layout", requests=1)
def storage_only(ctx):
    raise AssertionError("submitted although the profile lacks storage_layout")
'''


def _suite(fake_suite: FakeSuite, tests: str) -> None:
    fake_suite.write("scenario_defs", SCENARIOS)
    fake_suite.write("test_scen", "from scenario_defs import SUBMITTED\nimport pytest\n\n" + tests)


def test_declared_scenarios_are_submitted_before_the_first_test_and_polled_together(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("create")
def test_first_runs_after_every_submission():
    assert SUBMITTED == ["three", "two"]


@pytest.mark.capability("records")
@pytest.mark.scenarios("three")
def test_reads_three(finished):
    done = finished("three")
    assert done.final["status"] == "completed"
    assert sorted(line["custom_id"] for line in done.output_lines) == sorted(done.input_custom_ids)
    assert done.error_lines == () and done.raw_error is None
    assert done.observation.snapshots[-1] is done.final
    assert done.created["status"] == "validating"


class TestClassLevel:
    pytestmark = pytest.mark.scenarios("two")

    @pytest.mark.capability("records")
    def test_reads_two(self, finished):
        assert len(finished("two").output_lines) == 2

    @pytest.mark.capability("records")
    @pytest.mark.scenarios("three")
    def test_reads_both(self, finished):
        assert finished("two").batch_id != finished("three").batch_id


@pytest.mark.capability("storage_layout")
@pytest.mark.scenarios("storage_only")
def test_deselected_with_its_scenario(finished):
    pass
""",
    )
    result = fake_suite.run()
    # Four tests and the two scenarios' own checks.
    result.assert_outcomes(passed=6, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "batchconf: submitting 2 scenario(s), 5 request(s): three, two",
            "batchconf: waiting up to 30s (timeout 'terminal') for 2 batch(es) to reach a terminal status*",
        ]
    )
    assert "requests submitted: 5 (budget unlimited)" in result.stdout.str()


def test_a_scenario_of_a_missing_capability_deselects_the_tests_that_read_it(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("records")
@pytest.mark.scenarios("storage_only")
def test_reads(finished):
    pass

@pytest.mark.capability("records")
def test_other():
    pass
""",
    )
    result = fake_suite.run()
    result.assert_outcomes(passed=1, deselected=1)
    assert "scenario[storage_only]" not in result.stdout.str()
    assert "needs scenario 'storage_only' of capability 'storage_layout'" in result.stdout.str()


def test_a_failed_scenario_is_reported_once_and_blocks_exactly_the_tests_that_need_it(fake_suite: FakeSuite) -> None:
    """Each failed scenario fails once, in its own check, with its cause; the tests reading
    it are skipped as blocked (naming that check), and the others run."""
    fake_suite.write(
        "test_fail",
        """
import pytest
from conformance.scenarios import Submitted, scenario


@scenario("rejected", capability="create", requests=1)
def rejected(ctx):
    ctx.create_batch("file-does-not-exist", endpoint="/v1/not-an-endpoint")
    raise AssertionError("unreachable")


@scenario("bogus_id", capability="lifecycle", requests=1)
def bogus_id(ctx):
    return Submitted(batch_id="batch_nope", input_custom_ids=["a"], created={})


@pytest.mark.capability("create")
@pytest.mark.scenarios("rejected")
def test_needs_rejected(finished):
    pass


@pytest.mark.capability("create")
@pytest.mark.scenarios("rejected")
def test_needs_rejected_too(finished):
    pass


@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios("bogus_id")
def test_needs_bogus(finished):
    pass


@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios("bogus_id", optional=True)
def test_reads_bogus_if_it_finished(finished):
    pass


@pytest.mark.capability("lifecycle")
def test_independent():
    pass
""",
    )
    result = fake_suite.run("--results", "r.jsonl", "-rs")
    result.assert_outcomes(passed=2, failed=2, errors=0)
    assert result.ret == 1
    out = result.stdout.str()
    assert "3 blocked" in out
    # The cause is told once per scenario, not once per test.
    assert (
        out.count("scenario 'rejected' could not be submitted: scenario 'rejected': could not create the batch: ") == 1
    )
    assert "HTTP 400" in out
    assert (
        out.count("scenario 'bogus_id' could not be polled: polling batch batch_nope: the target answered HTTP 404")
        == 1
    )
    assert "2 scenario(s) failed: rejected, bogus_id; each is reported once as batchconf::scenario[NAME]" in out
    assert "Traceback" not in out
    lines = {json.loads(x)["nodeid"]: json.loads(x) for x in (fake_suite.path / "r.jsonl").read_text().splitlines()}
    by_test = {line["test"]: line for line in lines.values()}
    assert lines["batchconf::scenario[rejected]"]["outcome"] == "failed"
    assert lines["batchconf::scenario[rejected]"]["capability"] == "create"
    assert "could not be submitted" in lines["batchconf::scenario[rejected]"]["message"]
    for test in ("test_needs_rejected", "test_needs_rejected_too", "test_needs_bogus"):
        assert by_test[test]["outcome"] in ("blocked", "skipped"), by_test[test]
        assert "see batchconf::scenario[" in by_test[test]["message"]
    assert by_test["test_independent"]["outcome"] == "passed"
    assert by_test["test_reads_bogus_if_it_finished"]["outcome"] == "passed"


def test_a_wait_timeout_is_named_and_confined(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_stuck",
        """
import pytest
from conformance.scenarios import Submitted, scenario


@scenario("stuck", capability="lifecycle", requests=1)
def stuck(ctx):
    ctx.control.set_timing(progression="manual")
    ids = ctx.custom_ids(1)
    batch = ctx.create_batch(ctx.upload_jsonl([ctx.chat_line(i) for i in ids]))
    return Submitted(batch["id"], ids, batch)


@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios("stuck")
def test_needs_stuck(finished):
    pass
""",
    )
    result = fake_suite.run("--wait-timeout", "terminal=0.2")
    # On the emulator a batch that never ends is a failure of the scenario (a URL target's
    # would be pending instead).
    result.assert_outcomes(failed=1)
    assert "1 blocked" in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*scenario 'stuck' could not be polled: batch batch_* did not reach a terminal status * within "
            "timeout 'terminal' = 0.2s: last status 'validating' after * polls*"
        ]
    )


def test_an_undeclared_scenario_is_refused_with_the_fix(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("records")
def test_forgot_to_declare(finished):
    finished("three")
""",
    )
    result = fake_suite.run()
    result.assert_outcomes(failed=1)
    assert "add @pytest.mark.scenarios('three') to it" in result.stdout.str()


def test_the_budget_stops_the_run_before_anything_is_submitted(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("records")
@pytest.mark.scenarios("three", "two")
def test_reads(finished):
    pass
""",
    )
    result = fake_suite.run("--max-requests", "4")
    assert result.ret == 2
    out = result.stdout.str() + result.stderr.str()
    assert "request budget exceeded: submitting 2 scenario(s) (three, two) needs 5 request(s) but only 4 of" in out
    assert "max_requests = 4 remain" in out
    assert "batchconf: submitting" not in result.stdout.str()


def test_tests_charge_their_own_submissions_and_skip_over_budget(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("records")
@pytest.mark.scenarios("three")
def test_a(bc_budget):
    assert bc_budget.spent == 3
    bc_budget.charge(1, "test_a's batch")
    assert bc_budget.remaining == 0

@pytest.mark.capability("records")
def test_b(bc_budget):
    bc_budget.charge(1, "test_b's batch")
""",
    )
    result = fake_suite.run("--max-requests", "4", "-rs")
    result.assert_outcomes(passed=2, skipped=1)  # test_a and scenario "three"s own check
    assert "request budget exceeded: test_b's batch needs 1 request(s) but only 0 of" in result.stdout.str()


def test_a_state_file_is_ignored_for_the_in_process_emulator(fake_suite: FakeSuite) -> None:
    _suite(
        fake_suite,
        """
@pytest.mark.capability("records")
@pytest.mark.scenarios("three")
def test_a(finished):
    assert not finished("three").resumed
""",
    )
    result = fake_suite.run("--state-file", "state.json")
    result.assert_outcomes(passed=2)
    assert "ignored: batches of the in-process emulator end with the run" in result.stdout.str()
    assert not (fake_suite.path / "state.json").exists()


def test_a_scenario_with_an_unknown_timeout_name_is_a_harness_error(fake_suite: FakeSuite) -> None:
    fake_suite.write(
        "test_t",
        """
import pytest
from conformance.scenarios import scenario

@scenario("slowpoke", capability="lifecycle", requests=1, timeout="forever")
def slowpoke(ctx):
    raise AssertionError("never submitted")

@pytest.mark.capability("lifecycle")
@pytest.mark.scenarios("slowpoke")
def test_t(finished):
    pass
""",
    )
    result = fake_suite.run()
    assert result.ret == 2
    assert "scenario 'slowpoke': unknown timeout 'forever' (known: request, terminal" in (
        result.stdout.str() + result.stderr.str()
    )


def test_a_scenario_that_cannot_be_resumed_is_submitted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state file names both scenarios, but only the resumable one is resumed."""
    from conformance import scenarios

    def build(ctx: scenarios.ScenarioContext) -> scenarios.Submitted:
        raise AssertionError("not called by plan()")

    for name, resumable in (("kept", True), ("again", False)):
        monkeypatch.setitem(
            scenarios._REGISTRY, name, scenarios.ScenarioSpec(name, build, "records", 1, resumable=resumable)
        )
    state = scenarios.StateFile(tmp_path / "state.json", "http://t/v1", "openai")
    for name in ("kept", "again"):
        state.scenarios[name] = {"batch_id": f"batch_{name}", "input_custom_ids": [], "created": {}}
    runner = scenarios.ScenarioRunner(
        api=None,  # type: ignore[arg-type]
        profile=None,  # type: ignore[arg-type]
        waiter=None,  # type: ignore[arg-type]
        budget=scenarios.Budget(None),
        state=state,
    )
    assert runner.plan(["kept", "again"]) == (["kept"], ["again"])


def test_a_shared_fixture_that_fails_is_reported_once(fake_suite: FakeSuite) -> None:
    """A module fixture failing for every test that uses it errors once; the others are
    blocked, naming the test that reported it. A function fixture fails each test anew."""
    fake_suite.write(
        "test_fixture",
        """
import pytest
from conformance.invariants import ContractViolation


@pytest.fixture(scope="module")
def uploaded():
    raise ContractViolation("upload", "the target refused the upload")


@pytest.fixture
def fresh():
    raise ContractViolation("fresh", "refused again")


@pytest.mark.capability("files")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_uses_upload(uploaded, n):
    pass


@pytest.mark.capability("files")
@pytest.mark.parametrize("n", [1, 2])
def test_uses_fresh(fresh, n):
    pass
""",
    )
    result = fake_suite.run("--results", "r.jsonl")
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "2 blocked" in out
    # Once in the errors section (the short summary at the end repeats each error's line).
    assert out.split("short test summary")[0].count("the target refused the upload") == 1
    lines = [json.loads(x) for x in (fake_suite.path / "r.jsonl").read_text().splitlines()]
    blocked = [line for line in lines if line["outcome"] == "blocked"]
    assert [line["nodeid"].rsplit("::", 1)[-1] for line in blocked] == ["test_uses_upload[2]", "test_uses_upload[3]"]
    assert all("the setup failure reported by test_fixture.py::test_uses_upload[1]" in b["message"] for b in blocked)


def test_a_module_that_fails_to_import_is_reported_as_such(fake_suite: FakeSuite) -> None:
    """A collection error is shown as pytest shows it, not hidden by an internal error."""
    fake_suite.write("test_broken", "import no_such_module_anywhere\n")
    result = fake_suite.run()
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out
    assert "no_such_module_anywhere" in out
