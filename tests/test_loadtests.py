"""The benchmark script runs end to end and its lost-nothing audit holds, in each mode.

Small batches, so nothing here measures speed (targets are judged by the script itself on
the full 50,000 lines); what is checked is that every mode completes the flow, accounts
for every custom_id, and reports the memory figures the README quotes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "loadtests" / "bench_batch.py"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="sync-in-process"),
        pytest.param(["--async"], id="async-in-process"),
        pytest.param(["--serve"], id="sync-served"),
    ],
)
def test_bench_batch_completes_and_audits(extra: list[str]) -> None:
    """bench_batch MUST finish a batch in every mode with every custom_id exactly once."""
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--lines", "600", "--repeat", "1", "--json", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit 1 only means a speed target was missed, which 600 lines say nothing about.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["audit_ok"] and summary["problems"] == []
    run = summary["runs"][0]
    assert run["statuses"][-1] == "completed"
    assert run["request_counts"] == {"completed": 600, "failed": 0}
    assert run["peak_rss_mb"] >= run["rss_emulator_ready_mb"] > 0
    assert run["rss_growth_ratio_from_ready"] >= 0
    assert (run.get("target") == "serve") == ("--serve" in extra)
