"""`batchconf matrix` (`conformance.matrix`): merging results files into tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import matrix


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


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_cells_count_outcomes_and_choose_a_verdict() -> None:
    m = matrix.build(
        [
            _line("t::a", "lifecycle", "passed"),
            _line("t::b", "lifecycle", "passed"),
            _line("t::c", "cancel", "failed"),
            _line("t::d", "cancel", "passed"),
            _line("t::e", "records", "xfailed"),
            _line("t::f", "storage_layout", "deselected", reason_kind="capability", message="not offered"),
        ]
    )
    row = ("openai", "emulator")
    assert m.cell(row, "lifecycle").text() == "✅ 2/2"
    assert m.cell(row, "cancel").text() == "❌ 1/2 (1 failed)"
    assert m.cell(row, "records").text() == "⚠️ 0/1 (1 known deviation)"
    assert m.cell(row, "storage_layout").text() == "⚪ not offered"
    assert m.columns == ["lifecycle", "records", "cancel", "storage_layout"]
    assert m.overall(row).verdict == matrix.FAIL


def test_runs_merge_and_the_last_result_of_a_check_wins(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.jsonl", [_line("t::a", "lifecycle", "failed"), _line("t::b", "auth", "passed")])
    second = _write(
        tmp_path / "b.jsonl",
        [
            _line("t::a", "lifecycle", "passed"),
            _line("t::b", "auth", "deselected", reason_kind="option"),
            _line(
                "t::a",
                "lifecycle",
                "failed",
                profile="scaleway",
                target="https://api.scaleway.ai/v1",
                target_kind="url",
            ),
        ],
    )
    m = matrix.build(matrix.load([first, second]))
    assert m.rows == [("openai", "emulator"), ("scaleway", "api.scaleway.ai")]
    assert m.cell(("openai", "emulator"), "lifecycle").text() == "✅ 1/1"
    # -k/-m deselection in a later run does not hide an earlier result.
    assert m.cell(("openai", "emulator"), "auth").text() == "✅ 1/1"
    assert m.cell(("scaleway", "api.scaleway.ai"), "lifecycle").verdict == matrix.FAIL


def test_main_writes_markdown_and_self_contained_html(tmp_path: Path) -> None:
    results = _write(tmp_path / "r.jsonl", [_line("t::a", "lifecycle", "passed"), _line("t::b", "auth", "error")])
    md, page = tmp_path / "out" / "m.md", tmp_path / "out" / "m.html"
    assert matrix.main([str(results), "--md", str(md), "--html", str(page)]) == 0
    text = md.read_text()
    assert "| provider (target) | lifecycle | auth | overall |" in text
    assert "| openai (emulator) | ✅ 1/1 | ❌ 0/1 (1 error) | ❌ 1/2 (1 error) |" in text
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "http" not in html.split("<body>")[1].split("Runs merged")[0]
    assert 'class="fail"' in html and 'class="pass"' in html


def test_main_prints_markdown_without_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write(tmp_path / "r.jsonl", [_line("t::a", "lifecycle", "passed")])
    assert matrix.main([str(results)]) == 0
    assert "openai (emulator)" in capsys.readouterr().out


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
    assert "✅ 1/1" in md.read_text()
