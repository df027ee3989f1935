"""The suite under the faults a user can switch on: what it tolerates and what it flags.

Decided from the contract (openai-batch-spec.md §2.3: `finalizing -> completed` sets
`completed_at` and `output_file_id` and/or `error_file_id`; `expired` = not finished within
the window, which runs from `created_at`):
- `completed` shown before its `output_file_id` is a contract violation, reported once as
  `file-ids` with the lag; the waiter re-polls (bounded) so the results are still fetched,
  and no other check (exactly-once, counts, records) fails because of it;
- a batch stuck in `validating` that expires at its window is allowed (the profile's graph
  has `validating -> expired`), and every invariant holds on it;
- transient store errors that the provider retries leave nothing to flag; a store that
  keeps failing mid-run makes the batch fail off the OpenAI graph, which is flagged.

The real suite runs in a subprocess against the in-process emulator, with the fault
switched on through the admin routes (a small plugin posts it once the target is built).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import invariants as inv
from conformance._waiter import Waiter
from schemas import load_profile

ROOT = Path(__file__).resolve().parents[2]
OPENAI = load_profile("openai")
TERMINAL = OPENAI.lifecycle.terminal

#: A plugin that switches faults on through the target's admin routes as soon as the run's
#: target exists (before any scenario is submitted): FAULTS is a JSON list of [route, body].
_PLUGIN = """
import json, os

import pytest

from conformance._run import get_run


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    run = get_run(session.config)
    if not run.active or session.config.option.collectonly:
        return
    target = run.ensure_target()
    for route, body in json.loads(os.environ["FAULTS"]):
        answer = target.http.post(f"{target.root_url}/_emulator/{route}", json=body)
        assert answer.status_code == 200, answer.text
"""

_STUCK_TEST = '''
"""A stuck validating batch, run with the suite's own fixtures and checks."""

import pytest

from conformance import invariants as inv
from conformance import strategies
from conformance.suite import _support as sup


@pytest.mark.capability("expiry")
def test_stuck_validating_batch_expires(api, control, waiter, bc_profile, bc_target):
    """A batch held in validation MUST end in the profile's expiry status when its window
    passes, with every batch invariant holding."""
    batch = strategies.build_valid(bc_profile, 3, prefix="stuck")
    source = sup.stage_ok(api, bc_profile, batch.content)
    created = sup.create_ok(api, bc_profile, sup.batch_request(bc_profile, source, batch.endpoint))
    seen = [inv.expect_ok(api.retrieve_batch(created["id"]), bc_profile, "batch") for _ in range(3)]
    assert [s["status"] for s in seen] == ["validating"] * 3
    control.advance(86_401)
    run = sup.run_to_end(api, waiter, bc_profile, created, batch.custom_ids, seen_before=seen, timeout="expiry")
    sup.expect_final_role(run, bc_profile, "expired", "expiry-status", "the batch did not expire", "expiry.enters")
    sup.check_run(run, bc_profile, bc_target)
