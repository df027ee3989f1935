"""A scenario that does not apply to a profile deselects the tests needing it, with a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas import load_profile


def test_missing_input_file_scenario_is_deselected_where_create_refuses(tmp_path: Path) -> None:
    """Where the profile says a missing input file is refused at create, the tests of the
    `missing_input_file` scenario are deselected with the profile fact named, not errored."""
    text = load_profile("openai").path.read_text(encoding="utf-8")
    old = 'missing_input_file = { value = "fail_batch"'
    assert old in text
    path = tmp_path / "refuses.toml"
    path.write_text(
        text.replace(old, 'missing_input_file = { value = "reject_create"').replace(
            'name = "openai"', 'name = "refuses"'
        ),
        encoding="utf-8",
    )
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            "--profile",
            str(path),
            "--results",
            str(results),
            "-k",
            "missing_input_file",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    deselected = [
        r
        for r in records
        if r["outcome"] == "deselected" and "missing_input_file" in r["nodeid"] and r.get("reason_kind") == "scenario"
    ]
    assert deselected, proc.stdout[-2000:]
    assert all("batches.missing_input_file is 'reject_create'" in r["message"] for r in deselected)
    assert not [r for r in records if r["outcome"] in ("failed", "error")]
