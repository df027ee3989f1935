"""`batchconf matrix` (`conformance.matrix`): marks, runs, merging, Markdown and the command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import matrix

ROW = "openai (emulator)"


def _line(nodeid: str, capability: str, outcome: str, profile: str = "openai", **extra: Any) -> dict[str, Any]:
    line = {
        "nodeid": nodeid,
        "test": nodeid.rsplit("::", 1)[-1],
        "capability": capability,
        "outcome": outcome,
        "profile": profile,
        "target": "emulator (in-process)",
        "target_kind": "emulator",
        "seed": 0,
        "harness": "0.1.0",
        "duration": 0.1,
        "message": "",
    }
    line.update(extra)
    return line


def _named(nodeid: str, capability: str, outcome: str, name: str, started: str, **extra: Any) -> dict[str, Any]:
    """A line as the plugin writes it since runs have names and start times."""
    return _line(nodeid, capability, outcome, target_name=name, started=started, **extra)


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# Emoji and pictographs, and the variation selector that turns a symbol into an emoji.
_EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]")


def test_cells_count_outcomes_and_choose_a_mark() -> None:
    m = matrix.build(
        [
            _line("t::a", "lifecycle", "passed"),
            _line("t::b", "lifecycle", "passed"),
            _line("t::c", "cancel", "failed"),
            _line("t::d", "cancel", "passed"),
            _line("t::e", "records", "xfailed"),
            _line("t::f", "storage_layout", "deselected", reason_kind="capability", message="not offered"),
            _line("t::g", "auth", "deviation"),
            _line("t::h", "auth", "passed"),
            _line("t::i", "files", "failed"),
            _line("t::j", "files", "deviation"),
            _line("t::k", "files", "deviation"),
            _line("t::l", "files", "blocked"),
            _line("t::m", "expiry", "blocked"),
            _line("t::n", "expiry", "blocked"),
            _line("t::o", "expiry", "skipped"),
            _line("t::p", "usage", "xpassed"),
        ]
    )
    assert m.cell(ROW, "lifecycle").text() == "PASS 2/2"
    assert m.cell(ROW, "cancel").text() == "FAIL 1/2 (1 failed)"
    assert m.cell(ROW, "records").text() == "KNOWN 0/1 (1 known)"
    assert m.cell(ROW, "storage_layout").text() == "N/A not offered"
    assert m.cell(ROW, "auth").text() == "DEVIATION 1/2 (1 deviation)"
    # A failure wins the mark, and the cell still counts its deviations; blocked is named.
    assert m.cell(ROW, "files").text() == "FAIL 0/3 (1 failed, 2 deviations, 1 blocked)"
    assert m.cell(ROW, "expiry").text() == "N/A (2 blocked, 1 skipped)"
    assert m.cell(ROW, "usage").text() == "STALE 0/1 (1 stale)"
    assert m.columns == ["files", "lifecycle", "records", "cancel", "expiry", "auth", "usage", "storage_layout"]
    overall = m.overall(ROW)
    assert overall.verdict == matrix.FAIL
    assert (overall.passed, overall.failed, overall.deviation, overall.blocked, overall.skipped) == (4, 2, 3, 3, 1)


@pytest.mark.parametrize(
    ("outcomes", "mark"),
    [
        (["passed", "error"], matrix.FAIL),
        (["deviation", "xpassed", "xfailed", "passed"], matrix.DEVIATION),
        (["xpassed", "xfailed", "passed"], matrix.STALE),
        (["xfailed", "passed", "skipped"], matrix.KNOWN),
        (["passed", "skipped", "blocked"], matrix.PASS),
        (["skipped", "blocked"], matrix.NA),
        ([], matrix.NA),
    ],
)
def test_the_mark_is_the_first_that_applies(outcomes: list[str], mark: str) -> None:
    cell = matrix.Cell()
    for outcome in outcomes:
        cell.add(outcome)
    assert cell.verdict == mark


def test_cells_list_their_checks_with_the_first_line_of_the_reason() -> None:
    m = matrix.build(
        [
            _line("t::test_b", "cancel", "failed", message="expected 404\nreceived 200\n(the rest)"),
            _line("t::test_a", "cancel", "deviation", message="\nfact errors.x (UNVERIFIED): got 'id'\nsource: doc"),
            _line("t::test_c[p1]", "cancel", "error", message="fixture broke"),
            _line("t::test_d", "cancel", "passed", message="never listed"),
            _line("t::test_e", "cancel", "blocked", message="scenario 'cancel' failed: 500"),
            _line("t::test_f", "cancel", "blocked", message="scenario 'cancel' failed: 500"),
            _line("t::test_g", "cancel", "skipped", message="not listed either"),
        ]
    )
    listed = m.cell(ROW, "cancel").listed()
    assert [(e.word, e.tests, e.reason) for e in listed] == [
        ("error", ("test_c[p1]",), "fixture broke"),
        ("failed", ("test_b",), "expected 404"),
        ("deviation", ("test_a",), "fact errors.x (UNVERIFIED): got 'id'"),
        ("blocked", ("test_e", "test_f"), "scenario 'cancel' failed: 500"),
    ]


def test_a_run_is_named_and_shows_its_profile_and_start() -> None:
    m = matrix.build(
        [
            _named("t::a", "files", "passed", "acme staging", "2026-11-28T07:00:00+00:00", target="https://x.test/v1"),
            _named("t::a", "files", "failed", "acme prod", "2026-11-28T08:00:00+00:00", target="https://y.test/v1"),
            # Files written before runs had names: the profile and the target's host.
            _line(
                "t::a", "files", "passed", profile="scaleway", target="https://api.scaleway.ai/v1", target_kind="url"
            ),
        ]
    )
    assert m.labels == ["acme prod", "acme staging", "scaleway (api.scaleway.ai)"]
    prod = m.row("acme prod")
    assert (prod.profile, prod.target, prod.started) == ("openai", "https://y.test/v1", "2026-11-28T08:00:00+00:00")
    assert m.row("scaleway (api.scaleway.ai)").started is None
    assert m.cell("acme prod", "files").verdict == matrix.FAIL
    assert m.cell("acme staging", "files").verdict == matrix.PASS


def test_one_name_for_two_profiles_makes_two_rows_told_apart() -> None:
    m = matrix.build(
        [
            _named("t::a", "files", "passed", "acme", "2026-11-28T07:00:00+00:00"),
            _named("t::a", "files", "failed", "acme", "2026-11-28T07:00:00+00:00", profile="azure-openai"),
        ]
    )
    assert m.labels == ["acme [azure-openai, emulator]", "acme [openai, emulator]"]
    assert m.cell("acme [azure-openai, emulator]", "files").verdict == matrix.FAIL


def test_the_plugins_default_name_reads_like_an_unnamed_run() -> None:
    """The plugin's default name is the profile and the whole target; the matrix shows the
    host, and an unnamed old file of the same profile and target is the same row."""
    m = matrix.build(
        [
            _line("t::a", "files", "failed"),
            _named("t::a", "files", "passed", "openai (emulator (in-process))", "2026-11-28T07:00:00+00:00"),
        ]
    )
    assert m.labels == [ROW]
    assert m.cell(ROW, "files").text() == "PASS 1/1"


def test_runs_merge_and_a_later_run_replaces_check_by_check(tmp_path: Path) -> None:
    first = _write(
        tmp_path / "a.jsonl",
        [
            _named("t::a", "lifecycle", "failed", "acme", "2026-11-28T07:00:00+00:00"),
            _named("t::b", "auth", "passed", "acme", "2026-11-28T07:00:00+00:00"),
        ],
    )
    second = _write(
        tmp_path / "b.jsonl",
        [
            _named("t::a", "lifecycle", "passed", "acme", "2026-11-28T09:00:00+00:00"),
            _named("t::b", "auth", "deselected", "acme", "2026-11-28T09:00:00+00:00", reason_kind="option"),
            _named("t::a", "lifecycle", "failed", "other", "2026-11-28T09:30:00+00:00"),
        ],
    )
    m = matrix.build(matrix.load([first, second]))
    assert m.labels == ["acme", "other"]
    assert m.cell("acme", "lifecycle").text() == "PASS 1/1"
    # -k/-m deselection in a later run does not hide an earlier result.
    assert m.cell("acme", "auth").text() == "PASS 1/1"
    assert m.row("acme").started == "2026-11-28T09:00:00+00:00"
    account = m.account()
    merged = [line for line in account if line.startswith("merged: ")]
    replaced = [line for line in account if line.startswith("replaced: ")]
    assert len(merged) == 3
    assert any("acme" in line and "started 2026-11-28T07:00:00+00:00" in line for line in merged)
    assert replaced == [
        "replaced: acme (profile openai, target emulator (in-process), started 2026-11-28T07:00:00+00:00, "
        f"from {first}): 1 of 2 checks replaced by the run started 2026-11-28T09:00:00+00:00 from {second}"
    ]


def test_a_wholly_replaced_run_is_said_so_and_no_longer_merged() -> None:
    m = matrix.build(
        [
            _named("t::a", "files", "failed", "acme", "2026-11-28T07:00:00+00:00"),
            _named("t::a", "files", "passed", "acme", "2026-11-28T08:00:00+00:00"),
        ]
    )
    account = m.account()
    assert [line.split(" (", 1)[0] for line in account] == ["merged: acme", "replaced: acme"]
    assert "started 2026-11-28T08:00:00+00:00" in account[0]
    assert "1 of 1 checks (all of them) replaced" in account[1]


def test_suite_nodeids_from_any_directory_are_one_check() -> None:
    """Old results files kept the prefix pytest gave the suite's path; the matrix cuts it."""
    m = matrix.build(
        [
            _line("../../.venv/lib/python3.11/site-packages/conformance/suite/test_x.py::test_t", "files", "failed"),
            _line("conformance/suite/test_x.py::test_t", "files", "passed"),
        ]
    )
    assert m.cell(ROW, "files").text() == "PASS 1/1"