'''


def _suite(tmp_path: Path, faults: list[Any], *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "suite_faults_plugin.py").write_text(_PLUGIN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
        "FAULTS": json.dumps(faults),
    }
    for name in [n for n in env if n.startswith("BATCHCONF_")]:
        del env[name]
    command = [sys.executable, "-m", "pytest", "-p", "suite_faults_plugin", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "--profile", "openai", "--seed", "5", "-q", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _outcome(output: str, word: str) -> list[str]:
    """The node ids the short summary (`-rA`) lists with `word` (FAILED, PASSED)."""
    return sorted(line.split()[1] for line in output.splitlines() if line.startswith(f"{word} "))


# -- The real suite, with a fault switched on ------------------------------------------------


def test_completed_before_its_output_file_is_flagged_once_as_file_ids(tmp_path: Path) -> None:
    """late_output_file (2 polls) on every batch: only the file-id checks fail, each saying
    at which observation the status came without its output file and how many polls later
    the id appeared; exactly-once, line counts and records pass on the fetched results."""
    done = _suite(
        tmp_path,
        [["consistency", {"kind": "late_output_file", "polls": 2}]],
        "--pyargs",
        "conformance",
        "-k",
        "(test_file_ids_appear_only_when_due or test_every_custom_id_exactly_once or test_line_counts_equal"
        " or test_records_validate) and (all_succeed or mixed_results)",
        "-rA",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-5000:]
    assert _outcome(done.stdout, "FAILED") == [
        "suite/test_lifecycle.py::test_file_ids_appear_only_when_due[all_succeed]",
        "suite/test_lifecycle.py::test_file_ids_appear_only_when_due[mixed_results]",
    ], output[-5000:]
    passed = _outcome(done.stdout, "PASSED")
    for check in ("test_every_custom_id_exactly_once", "test_line_counts_equal_request_counts"):
        for scenario in ("all_succeed", "mixed_results"):
            assert f"suite/test_records.py::{check}[{scenario}]" in passed, done.stdout[-3000:]
    assert (
        "[file-ids] observation #3: status 'completed' with 3 lines for output_file_id, but output_file_id is null "
        "(it was set 2 poll(s) later: the status was reported before its results)"
    ) in done.stdout, done.stdout[-5000:]


def test_transient_store_errors_leave_the_suite_nothing_to_flag(tmp_path: Path) -> None:
    """Store reads and writes failing with 503/500, each fewer times in a row than the
    provider's attempts: every record and lifecycle check passes (exit 0)."""
    done = _suite(
        tmp_path,
        [
            ["storage-faults", {"operation": "put", "status": 503, "count": 2}],
            ["storage-faults", {"operation": "get", "status": 500, "count": 2}],
        ],
        "--pyargs",
        "conformance",
        "-k",
        "test_records.py or test_file_ids_appear_only_when_due or test_statuses_follow_the_graph",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.splitlines()[-1]


def test_a_store_that_keeps_failing_mid_run_is_flagged_as_a_failed_batch_off_the_graph(tmp_path: Path) -> None:
    """Every result write failing: the batches end `failed` from `finalizing`, which the
    OpenAI graph does not have: the status-path check fails and names the edge."""
    done = _suite(
        tmp_path,
        [["storage-faults", {"operation": "put", "status": 503}]],
        "--pyargs",
        "conformance",
        "-k",
        "test_statuses_follow_the_graph and all_succeed",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-5000:]
    assert "observed 'finalizing' then 'failed', which is not an edge of the status graph" in done.stdout, output[
        -5000:
    ]


def test_a_stuck_validating_batch_that_expires_is_accepted(tmp_path: Path) -> None:
    """stuck_validating through the admin route, then the window passes: the suite's own
    expiry checks (final role, every invariant, validating -> expired) accept the batch."""
    (tmp_path / "test_stuck.py").write_text(_STUCK_TEST)
    done = _suite(tmp_path, [["consistency", {"kind": "stuck_validating", "count": 1}]], "test_stuck.py")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "1 passed" in done.stdout


# -- The waiter and the invariants, on their own -----------------------------------------------


class _Api:
    """retrieve_batch answers the scripted bodies in turn (the last one repeats)."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.bodies = bodies
        self.calls = 0

    def retrieve_batch(self, batch_id: str) -> Any:
        body = self.bodies[min(self.calls, len(self.bodies) - 1)]
        self.calls += 1
        return _Answer(body)


class _Answer:
    status = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self.json = body
        self.content = json.dumps(body).encode()


def _batch(status: str, output: str | None, completed: int = 3) -> dict[str, Any]:
    return {
        "id": "batch_x",
        "status": status,
        "output_file_id": output,
        "error_file_id": None,
        "request_counts": {"total": 3, "completed": completed if status == "completed" else 0, "failed": 0},
    }


def _waiter(settle_polls: int = 3) -> Waiter:
    return Waiter(
        terminal=TERMINAL,
        timeouts={"terminal": 100.0},
        settled=inv.results_settled(OPENAI),
        settle_polls=settle_polls,
        sleep=lambda s: None,
    )


def test_the_waiter_polls_again_until_the_output_file_appears() -> None:
    """Two `completed` answers without output_file_id, then one with it: the waiter ends on
    the third, keeping every snapshot for the invariants."""
    api = _Api([_batch("in_progress", None), _batch("completed", None), _batch("completed", None)])
    api.bodies.append(_batch("completed", "file-1"))
    obs = _waiter().wait(api, "batch_x")
    assert [s["output_file_id"] for s in obs.snapshots] == [None, None, None, "file-1"]
    assert obs.settle_polls == 2 and obs.error is None and obs.final["output_file_id"] == "file-1"


def test_the_waiter_stops_polling_again_after_its_bound() -> None:
    """An output file that never appears: settle_polls more polls, then the waiter stops
    without an error (the invariants flag the missing id)."""
    api = _Api([_batch("completed", None)])
    obs = _waiter(settle_polls=2).wait(api, "batch_x")
    assert api.calls == 3 and obs.error is None and obs.final["output_file_id"] is None


def test_the_waiter_does_not_poll_again_where_no_reference_is_due() -> None:
    """A completed batch with nothing succeeded (no output file due) and a failed batch end
    the wait at once."""
    for body in (_batch("completed", None, completed=0), _batch("failed", None)):
        api = _Api([body])
        _waiter().wait(api, "batch_x")
        assert api.calls == 1


def test_file_ids_check_names_the_lag_only_when_the_id_came_later() -> None:
    """check_file_ids reports the observation without the id; with a later observation that
    has it, the message says how many polls later."""
    created = _batch("validating", None)
    lagging = [created, _batch("completed", None), _batch("completed", "file-1")]
    with pytest.raises(inv.ContractViolation) as late:
        inv.check_file_ids(lagging, OPENAI)
    assert "observation #1: status 'completed' with 3 lines for output_file_id, but output_file_id is null" in str(
        late.value
    )
    assert "(it was set 1 poll(s) later: the status was reported before its results)" in str(late.value)
    with pytest.raises(inv.ContractViolation) as never:
        inv.check_file_ids([created, _batch("completed", None)], OPENAI)
    assert "poll(s) later" not in str(never.value)
    inv.check_file_ids([created, _batch("completed", "file-1")], OPENAI)


def test_the_openai_graph_accepts_expiry_from_validating_and_nothing_else_new() -> None:
    """validating -> expired is an edge (the window runs from created_at); validating ->
    completed is still flagged."""
    inv.check_status_path(["validating", "expired"], OPENAI)
    with pytest.raises(inv.ContractViolation):
        inv.check_status_path(["validating", "completed"], OPENAI)
