"""`batchconf load`: Locust against the emulator (or a URL target on 127.0.0.1), the audit in
the exit code, the request budget, distributed mode; every run a few seconds long.

Locust always runs in a subprocess (importing it monkey-patches the process with gevent);
only the Locust-free parts (the audit, the summary table) are imported here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from emulator._cli.load import exit_status, format_summary, parse_duration

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "BATCHCONF_TEST_LOAD_KEY"


def _audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("batchconf_load_audit", ROOT / "emulator" / "_locust" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(*args: str, timeout: float = 90, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def _ops(summary: dict[str, Any]) -> set[str]:
    return {r["name"] for r in summary["rows"] if r["type"] not in ("AUDIT", "FLOW", "SUBMIT")}


# -- runs against the emulator the command starts -------------------------------------------


@pytest.mark.parametrize(
    ("profile", "ops"),
    [
        pytest.param(
            "openai", {"upload_file", "create_batch", "retrieve_batch", "file_content", "list_batches"}, id="openai"
        ),
        pytest.param(
            "scaigrid",
            {"create_batch", "retrieve_batch", "batch_results", "compat.upload_file", "compat.create_batch"},
            id="scaigrid",
        ),
        pytest.param("scaleway", {"put_object", "create_batch", "retrieve_batch", "get_object"}, id="scaleway"),
    ],
)
def test_load_against_the_emulator_reports_per_operation_and_audits(
    profile: str, ops: set[str], tmp_path: Path
) -> None:
    """`batchconf load` MUST start the emulator, run each dialect's users under operation
    names, write Locust's CSV and HTML, print the table and the audit's verdict, and exit 0
    when every batch passes the audit."""
    out = tmp_path / "reports"
    proc = _load("--emulator-profile", profile, "--duration", "3s", "--users", "6", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = _summary(out)
    assert ops <= _ops(summary), _ops(summary)
    assert summary["http"]["failures"] == 0
    assert summary["audit"]["requests"] > 0 and summary["audit"]["failures"] == 0
    assert summary["flow"]["requests"] == summary["audit"]["requests"]
    assert (out / "report.html").stat().st_size > 0
    assert (out / "locust_stats.csv").read_text().count("create_batch") >= 1
    assert "audit: PASSED" in proc.stdout
    assert re.search(r"batches finished and audited: [1-9]\d*; lines processed: [1-9]", proc.stdout)
    assert "p99 ms" in proc.stdout and "time to terminal" in proc.stdout


def test_distributed_mode_one_master_one_worker(tmp_path: Path) -> None:
    """With `--workers 1`, `batchconf load` MUST run a Locust master and one worker on
    127.0.0.1 whose merged stats carry the audited batches."""
    out = tmp_path / "dist"
    proc = _load("--workers", "1", "--duration", "4s", "--users", "4", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "locust-worker-1.log").exists()
    summary = _summary(out)
    assert summary["audit"]["requests"] > 0 and summary["audit"]["failures"] == 0
    assert "upload_file" in _ops(summary)


def test_without_locust_exit_2_names_the_extra(tmp_path: Path) -> None:
    """Without Locust, `batchconf load` MUST exit 2 and name the install command."""
    code = (
        "import sys; sys.modules['locust'] = None\n"
        "from emulator.cli import main\n"
        f"sys.exit(main(['load', '--duration', '1s', '--out', {str(tmp_path)!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert "pip install -e '.[load]'" in proc.stderr


# -- a URL target: a server started here, as a user would ------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`batchconf serve` on a free port of 127.0.0.1, access log on: (root URL, log path)."""
    log = tmp_path_factory.mktemp("served") / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BATCHCONF_API_KEYS": "sk-load-test"}
    cmd = [sys.executable, "-m", "emulator.cli", "serve", "--port", "0", "--progression", "per_poll"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*cmd, "--log-level", "info"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r" on (http://127\.0\.0\.1:\d+)/", log.read_text(errors="replace"))
            time.sleep(0.05)
        assert found, log.read_text()
        yield found.group(1), log
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_url_target_mutation_fails_the_run_and_no_admin_route_is_called(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    """Against a URL target, `batchconf load` MUST call no admin route, and a target that
    drops output lines MUST make the run exit 1 through the lost-nothing audit."""
    url, log = served
    r = httpx.put(f"{url}/_emulator/mutations", json={"enabled": ["drop_output_line"]}, timeout=10)
    assert r.status_code == 200, r.text
    admin_before = log.read_text().count("/_emulator")
    try:
        out = tmp_path / "mutated"
        proc = _load(
            "--target-url", url, "--api-key-env", KEY_ENV, "--duration", "3s", "--users", "3", "--out", str(out),
            env={KEY_ENV: "sk-load-test"},
        )  # fmt: skip
    finally:
        httpx.put(f"{url}/_emulator/mutations", json={"enabled": []}, timeout=10)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "audit: FAILED" in proc.stdout
    assert _summary(out)["audit"]["failures"] > 0
    # Since the mutation was switched on, the only admin request is the test's own reset.
    assert log.read_text().count("/_emulator") == admin_before + 1
    assert "sk-load-test" not in proc.stdout + proc.stderr


def test_url_target_budget_refuses_a_first_wave_over_it(served: tuple[str, Path], tmp_path: Path) -> None:
    """A run whose first wave (one batch per user) exceeds `--max-requests` MUST be refused
    with exit 2 before Locust starts."""
    url, _ = served
    proc = _load(
        "--target-url", url, "--api-key-env", KEY_ENV, "--users", "5", "--lines", "10", "--max-requests", "30",
        "--duration", "3s", "--out", str(tmp_path / "refused"), env={KEY_ENV: "sk-load-test"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "refusing to start" in proc.stderr and "--max-requests" in proc.stderr
    assert not (tmp_path / "refused" / "locust.log").exists()


def test_url_target_budget_stops_submitting(served: tuple[str, Path], tmp_path: Path) -> None:
    """Against a URL target the run MUST stop submitting once `--max-requests` input lines
    are spent."""
    url, _ = served
    out = tmp_path / "budget"
    proc = _load(
        "--target-url", url, "--api-key-env", KEY_ENV, "--users", "3", "--lines", "10", "--max-requests", "30",
        "--duration", "3s", "--out", str(out), env={KEY_ENV: "sk-load-test"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = _summary(out)
    assert 10 <= summary["submit"]["length"] <= 30
    # Every batch submitted within the budget was seen through to the audit.
    assert summary["audit"]["requests"] == summary["submit"]["requests"]


def test_a_hand_started_worker_needs_its_own_budget(tmp_path: Path) -> None:
    """A `--worker` started by hand MUST be refused (exit 2, before Locust starts) unless it is
    given its share of the budget: it cannot know how many workers share the master's, and
    would otherwise spend all of it."""
    proc = _load(
        "--worker", "--master-host", "127.0.0.1", "--master-port", "1", "--api-key-env", KEY_ENV,
        "--out", str(tmp_path / "worker"), env={KEY_ENV: "sk-load-test"}, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--max-requests" in proc.stderr and "share" in proc.stderr
    assert not (tmp_path / "worker" / "locust.log").exists()


# -- the Locust-free parts ---------------------------------------------------------------------


def test_audit_problems_names_lost_duplicated_invented_and_miscounted_lines() -> None:
    """The audit MUST flag a missing, a duplicated and an unknown custom_id, and counts that
    disagree with the files; a clean batch MUST pass; a cancelled batch that dropped its
    unfinished lines owes them only when the profile does not drop them."""
    audit = _audit_module().audit_problems
    ids = ["a", "b", "c"]
    ok = {"total": 3, "completed": 2, "failed": 1}
    assert audit(ids, "completed", ok, [("a", True), ("b", True), ("c", False)]) == []
    found = audit(ids, "completed", ok, [("a", True), ("a", True), ("z", False)])
    assert any("missing" in p for p in found)
    assert any("more than once" in p for p in found)
    assert any("never submitted" in p for p in found)
    assert any("counts" in p for p in audit(ids, "completed", ok, [("a", True), ("b", True), ("c", True)]))
    partial = {"total": 3, "completed": 1, "failed": 0}
    assert audit(ids, "cancelled", partial, [("a", True)], cancel_drops=True) == []
    assert any("missing" in p for p in audit(ids, "cancelled", partial, [("a", True)]))
    assert audit(ids, "cancelled", {"total": 0, "completed": 0, "failed": 0}, []) == []


def _fake_summary(audit_failures: int = 0, http_failures: int = 0, audited: int = 4) -> dict[str, Any]:
    def fig(requests: int, failures: int, length: int = 0) -> dict[str, Any]:
        return {
            "requests": requests,
            "failures": failures,
            "rps": 1.5,
            "p50_ms": 3,
            "p95_ms": 9,
            "p99_ms": 12,
            "length": length,
        }

    return {
        "rows": [
            {"type": "POST", "name": "create_batch", **fig(4, http_failures)},
            {"type": "AUDIT", "name": "lost-nothing (completed)", **fig(audited, audit_failures, 40)},
        ],
        "http": fig(4, http_failures),
        "audit": fig(audited, audit_failures, 40),
        "flow": fig(audited, 0, 40),
        "submit": fig(audited, 0, 40),
    }


def test_exit_status_and_table() -> None:
    """The exit status MUST be 1 on an audit failure, a failed request or nothing audited,
    else 0; the table MUST show p50/p95/p99 per operation and leave pseudo-requests out."""
    assert exit_status(_fake_summary())[0] == 0
    assert exit_status(_fake_summary(audit_failures=1))[0] == 1
    assert exit_status(_fake_summary(http_failures=1))[0] == 1
    assert exit_status(_fake_summary(audited=0))[0] == 1
    table = format_summary(_fake_summary())
    assert "create_batch" in table and "p99 ms" in table and "lost-nothing" not in table
    assert "lines processed: 40" in table


def test_parse_duration() -> None:
    """Durations MUST read in Locust's syntax and refuse anything else."""
    assert parse_duration("30s") == 30 and parse_duration("1m30s") == 90 and parse_duration("7") == 7
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")


def test_the_locust_users_ship_inside_the_package() -> None:
    """`batchconf load` MUST find its Locust users inside the installed `emulator` package (a
    wheel ships them), not beside a source checkout."""
    from emulator import _cli
    from emulator._cli.load import _locustfile

    package = Path(_cli.__file__).resolve().parents[1]
    locustfile = _locustfile()
    assert locustfile.is_relative_to(package)
    assert {p.name for p in locustfile.parent.glob("*.py")} >= {"locustfile.py", "users.py", "audit.py", "shapes.py"}