def test_markdown_has_the_table_totals_details_and_account(tmp_path: Path) -> None:
    lines = [
        _named("t::test_ok", "files", "passed", "acme", "2026-11-28T07:00:00+00:00"),
        _named("t::test_dev", "files", "deviation", "acme", "2026-11-28T07:00:00+00:00", message="fact | x\nmore"),
        _named("t::test_bad", "cancel", "failed", "acme", "2026-11-28T07:00:00+00:00", message="got <b>500</b>"),
        _named("t::test_blk", "cancel", "blocked", "acme", "2026-11-28T07:00:00+00:00", message="scenario 'c' failed"),
        _named("t::test_na", "usage", "deselected", "acme", "2026-11-28T07:00:00+00:00", reason_kind="capability"),
    ]
    text = matrix.render_markdown(matrix.build(lines))
    assert "| run | files | cancel | usage | overall |" in text
    assert "| acme | DEVIATION 1/2 (1 deviation) | FAIL 0/1 (1 failed, 1 blocked) | N/A not offered |" in text
    assert (
        "| acme | openai | emulator (in-process) | 2026-11-28T07:00:00+00:00 | 1 | 1 | 0 | 1 | 0 | 0 | 0 | 1 | 1 |"
        in text
    )
    assert "| run | profile | target | started | passed | failed | errors | deviations | known | stale |" in text
    details = text.split("## Checks to read", 1)[1]
    assert "### acme" in details
    assert "- **cancel**: FAIL 0/1 (1 failed, 1 blocked)" in details
    assert "  - `test_dev` deviation: fact \\| x" in details and "more" not in details
    assert "  - `test_bad` failed: got \\<b\\>500\\</b\\>" in details
    assert "- blocked: scenario 'c' failed: `test_blk`" in details
    assert "test_ok" not in text
    assert "merged: acme (profile openai" in text.rsplit("---", 1)[1]
    assert not _EMOJI.search(text)
    for mark, _ in matrix.MARKS:
        assert f"**{mark}**" in text


