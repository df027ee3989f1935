"""The results file: deviation and blocked lines, the run's name and start time, and node ids
that do not depend on the directory the run started from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytest import TestReport

from conformance import matrix
from conformance._reports import OUTCOMES, ItemInfo, ResultsRecorder, normalise_nodeid

if TYPE_CHECKING:
    from conftest import FakeSuite

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

SIGNALLED = """
import pytest

DEVIATION = (
    "fact errors.batch_not_found.param (UNVERIFIED; source: inferred from the SDK): "
    "received None, expected 'id'"
)


@pytest.fixture
def needs_scenario(request):
    # What the plugin does for a test whose scenario failed: mark the skip as blocked.
    request.node.user_properties.append(("batchconf_outcome", "blocked"))
    pytest.skip("scenario 'finished' failed: 500 on create; see batchconf::scenario[finished]")


@pytest.mark.capability("create")
def test_deviates(request):
    request.node.user_properties.append(("batchconf_outcome", "deviation"))
    pytest.skip(DEVIATION + "\\nsecond paragraph line")


@pytest.mark.capability("create")
def test_blocked(needs_scenario):
    pass


@pytest.mark.capability("create")
def test_skip():
    pytest.skip("an ordinary skip")


@pytest.mark.capability("create")
@pytest.mark.xfail(reason="an ordinary xfail", strict=True)
def test_xfail():
    assert False


@pytest.mark.capability("create")
def test_other_property(record_property):
    record_property("batchconf_outcome", "nonsense")
    pytest.skip("still a skip")
"""


def _lines(path: Path) -> dict[str, dict[str, Any]]:
    return {line["test"]: line for line in map(json.loads, path.read_text().splitlines())}


def test_deviation_and_blocked_lines_and_ordinary_skips_unchanged(fake_suite: FakeSuite, tmp_path: Path) -> None:
    fake_suite.write("test_s", SIGNALLED)
    result = fake_suite.run("--results", "r.jsonl", "--target-name", "acme staging")
    assert result.ret == 0
    lines = _lines(fake_suite.path / "r.jsonl")
    assert {test: line["outcome"] for test, line in lines.items()} == {
        "test_deviates": "deviation",
        "test_blocked": "blocked",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_other_property": "skipped",
    }
    assert lines["test_deviates"]["message"].startswith("fact errors.batch_not_found.param (UNVERIFIED; source: ")
    assert lines["test_blocked"]["message"].startswith("scenario 'finished' failed")
    assert lines["test_xfail"]["message"] == "an ordinary xfail"
    deviates = lines["test_deviates"]
    assert deviates["target_name"] == "acme staging"
    assert datetime.fromisoformat(deviates["started"]).utcoffset() is not None

    out = tmp_path / "m.md"
    assert matrix.main([str(fake_suite.path / "r.jsonl"), "--md", str(out)]) == 0
    text = out.read_text()
    assert "| acme staging | DEVIATION 0/2 (1 deviation, 1 known, 1 blocked, 2 skipped) | " in text
    assert "  - `test_deviates` deviation: fact errors.batch_not_found.param" in text
    assert (
        "  - blocked: scenario 'finished' failed: 500 on create; see batchconf::scenario\\[finished\\]: `test_blocked`"
        in text
    )


def test_suite_nodeids_do_not_depend_on_where_the_run_started(fake_suite: FakeSuite) -> None:
    """The suite's modules, wherever pytest found them, are named from conformance/suite/."""
    folder = fake_suite.path / "venv" / "site-packages" / "conformance" / "suite"
    folder.mkdir(parents=True)
    test = '\nimport pytest\n\n@pytest.mark.capability("create")\ndef test_t():\n    pass\n'
    (folder / "test_n.py").write_text(test)
    fake_suite.write("test_local", test)
    assert fake_suite.run("--results", "r.jsonl", str(folder), "test_local.py").ret == 0
    nodeids = sorted(line["nodeid"] for line in map(json.loads, (fake_suite.path / "r.jsonl").read_text().splitlines()))
    assert nodeids == ["conformance/suite/test_n.py::test_t", "test_local.py::test_t"]


def test_the_real_suite_run_from_elsewhere_is_named_from_conformance_suite(tmp_path: Path) -> None:
    """`--pyargs conformance` from an unrelated folder: pytest names the tests relative to
    the package (`suite/test_files.py::...`); the results file names them from
    `conformance/suite/`, as a run from the checkout does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    args = ["--pyargs", "conformance", "-q", "-p", "no:cacheprovider", "-k", "test_unknown_file_is_404"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--results", "r.jsonl"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    ran = [line["nodeid"] for line in lines if line["outcome"] == "passed"]
    assert ran and all(n.startswith("conformance/suite/test_files.py::test_unknown_file_is_404[") for n in ran), ran
    assert all(line["nodeid"].startswith("conformance/suite/") for line in lines)


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        (
            "../../.venv/lib/python3.11/site-packages/conformance/suite/test_x.py::test_t[a]",
            "conformance/suite/test_x.py::test_t[a]",
        ),
        ("/abs/checkout/conformance/suite/test_x.py::C::test_t", "conformance/suite/test_x.py::C::test_t"),
        ("conformance/suite/test_x.py::test_t", "conformance/suite/test_x.py::test_t"),
        # Only the path is looked at, and only whole folder names.
        ("tests/test_y.py::test_t[conformance/suite/z]", "tests/test_y.py::test_t[conformance/suite/z]"),
        ("myconformance/suite/test_x.py::test_t", "myconformance/suite/test_x.py::test_t"),
        ("batchconf::scenario[finished]", "batchconf::scenario[finished]"),
        ("a/conformance/suite/b/conformance/suite/test_x.py", "conformance/suite/test_x.py"),
    ],
)
def test_normalise_nodeid(nodeid: str, expected: str) -> None:
    assert normalise_nodeid(nodeid) == expected


def _report(when: str, outcome: str, *, properties: Sequence[tuple[str, object]] = (), **extra: Any) -> TestReport:
    """A phase report as pytest builds it; a skip's longrepr is (path, line, "Skipped: message")."""
    longrepr: Any = ("f.py", 1, "Skipped: the message") if outcome == "skipped" else None
    report = TestReport("n::t", ("f.py", 1, "t"), {}, outcome, longrepr, when, user_properties=properties)  # type: ignore[arg-type]
    for name, value in extra.items():
        setattr(report, name, value)
    return report


def _fold(*reports: TestReport) -> dict[str, Any]:
    recorder = ResultsRecorder(meta={"profile": "openai"}, redact=str)
    info = ItemInfo("n::t", "t", "create")
    for report in reports:
        recorder.report(report, info)
    assert len(recorder.lines) == 1
    return recorder.lines[0]


def test_the_phases_fold_with_deviation_and_blocked_ranked() -> None:
    deviation = [("batchconf_outcome", "deviation")]
    blocked = [("batchconf_outcome", "blocked")]
    # A deviation in the call, an error in teardown: the error describes the test.
    line = _fold(
        _report("setup", "passed"),
        _report("call", "skipped", properties=deviation),
        _report("teardown", "failed", longrepr="teardown broke"),
    )
    assert line["outcome"] == "error"
    line = _fold(
        _report("setup", "passed"), _report("call", "skipped", properties=deviation), _report("teardown", "passed")
    )
    assert (line["outcome"], line["message"]) == ("deviation", "the message")
    line = _fold(_report("setup", "skipped", properties=blocked), _report("teardown", "passed"))
    assert line["outcome"] == "blocked"
    # An xfail is an xfail even if a property says otherwise: the property marks skips only.
    line = _fold(
        _report("setup", "passed"),
        _report("call", "skipped", properties=deviation, wasxfail="reason: known"),
        _report("teardown", "passed"),
    )
    assert (line["outcome"], line["message"]) == ("xfailed", "known")
    assert {"deviation", "blocked"} <= set(OUTCOMES)


def test_normalise_nodeid_by_the_tests_file(tmp_path: Path) -> None:
    import conformance.suite

    suite = Path(conformance.suite.__file__).parent
    assert (
        normalise_nodeid("suite/test_files.py::t[x]", suite / "test_files.py")
        == "conformance/suite/test_files.py::t[x]"
    )
    assert normalise_nodeid("test_files.py::t", suite / "test_files.py") == "conformance/suite/test_files.py::t"
    # A file of the same name elsewhere is not the suite's.
    assert normalise_nodeid("suite/test_files.py::t", tmp_path / "suite" / "test_files.py") == "suite/test_files.py::t"