def test_main_writes_markdown_and_html(tmp_path: Path) -> None:
    results = _write(tmp_path / "r.jsonl", [_line("t::a", "lifecycle", "passed"), _line("t::b", "auth", "error")])
    md, page = tmp_path / "out" / "m.md", tmp_path / "out" / "m.html"
    assert matrix.main([str(results), "--md", str(md), "--html", str(page)]) == 0
    text = md.read_text()
    assert "| run | lifecycle | auth | overall |" in text
    assert f"| {ROW} | PASS 1/1 | FAIL 0/1 (1 error) | FAIL 1/2 (1 error) |" in text
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_main_accounts_for_a_merge_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.jsonl", [_named("t::a", "files", "failed", "acme", "2026-11-28T07:00:00+00:00")])
    b = _write(tmp_path / "b.jsonl", [_named("t::a", "files", "passed", "acme", "2026-11-28T08:00:00+00:00")])
    assert matrix.main([str(a), str(b), "--md", str(tmp_path / "m.md")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (", 1)[0] for line in err] == [
        "batchconf matrix: merged: acme",
        "batchconf matrix: replaced: acme",
    ]
    # One file of one run is no merge: nothing on stderr.
    assert matrix.main([str(a), "--md", str(tmp_path / "m.md")]) == 0
    assert capsys.readouterr().err == ""


def test_main_prints_markdown_without_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write(tmp_path / "r.jsonl", [_line("t::a", "lifecycle", "passed")])
    assert matrix.main([str(results)]) == 0
    assert f"| {ROW} | PASS 1/1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json\n", "r.jsonl:1: not JSON"),
        ('{"a": 1}\n', "r.jsonl:1: not a batchconf result line"),
        ("\n", "hold no result lines"),
    ],
)
def test_bad_input_exits_2_with_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content)
    assert matrix.main([str(path)]) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert matrix.main([]) == 2
    assert matrix.main(["--help"]) == 0
    capsys.readouterr()


def test_runs_as_a_module(tmp_path: Path) -> None:
    results = _write(tmp_path / "r.jsonl", [_line("t::a", "lifecycle", "passed")])
    md = tmp_path / "m.md"
    done = subprocess.run(
        [sys.executable, "-m", "conformance.matrix", str(results), "--md", str(md)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "PASS 1/1" in md.read_text()
